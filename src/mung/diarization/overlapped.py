"""Overlapped-speech detection with the local segmentation model, and overlap-aware
resegmentation of a one-speaker-at-a-time diarization.

The model slides over the recording; a frame's overlap probability is the probability of its
pair classes (two local speakers at once), averaged over the chunks that cover it. Frames above
the threshold that the diarization already gives to a speaker get a *second* speaker: the
nearest other speaker in time, before or after (Otterson & Ostendorf, "Efficient use of overlap
information in speaker diarization", ASRU 2007; the overlap-aware resegmentation of Bullock,
Bredin & Garcia-Perera, ICASSP 2020, assigns the second speaker the same way). Who talks over
whom is mostly the person just interrupted or about to answer, so this needs no separation of
the two voices, which a small CPU-trained model does poorly.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from mung.arrays import runs
from mung.audio import SAMPLE_RATE
from mung.diarization.overlap import sliding_chunks
from mung.diarization.reconstruct import chunk_mean
from mung.diarization.resegment import merge_pieces
from mung.diarization.rttm import Turn
from mung.torchutil import torch_threads

GRID = 0.01  # seconds: the resolution at which turns are edited


class OverlapDetector(Protocol):
    """A segmentation model (:class:`~mung.diarization.segmentation.SegmentationModel`):
    ``infer_overlap(chunks [B, chunk_samples]) → [B, frames]`` overlap probabilities, frame
    ``i`` centred at ``i * frame_step`` s of its chunk; ``overlap_threshold`` its calibrated
    threshold."""

    chunk_samples: int
    frame_step: float
    overlap_threshold: float

    def infer_overlap(self, chunks: np.ndarray) -> np.ndarray: ...


def detect_overlap(model: OverlapDetector, wav: np.ndarray, step: float = 2.0,
                   batch_size: int = 32) -> np.ndarray:
    """Per model frame of the recording (frame ``i`` centred at ``i * model.frame_step`` s), the
    overlap probability averaged over the chunks (``step`` s apart) that cover it. The model runs
    on one torch thread (faster than two on a shared 2-core machine)."""
    step_frames = max(1, int(round(step / model.frame_step)))
    step_samples = int(round(step_frames * model.frame_step * SAMPLE_RATE))
    with torch_threads(1):
        probs = [model.infer_overlap(c) for c in sliding_chunks(wav, model.chunk_samples, step_samples,
                                                                 batch_size)]
    mean = chunk_mean(np.concatenate(probs).astype(np.float64), step_frames)
    n = int(np.ceil(len(wav) / SAMPLE_RATE / model.frame_step))
    return mean[: max(n, 1)].astype(np.float32)


def overlapped_regions(probability: np.ndarray, frame_step: float, threshold: float,
                       min_duration: float = 0.0) -> list[tuple[float, float]]:
    """(start, end) seconds of the runs of frames above ``threshold`` lasting at least
    ``min_duration`` (frame ``i`` spans ``(i ± 0.5) * frame_step``)."""
    out = []
    for a, b in zip(*runs(probability > threshold), strict=True):
        s, e = max(0.0, (a - 0.5) * frame_step), (b - 0.5) * frame_step
        if e - s >= max(min_duration, 1e-9):
            out.append((s, e))
    return out


def _grid_labels(turns: list[Turn], names: list[str], frames: int) -> np.ndarray:
    """Speaker index per ``GRID`` frame (-1: nobody; where turns overlap, the later one)."""
    labels = np.full(frames, -1, np.int64)
    for t in sorted(turns, key=lambda t: t.start):
        labels[int(round(t.start / GRID)) : int(round(t.end / GRID))] = names.index(t.speaker)
    return labels


def _nearest_other(labels: np.ndarray, a: int, b: int, speaker: int) -> int:
    """The speaker other than ``speaker`` whose speech is nearest to frames ``a``..``b`` (-1 if
    nobody else speaks)."""
    before = np.flatnonzero((labels[:a] >= 0) & (labels[:a] != speaker))
    after = np.flatnonzero((labels[b:] >= 0) & (labels[b:] != speaker))
    gap_before = a - before[-1] if len(before) else np.inf
    gap_after = after[0] + 1 if len(after) else np.inf
    if gap_before == gap_after == np.inf:
        return -1
    return int(labels[before[-1]] if gap_before <= gap_after else labels[b + after[0]])


def add_second_speaker(turns: list[Turn], regions: list[tuple[float, float]], duration: float
                       ) -> list[Turn]:
    """``turns`` plus, inside each overlapped region, a turn of the nearest other speaker in time
    over every stretch that one speaker holds (regions outside any turn are not speech and get
    nothing). With one speaker in ``turns`` there is nobody to add."""
    names = sorted({t.speaker for t in turns})
    if len(names) < 2 or not regions:
        return list(turns)
    frames = int(np.ceil(duration / GRID)) + 1
    labels = _grid_labels(turns, names, frames)
    second = np.full(frames, -1, np.int64)
    for start, end in regions:
        a, b = int(round(start / GRID)), min(frames, int(round(end / GRID)))
        piece = labels[a:b]
        for s, e in zip(*runs(piece >= 0), strict=True):  # speech stretches inside the region
            cuts = np.flatnonzero(np.diff(piece[s:e])) + 1
            for u, v in zip(np.r_[0, cuts], np.r_[cuts, e - s], strict=True):
                who = int(piece[s + u])
                second[a + s + u : a + s + v] = _nearest_other(labels, a + s + u, a + s + v, who)
    added = [
        Turn(round(s * GRID, 3), round(min(duration, e * GRID), 3), name)
        for k, name in enumerate(names)
        for s, e in zip(*runs(second == k), strict=True)
    ]
    return join_touching([*turns, *added])


def join_touching(turns: list[Turn]) -> list[Turn]:
    """``turns`` with each speaker's overlapping turns, or turns at most half a ``GRID`` step
    apart, joined into one (a second speaker's added turn often continues that speaker's own
    turn; added turns are rounded onto the 10-ms grid), sorted by time. Each speaker gains at
    most those gaps of up to 5 ms."""
    out = [Turn(s, e, name)
           for name in {t.speaker for t in turns}
           for s, e, _ in merge_pieces(sorted((t.start, t.end, 0) for t in turns if t.speaker == name),
                                       GRID / 2)]
    return sorted(out, key=lambda t: (t.start, t.end, t.speaker))
