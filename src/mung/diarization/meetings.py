"""On-the-fly training chunks for the segmentation model: short meeting-like mixtures with exact
per-frame labels of up to three local speakers (at most two at once).

Each chunk is drawn fresh: 0-3 speakers; turns from a quarter second to tens of seconds
(already running at the chunk start, or starting inside it); a pause or an interruption that
overlaps the previous turn, and short backchannels inside a turn, at rates drawn per chunk (from
none to heavy overlap); per-speaker loudness differences with per-turn jitter; per-speaker
synthetic room responses (exponentially decaying noise, the same model as
:mod:`mung.diarization.simulate`); background at 5-30 dB SNR: coloured noise (white, pink, brown),
babble of 3-6 other speakers, or music; sometimes a telephone band limit; sometimes digital
silence at one end (padding). The reference is the *direct* speech, labelled by a per-utterance
energy detector (pauses shorter than ``fill_gap`` inside an utterance count as speech, as in
word-level meeting references). All source audio is decoded once into memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve, resample_poly

from mung import audio
from mung.diarization.rttm import Diarization
from mung.diarization.segmentation import FRAME_SAMPLES, MAX_SIMULTANEOUS, N_SPEAKERS, num_frames
from mung.diarization.simulate import active_span, room_response, speech_sources
from mung.errors import MungError

SR = audio.SAMPLE_RATE
VAD_HOP = 160  # 10 ms label resolution of the source utterances


@dataclass
class ChunkConfig:
    """Ranges are ``(low, high)``, drawn uniformly unless noted."""

    chunk_seconds: float = 5.0
    speakers_p: tuple[float, ...] = (0.03, 0.17, 0.42, 0.38)  # P(0, 1, 2, 3 speakers)
    short_turn: tuple[float, float] = (0.25, 1.2)
    medium_turn: tuple[float, float] = (1.0, 4.0)
    long_turn: tuple[float, float] = (4.0, 20.0)
    turn_p: tuple[float, float, float] = (0.35, 0.45, 0.2)  # P(short, medium, long)
    pause_mean: float = 0.3  # exponential
    overlap_prob: tuple[float, float] = (0.4, 1.0)  # per chunk: P(a turn interrupts the previous)
    overlap: tuple[float, float] = (0.3, 4.0)  # and 10-90 % of the shorter of the two turns
    backchannel_rate: tuple[float, float] = (0.3, 2.0)  # per chunk: interjections per second of turn
    backchannel: tuple[float, float] = (0.2, 1.0)
    speaker_gain_db: tuple[float, float] = (-12.0, 0.0)
    turn_jitter_db: float = 2.0
    reverb_prob: float = 0.6
    rt60: tuple[float, float] = (0.15, 0.9)
    drr_db: tuple[float, float] = (-3.0, 10.0)
    noise_prob: float = 0.9
    noise_p: tuple[float, float, float] = (0.35, 0.3, 0.35)  # P(coloured, babble, music)
    snr_db: tuple[float, float] = (5.0, 30.0)
    telephone_prob: float = 0.1
    level_dbfs: tuple[float, float] = (-40.0, -1.0)  # peak level of the chunk
    padding_prob: float = 0.08  # digital silence (0.2-3 s) at one end, as at the edges of a file
    speed: tuple[float, float] = (1.0, 1.0)  # per speaker and chunk: speed perturbation (tempo and pitch)
    fill_gap: float = 0.3
    silence_db: float = -35.0


class SpeechBank:
    """Decoded, edge-trimmed utterances per speaker with 10 ms speech masks."""

    def __init__(self, files: dict[str, list[Path]], silence_db: float = -35.0,
                 fill_gap: float = 0.3) -> None:
        self.speakers = sorted(files)
        self.wavs: dict[str, list[np.ndarray]] = {}
        self.masks: dict[str, list[np.ndarray]] = {}
        for spk in self.speakers:
            for path in files[spk]:
                wav = audio.load(path)
                s, e = active_span(wav, silence_db)
                wav = wav[s:e]
                if len(wav) < SR // 4:
                    continue
                self.wavs.setdefault(spk, []).append(wav)
                self.masks.setdefault(spk, []).append(speech_mask(wav, silence_db, fill_gap))
        self.speakers = [s for s in self.speakers if s in self.wavs]

    @classmethod
    def from_dir(cls, root: str | os.PathLike, silence_db: float = -35.0,
                 fill_gap: float = 0.3) -> SpeechBank:
        return cls(speech_sources(root), silence_db, fill_gap)

    def split(self, n_val: int, seed: int = 0) -> tuple[list[str], list[str]]:
        """(train, validation) speaker lists; validation speakers are drawn with ``seed``."""
        if len(self.speakers) < n_val + 4:
            raise MungError(f"speech: {len(self.speakers)} speakers, need at least {n_val + 4}")
        val = set(np.random.default_rng(seed).choice(self.speakers, n_val, replace=False).tolist())
        return [s for s in self.speakers if s not in val], sorted(val)

    def piece(self, rng: np.random.Generator, spk: str, duration: float, speed: float = 1.0
              ) -> tuple[np.ndarray, np.ndarray]:
        """About ``duration`` s of ``spk``'s speech, samples and 10 ms mask: a random part of one
        utterance, or several joined by 0.1-0.4 s pauses when one is too short; played ``speed``
        times faster (:func:`speed_perturb`)."""
        if speed != 1.0:
            return speed_perturb(*self.piece(rng, spk, duration * speed), speed)
        wavs, masks, total = [], [], 0
        want = max(1, int(duration * SR / VAD_HOP))
        while total < want:
            i = int(rng.integers(len(self.wavs[spk])))
            wav, mask = self.wavs[spk][i], self.masks[spk][i]
            n = min(len(mask), want - total)
            a = int(rng.integers(len(mask) - n + 1))
            wavs.append(wav[a * VAD_HOP : (a + n) * VAD_HOP])
            masks.append(mask[a : a + n])
            total += n
            if total < want:
                gap = int(rng.uniform(10, 40))
                wavs.append(np.zeros(gap * VAD_HOP, np.float32))
                masks.append(np.zeros(gap, bool))
                total += gap
        if len(wavs) == 1:
            return wavs[0], masks[0]
        return np.concatenate(wavs), np.concatenate(masks)


def speed_perturb(wav: np.ndarray, mask: np.ndarray, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """``wav`` (and its 10 ms ``mask``) played ``speed`` times faster: resampled by the nearest
    ratio p/q with q <= 20 (polyphase filter), so tempo and pitch move together, as in Kaldi's
    3-way speed perturbation (Ko et al., "Audio augmentation for speech recognition",
    Interspeech 2015), which makes new voices out of few speakers."""
    ratio = Fraction(1 / speed).limit_denominator(20)
    out = resample_poly(wav, ratio.numerator, ratio.denominator).astype(np.float32)
    frames = max(1, len(out) // VAD_HOP)
    index = np.minimum((np.arange(frames) * len(mask) / frames).astype(int), len(mask) - 1)
    return out[: frames * VAD_HOP], mask[index]


def speech_mask(wav: np.ndarray, silence_db: float, fill_gap: float) -> np.ndarray:
    """10 ms frames within ``silence_db`` of the loudest, gaps under ``fill_gap`` s filled."""
    n = len(wav) // VAD_HOP
    energy = 10 * np.log10((wav[: n * VAD_HOP].reshape(n, VAD_HOP) ** 2).mean(1) + 1e-10)
    mask = energy >= np.percentile(energy, 99) + silence_db
    idx = np.flatnonzero(mask)
    gap = int(fill_gap * SR / VAD_HOP)
    for a, b in zip(idx[:-1], idx[1:], strict=True):
        if 1 < b - a <= gap:
            mask[a:b] = True
    return mask


def load_music(root: str | os.PathLike | None, max_clips: int = 120, seconds: float = 12.0,
               seed: int = 0) -> list[np.ndarray]:
    """Up to ``max_clips`` pieces of ``seconds`` from the audio files under ``root`` (background)."""
    if root is None:
        return []
    paths = audio.find_audio([root])
    pick = np.random.default_rng(seed).permutation(len(paths))[:max_clips]
    out = []
    for i in pick:
        info = audio.info(paths[i])
        start = max(0.0, (info.duration - seconds) / 2)
        wav = audio.load(paths[i], offset=start, duration=min(seconds, info.duration))
        if len(wav) > SR and np.abs(wav).max() > 1e-4:
            out.append(wav)
    return out


def coloured_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, pink or brown noise (power falling as f^0, f^-1 or f^-2), unit variance."""
    alpha = rng.choice([0.0, 1.0, 2.0])
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.maximum(np.arange(n // 2 + 1), 1.0)
    x = np.fft.irfft(spec / f ** (alpha / 2), n)
    return x / (x.std() + 1e-12)


def band_limit(wav: np.ndarray, low: float, high: float) -> np.ndarray:
    """Zero the spectrum outside ``low``..``high`` Hz (telephone-like channel)."""
    spec = np.fft.rfft(wav)
    f = np.fft.rfftfreq(len(wav), 1 / SR)
    spec[(f < low) | (f > high)] = 0
    return np.fft.irfft(spec, len(wav))


def frame_labels(sample_mask: np.ndarray, frames: int, step: int) -> np.ndarray:
    """``[speakers, 10 ms frames]`` masks → ``[frames, speakers]`` labels of the model's output
    frames (frame i centred at sample ``i * step``; active if most of its step is active)."""
    per = step // VAD_HOP
    pad = np.pad(sample_mask, ((0, 0), (per // 2, per * frames)))
    out = pad[:, : per * frames].reshape(len(sample_mask), frames, per).mean(-1) >= 0.5
    return out.T.astype(np.float32)


class ChunkSimulator:
    """Draws (waveform, labels) training chunks from a speaker pool."""

    def __init__(self, bank: SpeechBank, speakers: list[str], music: list[np.ndarray],
                 config: ChunkConfig | None = None) -> None:
        self.bank, self.speakers, self.music = bank, speakers, music
        self.config = config or ChunkConfig()
        self.samples = int(round(self.config.chunk_seconds * SR))
        self.frames = num_frames(self.samples)
        self.step = FRAME_SAMPLES

    def _turn_length(self, rng: np.random.Generator) -> float:
        c = self.config
        kind = rng.choice(3, p=c.turn_p)
        return float(rng.uniform(*(c.short_turn, c.medium_turn, c.long_turn)[kind]))

    def _plan(self, rng: np.random.Generator, k: int) -> list[tuple[int, float, float]]:
        """(local speaker, start s, length s) of the turns; never more than two at once."""
        c = self.config
        n = int(self.config.chunk_seconds * 100) + 1  # 10 ms grid over the chunk
        count = np.zeros(n + 1, np.int8)
        turns: list[tuple[int, float, float]] = []

        def free(start: float, length: float) -> bool:
            a, b = max(0, int(start * 100)), min(n, int((start + length) * 100) + 1)
            return b <= a or count[a:b].max() < MAX_SIMULTANEOUS

        def put(spk: int, start: float, length: float) -> None:
            a, b = max(0, int(start * 100)), min(n, int((start + length) * 100) + 1)
            count[a:b] += 1
            turns.append((spk, start, length))

        p_overlap, bc_rate = rng.uniform(*c.overlap_prob), rng.uniform(*c.backchannel_rate)
        spk, t, prev_len = int(rng.integers(k)), -float(rng.uniform(0, 6)), 0.0
        while t < c.chunk_seconds:
            length = self._turn_length(rng)
            start = t + rng.exponential(c.pause_mean)
            if turns and k > 1 and rng.random() < p_overlap:
                share = rng.uniform(0.1, 0.9) * min(prev_len, length)
                start = t - float(np.clip(share, c.overlap[0], c.overlap[1]))
            if not free(start, length):
                start = t
            put(spk, start, length)
            for _ in range(rng.poisson(bc_rate * length) if k > 1 else 0):
                other = int(rng.choice([s for s in range(k) if s != spk]))
                bc = float(rng.uniform(*c.backchannel))
                at = start + rng.uniform(0, max(0.1, length - bc))
                if free(at, bc):
                    put(other, at, bc)
            t, prev_len = max(t, start + length), length
            if k > 1:
                spk = int(rng.choice([s for s in range(k) if s != spk]))
        return turns

    def example(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One chunk: float32 ``[samples]`` and ``[frames, 3]`` 0/1 labels."""
        c = self.config
        k = min(int(rng.choice(len(c.speakers_p), p=c.speakers_p)), len(self.speakers))
        chosen = rng.choice(self.speakers, k, replace=False).tolist() if k else []
        n, hop, pre = self.samples, VAD_HOP, int(c.rt60[1] * SR)  # pre: room tails reaching sample 0
        tracks = np.zeros((max(k, 1), pre + n), np.float32)  # dry speech per local speaker
        masks = np.zeros((N_SPEAKERS, n // hop + 1), bool)
        gains = rng.uniform(*c.speaker_gain_db, size=max(k, 1))
        # drawn only when on, so that unperturbed runs keep their random stream (and their batches)
        speeds = rng.uniform(*c.speed, size=max(k, 1)) if c.speed != (1.0, 1.0) else np.ones(max(k, 1))
        for spk, start, length in self._plan(rng, k) if k else []:
            wav, mask = self.bank.piece(rng, chosen[spk], length, float(speeds[spk]))
            a = int(round(start * SR / hop))  # in 10 ms frames; may be negative
            lo, hi = max(0, -a), min(len(mask), masks.shape[1] - a)
            if hi <= lo:
                continue
            masks[spk, a + lo : a + hi] |= mask[lo:hi]
            s0 = pre + a * hop  # where the piece starts in the track
            w0, w1 = max(0, -s0), min(len(wav), pre + n - s0)
            g = 10 ** ((gains[spk] + rng.uniform(-c.turn_jitter_db, c.turn_jitter_db)) / 20)
            tracks[spk, s0 + w0 : s0 + w1] += g * wav[w0:w1]
        mix = np.zeros(n, np.float64)
        for track in tracks[:k]:
            if rng.random() < c.reverb_prob:
                rir = room_response(rng, rng.uniform(*c.rt60), rng.uniform(*c.drr_db)).astype(np.float32)
                track = fftconvolve(track, rir)[: pre + n]
            mix += track[pre:]
        active = np.repeat(masks.any(0), hop)[:n]
        power = float((mix[active] ** 2).mean()) if active.any() else 10 ** (gains[0] / 10) * 0.01
        if rng.random() < c.noise_prob or not active.any():
            noise = self._noise(rng, n)
            mix += noise * np.sqrt(power / 10 ** (rng.uniform(*c.snr_db) / 10))
        mix += rng.standard_normal(n) * np.sqrt(power / 10 ** (rng.uniform(35, 60) / 10))
        if rng.random() < c.telephone_prob:
            mix = band_limit(mix, rng.uniform(100, 300), rng.uniform(3400, 4000))
        mix *= 10 ** (rng.uniform(*c.level_dbfs) / 20) / (np.abs(mix).max() + 1e-9)
        if rng.random() < c.padding_prob:
            cut = int(rng.uniform(0.2, 3.0) * SR / hop)
            if rng.random() < 0.5:
                mix[: cut * hop], masks[:, :cut] = 0, False
            else:
                mix[len(mix) - cut * hop :], masks[:, masks.shape[1] - cut :] = 0, False
        return mix.astype(np.float32), frame_labels(masks, self.frames, self.step)

    def _noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        kind = rng.choice(3, p=self.config.noise_p)
        if kind == 2 and self.music:
            clip = self.music[int(rng.integers(len(self.music)))]
            a = int(rng.integers(max(1, len(clip) - n)))
            x = np.resize(clip[a : a + n], n).astype(np.float64)
        elif kind == 1:  # distant babble: 3-6 other speakers through one reverberant room
            x = np.zeros(n, np.float32)
            voices = min(int(rng.integers(3, 7)), len(self.speakers))
            for spk in rng.choice(self.speakers, voices, replace=False):
                wav, _ = self.bank.piece(rng, spk, self.config.chunk_seconds)
                x += np.resize(wav, n) * np.float32(10 ** (rng.uniform(-6, 0) / 20))
            rir = room_response(rng, rng.uniform(0.4, 0.9), rng.uniform(-6, 0)).astype(np.float32)
            x = fftconvolve(x, rir)[:n]
        else:
            return coloured_noise(rng, n)
        return x / (x.std() + 1e-12)

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
        """``size`` examples stacked: ``[size, samples]`` and ``[size, frames, 3]``."""
        pairs = [self.example(rng) for _ in range(size)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


class ReferenceChunks:
    """Random chunks of real recordings labelled by an RTTM (for fine-tuning): the three speakers
    who talk most in the chunk are its local speakers; frames where more than two talk keep the two
    who talk most in the chunk."""

    def __init__(self, recordings: list[tuple[np.ndarray, Diarization]], chunk_seconds: float) -> None:
        self.recordings = [(w, d) for w, d in recordings if len(w) > 0]
        if not self.recordings:
            raise MungError("fine-tuning: no usable recordings")
        self.samples = int(round(chunk_seconds * SR))
        self.frames = num_frames(self.samples)
        self.step = FRAME_SAMPLES

    def example(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        wav, ref = self.recordings[int(rng.integers(len(self.recordings)))]
        a = int(rng.integers(max(1, len(wav) - self.samples + 1)))
        chunk = np.zeros(self.samples, np.float32)
        piece = wav[a : a + self.samples]
        chunk[: len(piece)] = piece
        t0 = a / SR
        names = sorted({t.speaker for t in ref.turns})
        masks = np.zeros((len(names), self.samples // VAD_HOP + 1), bool)
        for t in ref.turns:
            s = int(round((t.start - t0) * SR / VAD_HOP))
            e = int(round((t.end - t0) * SR / VAD_HOP))
            if e > 0 and s < masks.shape[1]:
                masks[names.index(t.speaker), max(0, s) : max(0, e)] = True
        order = np.argsort(-masks.sum(1))[:N_SPEAKERS]
        top = np.zeros((N_SPEAKERS, masks.shape[1]), bool)
        top[: len(order)] = masks[order]
        crowded = top.sum(0) > MAX_SIMULTANEOUS
        top[MAX_SIMULTANEOUS:, crowded] = False
        return chunk, frame_labels(top, self.frames, self.step)
