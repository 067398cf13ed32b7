"""Conversation simulator: multi-speaker recordings with exact RTTM/UEM from single-speaker
utterances (turns, pauses, overlaps, backchannels, per-speaker loudness, noise at a chosen SNR).

The default recipe mimics ``../shared/data/diarization/sim-dev`` (see its ``sim-dev.meta.jsonl``):
a turn is a whole utterance or a random part of one (≥ ``min_turn`` s, edge silence below -40 dB
trimmed); pause 0.2-1.5 s or, with ``overlap_prob``, an overlap of 0.3-1.5 s with the previous turn;
speaker gain -6..0 dB with ±1 dB per-turn jitter; white noise at 20-30 dB SNR. The reference segment
of a turn is its non-silent span. Everything is drawn from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from mung import audio
from mung.config import Config, Interval, Range, at_least, param
from mung.diarization.rttm import Diarization, Turn, write_uem
from mung.errors import MungError

SR = audio.SAMPLE_RATE


@dataclass
class SimulationConfig(Config):
    """Ranges are ``(low, high)``, drawn uniformly. ``duration``: target length of a recording (s);
    ``whole_turn_prob``: a turn is a whole utterance rather than a random part;
    ``backchannel_prob``: a turn gets a short interjection (``backchannel`` s) of another speaker.
    ``rt60``: if set, each speaker gets a synthetic room response (exponentially decaying noise,
    reverberation time drawn from ``rt60``, direct-to-reverberant ratio from ``drr_db``); the
    reference stays the direct speech span."""

    section: ClassVar[str] = "simulate"

    min_speakers: int = param(2, Interval(int, 1, None))
    max_speakers: int = param(4, Interval(int, 1, None))
    duration: tuple[float, float] = param((60.0, 120.0), Range(Interval(float, 0, None, "neither")))
    min_turn: float = param(1.5, Interval(float, 0, None, "neither"))
    whole_turn_prob: float = param(0.3, Interval(float, 0, 1))
    pause: tuple[float, float] = param((0.2, 1.5), Range(Interval(float, 0, None)))
    overlap_prob: float = param(0.4, Interval(float, 0, 1))
    overlap: tuple[float, float] = param((0.3, 1.5), Range(Interval(float, 0, None)))
    backchannel_prob: float = param(0.0, Interval(float, 0, 1))
    backchannel: tuple[float, float] = param((0.3, 1.0), Range(Interval(float, 0, None)))
    speaker_gain_db: tuple[float, float] = param((-6.0, 0.0), Range(Interval(float, None, None)))
    turn_jitter_db: float = param(1.0, Interval(float, 0, None))
    snr_db: tuple[float, float] = param((20.0, 30.0), Range(Interval(float, None, None)))
    silence_db: float = param(-40.0, Interval(float, None, None))
    lead: float = param(0.5, Interval(float, 0, None))
    rt60: tuple[float, float] | None = param(None, Range(Interval(float, 0, None, "neither")), None)
    drr_db: tuple[float, float] = param((-2.0, 4.0), Range(Interval(float, None, None)))

    def check(self, where: str) -> None:
        at_least(self, where, "max_speakers", "min_speakers")


@dataclass
class Segment:
    """One piece of source speech placed in the recording (times in seconds)."""

    speaker: str
    source: str
    source_offset: float
    duration: float
    start: float
    gain_db: float


def speech_sources(root: str | os.PathLike) -> dict[str, list[Path]]:
    """Audio files under ``root`` grouped by speaker: the sub-folder name, or for files directly in
    ``root`` the file-name prefix before the first '-' (LibriSpeech style)."""
    root = Path(root)
    if not root.is_dir():
        raise MungError(f"{root}: speech directory not found")
    out: dict[str, list[Path]] = {}
    for path in audio.find_audio([root]):
        rel = path.relative_to(root)
        spk = rel.parts[0] if len(rel.parts) > 1 else path.stem.split("-")[0]
        out.setdefault(spk, []).append(path)
    return out


def active_span(wav: np.ndarray, silence_db: float, frame: int = 320) -> tuple[int, int]:
    """First and last sample of the frames within ``silence_db`` of the loudest 20 ms frame."""
    n = len(wav) // frame
    if n == 0:
        return 0, len(wav)
    energy = 10 * np.log10((wav[: n * frame].reshape(n, frame) ** 2).mean(1) + 1e-12)
    loud = np.flatnonzero(energy >= energy.max() + silence_db)
    return int(loud[0] * frame), int(min(len(wav), (loud[-1] + 1) * frame))


class _Sources:
    """Decoded, edge-trimmed source utterances (cached)."""

    def __init__(self, silence_db: float) -> None:
        self.silence_db, self._cache = silence_db, {}

    def get(self, path: Path) -> tuple[np.ndarray, int]:
        if path not in self._cache:
            wav = audio.load(path)
            s, e = active_span(wav, self.silence_db)
            self._cache[path] = (wav, s, e)
        wav, s, e = self._cache[path]
        return wav[s:e], s

    def piece(self, rng: np.random.Generator, path: Path, lo: float, hi: float | None) -> tuple[float, float]:
        """(offset, duration) in seconds of a non-silent piece of ``path``, ``lo``..``hi`` s long
        (``hi=None``: the whole trimmed utterance)."""
        wav, s = self.get(path)
        total = len(wav) / SR
        if hi is None or total <= lo:
            return s / SR, total
        dur = rng.uniform(lo, min(hi, total))
        off = rng.uniform(0, total - dur)
        a, b = int(off * SR), int((off + dur) * SR)
        ps, pe = active_span(wav[a:b], self.silence_db)
        return (s + a + ps) / SR, (pe - ps) / SR


def _plan(rng: np.random.Generator, config: SimulationConfig, speakers: list[str],
          files: dict[str, list[Path]], src: _Sources, root: Path) -> tuple[list[Segment], dict, float]:
    """Segments of one recording, the speaker gains and the SNR."""
    gains = {s: round(float(rng.uniform(*config.speaker_gain_db)), 2) for s in speakers}
    target = rng.uniform(*config.duration)
    segments: list[Segment] = []

    def place(spk: str, start: float, lo: float, hi: float | None) -> Segment:
        path = files[spk][rng.integers(len(files[spk]))]
        off, dur = src.piece(rng, path, lo, hi)
        gain = gains[spk] + rng.uniform(-config.turn_jitter_db, config.turn_jitter_db)
        seg = Segment(spk, path.relative_to(root).as_posix(), round(off, 3), round(dur, 3),
                      round(start, 3), round(float(gain), 2))
        segments.append(seg)
        return seg

    spk, t, prev = speakers[rng.integers(len(speakers))], config.lead, None
    while t < target:
        whole = rng.random() < config.whole_turn_prob
        start = t
        if prev is not None:
            if rng.random() < config.overlap_prob:
                start = t - min(rng.uniform(*config.overlap), prev.duration / 2)
            else:
                start = t + rng.uniform(*config.pause)
        turn = place(spk, start, config.min_turn, None if whole else 1e9)
        if prev is not None and turn.start < prev.start + prev.duration:  # keep overlaps ≤ half a turn
            turn.start = round(max(turn.start, prev.start + prev.duration - turn.duration / 2), 3)
        others = [s for s in speakers if s != spk]
        if others and rng.random() < config.backchannel_prob and turn.duration > 2 * config.backchannel[1]:
            at = turn.start + rng.uniform(0.5, 0.75) * turn.duration
            place(others[rng.integers(len(others))], at, *config.backchannel)
        prev, t = turn, turn.start + turn.duration
        spk = others[rng.integers(len(others))] if others else spk
    return segments, gains, round(float(rng.uniform(*config.snr_db)), 2)


def room_response(rng: np.random.Generator, rt60: float, drr_db: float) -> np.ndarray:
    """A synthetic impulse response: a unit direct path, then Gaussian noise decaying by 60 dB over
    ``rt60`` seconds, scaled to the direct-to-reverberant ratio ``drr_db``."""
    t = np.arange(1, int(rt60 * SR)) / SR
    tail = rng.standard_normal(len(t)) * np.exp(-6.908 * t / rt60)
    tail *= 10 ** (-drr_db / 20) / np.sqrt((tail**2).sum())
    return np.concatenate([[1.0], tail])


def _mix(rng: np.random.Generator, segments: list[Segment], src: _Sources, root: Path,
         snr_db: float, lead: float, rooms: dict[str, np.ndarray] | None = None) -> np.ndarray:
    end = max(s.start + s.duration for s in segments) + lead
    out = np.zeros(int(np.ceil(end * SR)), np.float64)
    mask = np.zeros(len(out), bool)
    for s in segments:
        wav, trim = src.get(root / s.source)
        a = int(round(s.source_offset * SR)) - trim
        piece = wav[a : a + int(round(s.duration * SR))]
        b = int(round(s.start * SR))
        mask[b : b + len(piece)] = True
        if rooms:
            from scipy.signal import fftconvolve

            piece = fftconvolve(piece, rooms[s.speaker])[: len(out) - b]
        out[b : b + len(piece)] += piece * 10 ** (s.gain_db / 20)
    power = float((out[mask] ** 2).mean()) if mask.any() else 1e-4
    out += rng.standard_normal(len(out)) * np.sqrt(power / 10 ** (snr_db / 10))
    peak = np.abs(out).max()
    return (out * (0.9 / peak if peak > 0.9 else 1.0)).astype(np.float32)


@dataclass
class Recording:
    """One simulated conversation: waveform, reference and the recipe that made it."""

    uri: str
    wav: np.ndarray
    reference: Diarization
    meta: dict


def simulate(speech_dir: str | os.PathLike, n: int, seed: int, config: SimulationConfig | None = None,
             prefix: str = "sim") -> Iterator[Recording]:
    """``n`` simulated recordings ``<prefix>-000``... (a generator; inputs are checked at once);
    the same seed gives the same output."""
    config = config or SimulationConfig()
    config.validate()
    if n < 1:
        raise MungError("simulate: --n must be at least 1")
    root = Path(speech_dir)
    files = speech_sources(root)
    names = sorted(files)
    if len(names) < config.min_speakers:
        raise MungError(f"{root}: {len(names)} speaker(s) found, need at least {config.min_speakers}")
    return _generate(root, files, names, n, seed, config, prefix)


def _generate(root: Path, files: dict[str, list[Path]], names: list[str], n: int, seed: int,
              config: SimulationConfig, prefix: str) -> Iterator[Recording]:
    src = _Sources(config.silence_db)
    master = np.random.default_rng(seed)
    for i in range(n):
        rec_seed = int(master.integers(2**31 - 1))
        rng = np.random.default_rng(rec_seed)
        k = int(rng.integers(config.min_speakers, min(config.max_speakers, len(names)) + 1))
        speakers = [names[j] for j in rng.choice(len(names), k, replace=False)]
        segments, gains, snr = _plan(rng, config, speakers, files, src, root)
        room = {}
        for s in speakers if config.rt60 is not None else []:
            rt60, drr = rng.uniform(*config.rt60), rng.uniform(*config.drr_db)
            room[s] = (round(float(rt60), 3), round(float(drr), 2))
        rirs = {s: room_response(rng, *v) for s, v in room.items()}
        wav = _mix(rng, segments, src, root, snr, config.lead, rirs)
        uri = f"{prefix}-{i:03d}"
        turns = [Turn(s.start, s.start + s.duration, s.speaker) for s in segments]
        ref = Diarization(uri, turns, len(wav) / SR)
        meta = {"uri": uri, "seed": rec_seed, "duration": round(len(wav) / SR, 3), "speakers": speakers,
                "speaker_gain_db": gains, "snr_db": snr, "noise": "white gaussian, numpy default_rng(seed)",
                "room_rt60_drr": room,
                "segments": [asdict(s) for s in segments], "master_seed": seed, "config": asdict(config)}
        yield Recording(uri, wav, ref, meta)


def write_simulation(recordings: Iterator[Recording], out: str | os.PathLike, name: str,
                     audio_format: str = "flac", force: bool = False) -> list[Path]:
    """Write ``<uri>.<format>`` per recording and ``<name>.rttm``, ``<name>.uem``,
    ``<name>.meta.jsonl`` for the set; return the audio paths."""
    import soundfile as sf

    from mung import outputs

    out = Path(out)
    if audio_format not in ("flac", "wav"):
        raise MungError(f"simulate: audio format must be flac or wav, got {audio_format!r}")
    for suffix in (".rttm", ".uem", ".meta.jsonl"):
        outputs.check_writable(out / f"{name}{suffix}", force)
    paths, rttm, uem, meta = [], [], {}, []
    for rec in recordings:
        path = out / f"{rec.uri}.{audio_format}"
        outputs.write_with(path, lambda p, w=rec.wav: sf.write(p, w, SR, format=audio_format.upper()), force)
        paths.append(path)
        rttm.append(rec.reference.to_rttm())
        uem[rec.uri] = [(0.0, rec.reference.duration)]
        meta.append(json.dumps(rec.meta))
    outputs.write_text(out / f"{name}.rttm", "".join(rttm), force)
    outputs.write_text(out / f"{name}.uem", write_uem(uem), force)
    outputs.write_text(out / f"{name}.meta.jsonl", "\n".join(meta) + "\n", force)
    return paths
