"""Speaker verification evaluation: embed the files of a trial list once, score trials by cosine
similarity, report EER / minDCF in full and with the test side cropped to short durations."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mung.audio import SAMPLE_RATE, load
from mung.speaker.encoder import SpeakerEncoder, l2_normalize
from mung.speaker.lists import Trial
from mung.speaker.metrics import eer, eer_interval, min_dcf

CHUNK_SECONDS = 30.0  # longer audio is embedded in chunks whose embeddings are averaged


@dataclass
class DurationResult:
    duration: str  # "full" or e.g. "3s"
    eer: float  # percent
    min_dcf: float
    trials: int
    eer_ci: tuple[float, float] = (float("nan"), float("nan"))  # bootstrap 95 % interval, percent

    def row(self) -> str:
        ci = f"{self.eer_ci[0]:5.1f}-{self.eer_ci[1]:<5.1f}"
        return f"{self.duration:>6}  {self.eer:6.2f}  {ci:>11}  {self.min_dcf:7.4f}  {self.trials:6d}"


def embed_wav(encoder: SpeakerEncoder, wav: np.ndarray, chunk_seconds: float = CHUNK_SECONDS) -> np.ndarray:
    """One unit-norm embedding for a whole waveform (long audio: mean of chunk embeddings)."""
    total = len(wav) / SAMPLE_RATE
    starts = np.arange(0.0, total, chunk_seconds)
    spans = np.stack([starts, np.minimum(starts + chunk_seconds, total)], axis=1)
    if len(spans) > 1 and spans[-1, 1] - spans[-1, 0] < 1.0:  # fold a short tail into the last chunk
        spans = np.concatenate([spans[:-2], [[spans[-2, 0], total]]])
    return l2_normalize(encoder.embed_spans(wav, spans).mean(axis=0))


def centre_span(n_samples: int, seconds: float | None) -> tuple[float, float]:
    """The middle ``seconds`` of a clip (the whole clip if shorter or ``None``), in seconds."""
    total = n_samples / SAMPLE_RATE
    if seconds is None or seconds >= total:
        return 0.0, total
    start = (total - seconds) / 2
    return start, start + seconds


def duration_name(seconds: float | None) -> str:
    return "full" if seconds is None else f"{seconds:g}s"


def evaluate_trials(
    encoder: SpeakerEncoder,
    trials: list[Trial],
    audio_root: str | os.PathLike,
    durations: tuple[float | None, ...] = (None, 3.0, 1.0),
    p_target: float = 0.01,
    progress: bool = True,
) -> list[DurationResult]:
    """EER (percent) and minDCF per test duration; the enrollment side is always used in full,
    the test side is its centre crop of each duration."""
    root = Path(audio_root)
    enroll, test = {t.enroll for t in trials}, {t.test for t in trials}
    emb_enroll: dict[str, np.ndarray] = {}
    emb_test: dict[tuple[str, float | None], np.ndarray] = {}
    for rel in tqdm(sorted(enroll | test), desc="embedding", unit="file", disable=not progress):
        wav = load(root / rel)
        full = embed_wav(encoder, wav)
        if rel in enroll:
            emb_enroll[rel] = full
        if rel in test:
            for d in durations:
                span = np.array([centre_span(len(wav), d)])
                emb_test[rel, d] = full if d is None else encoder.embed_spans(wav, span)[0]
    labels = np.array([t.label for t in trials])
    out = []
    for d in durations:
        scores = np.array([float(emb_enroll[t.enroll] @ emb_test[t.test, d]) for t in trials])
        out.append(
            DurationResult(
                duration_name(d),
                100 * eer(scores, labels),
                min_dcf(scores, labels, p_target),
                len(trials),
                tuple(100 * v for v in eer_interval(scores, labels)),
            )
        )
    return out


def format_results(results: list[DurationResult]) -> str:
    """A small fixed-width table."""
    head = f"{'test':>6}  {'EER%':>6}  {'95% CI':>11}  {'minDCF':>7}  {'trials':>6}"
    return "\n".join([head, *(r.row() for r in results)])
