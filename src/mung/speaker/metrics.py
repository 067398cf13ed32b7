"""Verification metrics: equal error rate and minimum detection cost (NIST SRE style)."""

from __future__ import annotations

import numpy as np

from mung.errors import MungError


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Miss and false-alarm rates when accepting ``score >= t`` for every candidate threshold
    (each distinct score, plus +inf = reject all). Returns ``(thresholds, fnr, fpr)``."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise MungError("scores and labels must be 1-D arrays of the same length")
    if labels.all() or not labels.any():
        raise MungError("trials need both target (1) and non-target (0) labels to compute EER / minDCF")
    tgt = np.sort(scores[labels])
    non = np.sort(scores[~labels])
    thr = np.append(np.unique(scores), np.inf)
    fnr = np.searchsorted(tgt, thr, side="left") / len(tgt)
    fpr = 1.0 - np.searchsorted(non, thr, side="left") / len(non)
    return thr, fnr, fpr


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate (fraction), linearly interpolated where miss and false-alarm rates cross."""
    _, fnr, fpr = error_rates(scores, labels)
    i = int(np.argmax(fnr >= fpr))  # fnr rises to 1 and fpr falls to 0, so a crossing exists
    if fnr[i] == fpr[i] or i == 0:
        return float((fnr[i] + fpr[i]) / 2)
    before = fpr[i - 1] - fnr[i - 1]
    after = fnr[i] - fpr[i]
    a = before / (before + after)
    return float(fnr[i - 1] + a * (fnr[i] - fnr[i - 1]))


def min_dcf(
    scores: np.ndarray,
    labels: np.ndarray,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> float:
    """Minimum normalised detection cost over thresholds."""
    _, fnr, fpr = error_rates(scores, labels)
    cost = c_miss * p_target * fnr + c_fa * (1 - p_target) * fpr
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def eer_interval(
    scores: np.ndarray, labels: np.ndarray, n_boot: int = 500, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap confidence interval of the EER (targets and non-targets resampled separately)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    tgt, non = scores[labels], scores[~labels]
    rng = np.random.default_rng(seed)
    lab = np.r_[np.ones(len(tgt)), np.zeros(len(non))]
    boot = [eer(np.r_[rng.choice(tgt, len(tgt)), rng.choice(non, len(non))], lab) for _ in range(n_boot)]
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)
