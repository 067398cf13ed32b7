"""Frame-level detection scores: how well a diarization finds speech (one or more speakers) and
overlapped speech (two or more), whoever the speakers are. Scored on a 10 ms grid inside the UEM
(or the extent of the reference), with no collar."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mung.diarization.rttm import Diarization

FRAME = 0.01


def speakers_per_frame(d: Diarization, start: float, end: float, frame: float = FRAME) -> np.ndarray:
    """Number of distinct speakers active in each ``frame`` of ``[start, end)`` (a speaker's own
    overlapping turns count once)."""
    n = max(0, int(round((end - start) / frame)))
    out = np.zeros(n, np.int64)
    for speaker in d.speakers:
        active = np.zeros(n, bool)
        for t in d.turns:
            if t.speaker == speaker:
                a = max(0, int(round((t.start - start) / frame)))
                active[a : max(a, int(round((t.end - start) / frame)))] = True
        out += active
    return out


@dataclass
class Detection:
    """Frame counts of one detection task, summed over files."""

    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else float("nan")

    @property
    def recall(self) -> float:
        present = self.true_positive + self.false_negative
        return self.true_positive / present if present else float("nan")


def detection(
    refs: dict[str, Diarization],
    hyps: dict[str, Diarization],
    uem: dict[str, list[tuple[float, float]]] | None = None,
    min_speakers: int = 2,
) -> Detection:
    """Frames where at least ``min_speakers`` speakers talk: 1 scores speech detection, 2
    overlapped-speech detection. A reference file without a hypothesis has found nothing."""
    out = Detection()
    for uri, ref in refs.items():
        hyp = hyps.get(uri, Diarization(uri))
        regions = (uem or {}).get(uri) or [(0.0, max([t.end for t in ref.turns], default=0.0))]
        for start, end in regions:
            r = speakers_per_frame(ref, start, end) >= min_speakers
            h = speakers_per_frame(hyp, start, end) >= min_speakers
            out.true_positive += int((r & h).sum())
            out.false_positive += int((~r & h).sum())
            out.false_negative += int((r & ~h).sum())
    return out
