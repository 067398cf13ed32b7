"""Split-utterance verification: enrol every speaker on the first half of their utterance and test
on short crops of the second half, every enrolment against every test (cosine), EER per duration.

It needs one utterance per speaker only (as in ``../shared/data/speech``), so it measures how
well a span of a few seconds is embedded for enrolment and a 1-s or 3-s crop for testing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mung.audio import SAMPLE_RATE
from mung.errors import MungError
from mung.speaker.evaluate import crop_spans
from mung.speaker.metrics import eer, error_rates

WaveEmbedder = Callable[[list[np.ndarray]], np.ndarray]
"""Waveforms → ``[n, dim]`` unit-norm embeddings (one per waveform)."""


def halves(wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and second half of a waveform."""
    mid = len(wav) // 2
    return wav[:mid], wav[mid:]


def centre_crop(wav: np.ndarray, seconds: float) -> np.ndarray:
    """The centre ``seconds`` of ``wav`` (all of it when shorter)."""
    (a, b), = (crop_spans(len(wav), seconds) * SAMPLE_RATE).round().astype(int)
    return wav[a:b]


def all_vs_all(enrol: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores and labels of every enrolment (rows) against every test (same index = same speaker)."""
    scores = test @ enrol.T
    return scores.ravel(), np.eye(len(enrol), dtype=bool).ravel()


def split_scores(
    wavs: Sequence[np.ndarray],
    embed_enrol: WaveEmbedder,
    embed_test: WaveEmbedder | None = None,
    durations: Sequence[float] = (1.0, 3.0),
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """(scores, labels) of all trials per test duration; ``wavs`` holds one utterance per speaker."""
    if len(wavs) < 2:
        raise MungError("split-utterance trials need at least two speakers")
    embed_test = embed_test or embed_enrol
    parts = [halves(w) for w in wavs]
    enrol = embed_enrol([a for a, _ in parts])
    return {d: all_vs_all(enrol, embed_test([centre_crop(b, d) for _, b in parts])) for d in durations}


def split_eer(
    wavs: Sequence[np.ndarray],
    embed_enrol: WaveEmbedder,
    embed_test: WaveEmbedder | None = None,
    durations: Sequence[float] = (1.0, 3.0),
) -> dict[float, float]:
    """EER (percent) per test duration."""
    return {d: 100 * eer(*st) for d, st in split_scores(wavs, embed_enrol, embed_test, durations).items()}


def threshold_at(scores: np.ndarray, labels: np.ndarray, false_accept: float) -> float:
    """The lowest score threshold whose false-acceptance rate is at most ``false_accept``."""
    thr, _, fpr = error_rates(scores, labels)
    return float(thr[int(np.argmax(fpr <= false_accept))])
