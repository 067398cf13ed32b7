"""Small numpy helpers shared by the speaker, diarization and music code."""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the True runs of a 1-D mask, ends exclusive: ``runs([0, 1, 1, 0, 1])``
    is ``([1, 4], [3, 5])``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]])))
    return edges[0::2], edges[1::2]


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def group_by_length(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of equal ``lengths`` (so items stack without padding)."""
    batches: list[np.ndarray] = []
    for n in np.unique(lengths):
        idx = np.flatnonzero(lengths == n)
        batches.extend(idx[i : i + batch_size] for i in range(0, len(idx), batch_size))
    return batches


def tile(x: np.ndarray, length: int) -> np.ndarray:
    """``x`` repeated whole along its last axis until it is at least ``length`` long (a longer
    ``x`` comes back unchanged)."""
    n = x.shape[-1]
    if n >= length:
        return x
    return np.concatenate([x] * -(-length // max(n, 1)), axis=-1)


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """``x`` tiled and cut to exactly ``length`` along its last axis when shorter, else unchanged."""
    return x if x.shape[-1] >= length else tile(x, length)[..., :length]
