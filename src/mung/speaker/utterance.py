"""Utterance embedding: the speech of a span of any length as the mean of partial-window embeddings.

A speaker encoder trained on short crops (GE2E on 1.6-s partials, Wan et al., ICASSP 2018) embeds
a long span badly when its network runs over the whole span once. ``resemblyzer``'s own
``VoiceEncoder.embed_utterance`` instead trims long silences, normalises loudness and averages
1.6-s windows with 50 % overlap. :class:`UtteranceEmbedder` does the same for any
:class:`~mung.speaker.encoders.SpeakerEncoder`, batched over many spans at once, with silence
trimmed by a speech detector the caller passes in (mung's VAD; the speaker layer does not import
the diarization layer) and each span's loudness raised to -30 dBFS as a whole (not window by
window: the GE2E network reads power mel spectra, and per-window levelling cost 1.5 points of EER
on 1-s tests, measured). Measured on the 201 shared
LibriSpeech speakers (enrol on one half of each utterance, test on a crop of the other; see
``benchmarks/speaker.py``): the results table in the README.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from mung.arrays import fit_length, l2_normalize
from mung.audio import SAMPLE_RATE
from mung.config import Config, Interval, Options, Type, param
from mung.errors import MungError
from mung.speaker.encoders import SpeakerEncoder
from mung.speaker.models import segment_bounds

SpeechDetector = Callable[[np.ndarray], np.ndarray]
"""A 16 kHz mono waveform → its speech regions, ``[n, 2]`` seconds (e.g. mung's VAD)."""


@dataclass
class UtteranceConfig(Config):
    """``window`` seconds with ``overlap`` (fraction) between neighbours; the last window is
    aligned to the span's end, so no zero padding is embedded. ``short``: a span shorter than a
    window is embedded as it is (``plain``) or repeated up to the window length (``tile``).
    ``trim_silence``: embed only the detected speech of each span, unless it holds less than
    ``min_speech`` seconds (then the span is embedded whole). ``loudness``: ``utterance`` raises
    each span's speech to ``target_dbfs`` if it is quieter (resemblyzer's ``preprocess_wav``) and
    asks the encoder not to level each window; ``window``: the encoder's own per-window levelling."""

    section: ClassVar[str] = "utterance"

    window: float = param(1.6, Interval(float, 0, None, "neither"))
    overlap: float = param(0.5, Interval(float, 0, 1, "left"))
    short: Literal["plain", "tile"] = param("plain", Options(("plain", "tile")))
    trim_silence: bool = param(True, Type(bool))
    min_speech: float = param(0.5, Interval(float, 0, None))
    loudness: Literal["utterance", "window"] = param("utterance", Options(("utterance", "window")))
    target_dbfs: float = param(-30.0, Interval(float, None, 0))


@dataclass
class UtteranceEmbedding:
    """Unit-norm embeddings of spans, with the seconds of speech each came from and its windows."""

    embeddings: np.ndarray  # [n, dim]
    speech_seconds: np.ndarray  # [n]
    partials: list[np.ndarray]  # per span: [k, dim] unit-norm window embeddings


def speech_pieces(regions: np.ndarray, start: float, end: float) -> np.ndarray:
    """The parts of ``regions`` inside ``start``..``end``, ``[k, 2]`` seconds."""
    regions = np.asarray(regions, np.float64).reshape(-1, 2)
    a, b = np.maximum(regions[:, 0], start), np.minimum(regions[:, 1], end)
    keep = b - a > 1e-3
    return np.stack([a[keep], b[keep]], axis=1)


class UtteranceEmbedder:
    """``UtteranceEmbedder(encoder, speech=detect)(wav, spans)`` → one unit vector per span. It is
    itself a :class:`~mung.speaker.encoders.SpeakerEncoder` (``embed_spans``), so it can stand in
    for the encoder wherever whole files or long spans are embedded (``speaker embed``/``eval``)."""

    def __init__(
        self,
        encoder: SpeakerEncoder,
        speech: SpeechDetector | None = None,
        config: UtteranceConfig | None = None,
    ) -> None:
        self.speech = speech
        self.config = config or UtteranceConfig()
        self.config.validate()
        self.encoder = encoder
        if self.config.loudness == "utterance" and getattr(encoder, "span_loudness", False):
            self.encoder = copy.copy(encoder)  # shares the network; only the levelling differs
            self.encoder.span_loudness = False

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def naming_threshold(self) -> float:
        return self.encoder.naming_threshold

    @property
    def identify_threshold(self) -> float:
        return self.encoder.identify_threshold

    def _compact(
        self, wav: np.ndarray, spans: np.ndarray, regions: np.ndarray | None
    ) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
        """One waveform holding each span's speech back to back, each span's sample range in it,
        and each span's seconds of detected speech (its length when nothing detects speech)."""
        if not self.config.trim_silence:
            regions = None
        elif regions is None and self.speech is not None:
            regions = self.speech(wav)
        parts, bounds, at = [], [], 0
        seconds = spans[:, 1] - spans[:, 0]
        for i, (start, end) in enumerate(spans):
            pieces = np.array([[start, end]])
            if regions is not None:
                found = speech_pieces(regions, start, end)
                seconds[i] = (found[:, 1] - found[:, 0]).sum()
                if seconds[i] >= self.config.min_speech:
                    pieces = found
            for a, b in (pieces * SAMPLE_RATE).round().astype(int):
                parts.append(wav[a:b])
            n = sum(len(p) for p in parts) - at
            bounds.append((at, at + n))
            at += n
        return np.concatenate(parts), bounds, seconds

    def _windows(self, n: int) -> np.ndarray:
        """Sample bounds of the partial windows of an ``n``-sample piece."""
        win = int(round(self.config.window * SAMPLE_RATE))
        hop = max(1, int(round(win * (1 - self.config.overlap))))
        return segment_bounds(n, win, hop)

    def embed(
        self, wav: np.ndarray, spans: np.ndarray | None = None, regions: np.ndarray | None = None
    ) -> UtteranceEmbedding:
        """Embed ``spans`` (``[n, 2]`` seconds into ``wav``; ``None`` = the whole waveform). All
        windows of all spans go to the encoder in one call (it batches windows of equal length).
        ``regions``: the speech regions of ``wav`` if already known (else the detector runs)."""
        wav = np.asarray(wav, np.float32)
        total = len(wav) / SAMPLE_RATE
        spans = np.array([[0.0, total]]) if spans is None else np.asarray(spans, np.float64).reshape(-1, 2)
        spans = np.clip(spans, 0.0, total)
        if len(spans) == 0:
            return UtteranceEmbedding(np.zeros((0, self.dim), np.float32), np.zeros(0), [])
        if len(wav) == 0 or (spans[:, 1] - spans[:, 0]).min() <= 0:
            raise MungError("cannot embed an empty span")
        compact, bounds, seconds = self._compact(wav, spans, regions)
        if self.config.loudness == "utterance":
            compact = _raise_loudness(compact, bounds, self.config.target_dbfs)
        win = int(round(self.config.window * SAMPLE_RATE))
        if self.config.short == "tile":
            compact, bounds = _tile_short(compact, bounds, win)
        windows = [a + self._windows(b - a) for a, b in bounds]
        counts = [len(w) for w in windows]
        partial = l2_normalize(self.encoder.embed_spans(compact, np.concatenate(windows) / SAMPLE_RATE))
        split = np.split(partial, np.cumsum(counts)[:-1])
        emb = l2_normalize(np.stack([p.mean(0) for p in split])).astype(np.float32)
        return UtteranceEmbedding(emb, seconds, split)

    def __call__(self, wav: np.ndarray, spans: np.ndarray | None = None) -> np.ndarray:
        return self.embed(wav, spans).embeddings

    def embed_spans(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        return self.embed(wav, spans).embeddings

    def embed_waveforms(self, wavs: list[np.ndarray]) -> UtteranceEmbedding:
        """One embedding per waveform, all windows batched together (speech detected per wave)."""
        if not wavs:
            return self.embed(np.zeros(0, np.float32), np.zeros((0, 2)))
        lengths = np.array([len(w) for w in wavs]) / SAMPLE_RATE
        offsets = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
        regions = None
        if self.speech is not None and self.config.trim_silence:
            regions = np.concatenate([self.speech(w) + t for w, t in zip(wavs, offsets, strict=True)])
        spans = np.stack([offsets, offsets + lengths], axis=1)
        return self.embed(np.concatenate(wavs).astype(np.float32), spans, regions)


def _raise_loudness(compact: np.ndarray, bounds: list[tuple[int, int]], target_dbfs: float) -> np.ndarray:
    """Each piece scaled up to ``target_dbfs`` (RMS re full scale) if quieter; louder ones kept."""
    out = compact.copy()
    for a, b in bounds:
        rms = float(np.sqrt(np.mean(out[a:b].astype(np.float64) ** 2))) if b > a else 0.0
        if 0 < rms < 10 ** (target_dbfs / 20):
            out[a:b] *= np.float32(10 ** (target_dbfs / 20) / rms)
    return out


def _tile_short(
    compact: np.ndarray, bounds: list[tuple[int, int]], win: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Pieces shorter than ``win`` samples repeated up to ``win`` (a new compact waveform)."""
    parts, out, at = [], [], 0
    for a, b in bounds:
        piece = compact[a:b]
        if 0 < len(piece) < win:
            piece = fit_length(piece, win)
        parts.append(piece)
        out.append((at, at + len(piece)))
        at += len(piece)
    return np.concatenate(parts), out
