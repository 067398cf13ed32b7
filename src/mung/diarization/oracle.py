"""A perfect segmentation model made from reference turns, for evaluation: what the rest of the
overlap-aware pipeline (embeddings, linking, clustering, reconstruction) does when the model
makes no error, and so how much of a result the model itself costs."""

from __future__ import annotations

import numpy as np

from mung.diarization.overlap import LocalSegmenter
from mung.diarization.rttm import Turn


class ReferenceSegmenter:
    """Local activities from reference ``turns`` with the geometry of ``model``. Chunks must be
    asked for in order from the start of the recording, ``step`` seconds apart (call
    :meth:`start` before each recording); local speakers are the three with the most speech in
    the chunk, in order of first activity."""

    local_speakers = True

    def __init__(self, model: LocalSegmenter, frames: int) -> None:
        self.chunk_samples, self.frame_step, self.frames = model.chunk_samples, model.frame_step, frames
        self.turns: list[Turn] = []
        self.next, self.step = 0, 1.0

    def start(self, turns: list[Turn], step: float) -> None:
        self.turns, self.next, self.step = turns, 0, step

    def infer(self, chunks: np.ndarray, hard: bool = True) -> np.ndarray:
        out = np.zeros((len(chunks), self.frames, 3), np.float32)
        speakers = sorted({t.speaker for t in self.turns})
        for b in range(len(chunks)):
            times = (self.next + b) * self.step + np.arange(self.frames) * self.frame_step
            act = np.zeros((self.frames, len(speakers)), bool)
            for t in self.turns:
                act[:, speakers.index(t.speaker)] |= (times >= t.start) & (times < t.end)
            local = [k for k in np.argsort(-act.sum(0))[:3] if act[:, k].any()]
            for j, k in enumerate(sorted(local, key=lambda k: np.argmax(act[:, k]))):
                out[b, :, j] = act[:, k]
        self.next += len(chunks)
        return out
