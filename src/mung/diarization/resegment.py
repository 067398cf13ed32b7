"""Window labels → speaker turns: merge consecutive windows of one speaker, put a speaker change
inside overlapping windows at the middle of the overlap (the seed's rule), optionally absorb
turns shorter than ``min_duration`` into their neighbours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mung.config import Config, Interval, param
from mung.diarization.rttm import Turn


@dataclass
class ResegmentConfig(Config):
    """``min_duration``: turns shorter than this (seconds) are relabelled to a neighbour;
    ``max_gap``: two turns of one speaker separated by less silence than this are joined."""

    section: ClassVar[str] = "resegment"

    min_duration: float = param(0.0, Interval(float, 0, None))
    max_gap: float = param(1.0, Interval(float, 0, None))


def window_turns(windows: np.ndarray, labels: np.ndarray) -> list[tuple[float, float, int]]:
    """Each window keeps the part of itself up to the middle of its overlap with the next one;
    consecutive pieces with one label merge."""
    if len(windows) == 0:
        return []
    order = np.argsort(windows[:, 0], kind="stable")
    w, lab = windows[order], labels[order]
    starts, ends = w[:, 0].copy(), w[:, 1].copy()
    overlap = w[1:, 0] < w[:-1, 1]
    mid = (w[1:, 0] + w[:-1, 1]) / 2
    ends[:-1] = np.where(overlap, mid, ends[:-1])
    starts[1:] = np.where(overlap, mid, starts[1:])
    pieces: list[tuple[float, float, int]] = []
    for s, e, k in zip(starts, ends, lab, strict=True):
        if pieces and pieces[-1][2] == k and s - pieces[-1][1] <= 1e-6:
            pieces[-1] = (pieces[-1][0], max(pieces[-1][1], e), int(k))
        else:
            pieces.append((float(s), float(e), int(k)))
    return pieces


def _touch(a: tuple[float, float, int], b: tuple[float, float, int]) -> bool:
    return abs(a[0] - b[1]) < 1e-6 or abs(b[0] - a[1]) < 1e-6


def smooth(pieces: list[tuple[float, float, int]], min_duration: float) -> list[tuple[float, float, int]]:
    """Relabel pieces shorter than ``min_duration`` that touch a neighbour to the longer touching
    neighbour's label (shortest first), then merge."""
    pieces = list(pieces)
    while min_duration > 0 and len(pieces) > 1:
        short = [i for i, p in enumerate(pieces) if p[1] - p[0] < min_duration]
        best = None
        for i in sorted(short, key=lambda i: pieces[i][1] - pieces[i][0]):
            nbrs = [j for j in (i - 1, i + 1) if 0 <= j < len(pieces)]
            nbrs = [j for j in nbrs if _touch(pieces[i], pieces[j])]
            if nbrs:
                best = (i, max(nbrs, key=lambda j: pieces[j][1] - pieces[j][0]))
                break
        if best is None:
            break
        i, j = best
        pieces[i] = (pieces[i][0], pieces[i][1], pieces[j][2])
        pieces = merge_pieces(pieces, 0.0)
    return pieces


def merge_pieces(pieces: list[tuple[float, float, int]], max_gap: float) -> list[tuple[float, float, int]]:
    """Time-ordered ``(start, end, label)`` pieces with consecutive pieces of one label joined
    where they overlap or lie at most ``max_gap`` seconds apart."""
    out: list[tuple[float, float, int]] = []
    for s, e, k in pieces:
        if out and out[-1][2] == k and s - out[-1][1] <= max_gap + 1e-6:
            out[-1] = (out[-1][0], max(out[-1][1], e), k)
        else:
            out.append((s, e, k))
    return out


def resegment(
    windows: np.ndarray, labels: np.ndarray, config: ResegmentConfig | None = None
) -> list[Turn]:
    """Speaker turns (labels ``spk00``, ``spk01``…) from labelled windows."""
    config = config or ResegmentConfig()
    config.validate()
    pieces = smooth(window_turns(np.asarray(windows, np.float64), np.asarray(labels)), config.min_duration)
    pieces = merge_pieces(pieces, config.max_gap)
    return [Turn(round(s, 3), round(e, 3), f"spk{k:02d}") for s, e, k in pieces if e - s > 1e-3]
