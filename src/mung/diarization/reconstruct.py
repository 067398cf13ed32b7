"""Overlap-aware reconstruction: local speaker activities of sliding chunks, and the global
speaker each (chunk, local speaker) was clustered to → who speaks in every frame → turns.

The recipe is pyannote's (Bredin & Laurent, Interspeech 2021; Plaquet & Bredin, Interspeech 2023;
``pyannote/audio`` ``SpeakerDiarization.reconstruct``): each global speaker's score in a frame is
its activity averaged over the chunks that contain the frame and a local speaker clustered to it;
the *instantaneous speaker count* (active local speakers, averaged over the same chunks and
rounded) says how many of the top-scoring speakers are active in that frame. Frames of all chunks
lie on one grid (chunk starts are a whole number of frames apart), so the aggregation is a sum of
shifted arrays.
"""

from __future__ import annotations

import numpy as np

from mung.arrays import runs
from mung.diarization.rttm import Turn


def num_global_frames(num_chunks: int, chunk_frames: int, step_frames: int) -> int:
    """Frames on the recording's grid covered by ``num_chunks`` chunks."""
    return 0 if num_chunks == 0 else (num_chunks - 1) * step_frames + chunk_frames


def overlap_add(values: np.ndarray, step_frames: int) -> np.ndarray:
    """Sum of per-chunk arrays ``[C, F, ...]`` placed ``step_frames`` apart → ``[N, ...]``."""
    c, f = values.shape[:2]
    out = np.zeros((num_global_frames(c, f, step_frames), *values.shape[2:]), np.float64)
    for i in range(c):
        out[i * step_frames : i * step_frames + f] += values[i]
    return out


def chunk_mean(values: np.ndarray, step_frames: int) -> np.ndarray:
    """Per recording frame, the mean of per-chunk values ``[C, F]`` over the chunks covering it."""
    covered = overlap_add(np.ones(values.shape[:2]), step_frames)
    return overlap_add(values, step_frames) / np.maximum(covered, 1)


def speaker_count(activities: np.ndarray, step_frames: int, onset: float | None = None) -> np.ndarray:
    """Mean number of active local speakers per recording frame, over the chunks covering it
    (``activities``: ``[C, F, S]`` in [0, 1]). With ``onset`` a local speaker counts when its
    activity is above it; without, the count is the sum of the activities (the expected count:
    a powerset model unsure *which* local speaker talks still says *that* one does)."""
    active = (activities > onset if onset is not None else activities).sum(-1).astype(np.float64)
    return chunk_mean(active, step_frames)


def clustered_scores(
    activities: np.ndarray, clusters: np.ndarray, num_speakers: int, step_frames: int
) -> np.ndarray:
    """Score ``[N, K]`` of each global speaker per frame: activity averaged over the chunks that
    hold a local speaker of that cluster (two local speakers of one chunk in the same cluster
    count once, by their maximum). ``clusters``: ``[C, S]``, the global speaker of each local
    speaker or -1 (not assigned)."""
    c, f, s = activities.shape
    n = num_global_frames(c, f, step_frames)
    total = np.zeros((n, num_speakers))
    present = np.zeros((n, num_speakers))
    for i in range(c):
        rows = slice(i * step_frames, i * step_frames + f)
        for k in np.unique(clusters[i][clusters[i] >= 0]):
            total[rows, k] += activities[i][:, clusters[i] == k].max(-1)
            present[rows, k] += 1
    return total / np.maximum(present, 1)


def binarize(
    scores: np.ndarray,
    count: np.ndarray,
    rounding: float = 0.5,
    max_per_frame: int | None = None,
    exclusive: bool = False,
) -> np.ndarray:
    """Frames × speakers activity: the ``k`` highest-scoring speakers of each frame, where ``k`` is
    the speaker count rounded (``floor(count + rounding)``; 0.5 rounds to nearest), capped by
    ``max_per_frame`` (e.g. a known speaker total) and 1 if ``exclusive``. Speakers with a zero
    score (no chunk saw them there) are never picked, so a frame may get fewer than ``k``."""
    n, num_speakers = scores.shape
    k = np.floor(count + rounding).astype(int)
    cap = min(num_speakers, max_per_frame if max_per_frame is not None else num_speakers)
    k = np.clip(k, 0, 1 if exclusive else cap)
    if num_speakers == 0:
        return np.zeros((n, 0), bool)
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(num_speakers)[None].repeat(n, 0), axis=1)
    return (rank < k[:, None]) & (scores > 0)


def fill_gaps(active: np.ndarray, max_gap_frames: int) -> np.ndarray:
    """A 1-D activity with inner gaps of at most ``max_gap_frames`` frames filled."""
    out = active.copy()
    if max_gap_frames <= 0 or not active.any():
        return out
    starts, ends = runs(active)
    for e, s in zip(ends[:-1], starts[1:], strict=True):
        if s - e <= max_gap_frames:
            out[e:s] = True
    return out


def frames_to_turns(
    binary: np.ndarray,
    frame_step: float,
    duration: float,
    max_gap: float = 0.0,
    min_duration: float = 0.0,
    offset: float = 0.0,
) -> list[Turn]:
    """Turns (labels ``spk00``… by first appearance) from a frames × speakers activity; frame
    ``t`` spans ``[offset + t·step, offset + (t+1)·step)``, clipped to ``duration``. Within one
    speaker, gaps up to ``max_gap`` seconds are filled, then turns shorter than ``min_duration``
    are dropped."""
    pieces: list[tuple[float, float, int]] = []
    gap_frames = int(round(max_gap / frame_step))
    for k in range(binary.shape[1]):
        active = fill_gaps(binary[:, k], gap_frames)
        for a, b in zip(*runs(active), strict=True):
            s = max(0.0, offset + a * frame_step)
            e = min(duration, offset + b * frame_step)
            if e - s >= max(min_duration, 1e-3):
                pieces.append((s, e, k))
    first: dict[int, float] = {}
    for s, _, k in sorted(pieces):
        first.setdefault(k, s)
    names = {k: f"spk{i:02d}" for i, k in enumerate(sorted(first, key=first.__getitem__))}
    return [Turn(round(s, 3), round(e, 3), names[k]) for s, e, k in sorted(pieces)]
