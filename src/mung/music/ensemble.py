"""A weighted ensemble of music checkpoints of one task, vocabulary and front-end."""

from __future__ import annotations

import os

import numpy as np

from mung.errors import MungError
from mung.music.features import normalise
from mung.music.model_io import load_music_model
from mung.music.predict import load_mels, predict_mels
from mung.torchutil import torch_threads


class Ensemble:
    """Checkpoints of the same task(s), vocabularies and front-end; predictions are the weighted
    average of their probabilities."""

    def __init__(self, checkpoints: list[os.PathLike], weights: list[float] | None = None,
                 device: str = "cpu"):
        if not checkpoints:
            raise MungError("no checkpoint given")
        self.members = [load_music_model(c, device) for c in checkpoints]
        self.device = device
        w = np.ones(len(self.members)) if weights is None else np.asarray(weights, dtype=float)
        if len(w) != len(self.members) or (w < 0).any() or w.sum() <= 0:
            raise MungError(f"need {len(self.members)} non-negative weights with a positive sum")
        self.weights = w / w.sum()
        first = self.members[0]
        for m in self.members[1:]:
            for key in ("task", "stations", "moods", "mel"):
                if m.meta[key] != first.meta[key]:
                    raise MungError(f"{m.path}: its {key} differs from {first.path}; "
                                    "an ensemble needs checkpoints of one task and vocabulary")
        self.meta = first.meta
        self.tasks = first.tasks
        self.stations: list[str] = first.meta["stations"]
        self.moods: list[str] = first.meta["moods"]
        thresholds = [m.meta.get("mood_threshold", 0.5) for m in self.members]
        self.threshold = float(np.dot(self.weights, thresholds))

    def predict_mels(self, mels: list[np.ndarray], batch_size: int = 16) -> dict[str, np.ndarray]:
        """``mels`` are raw power mel; each member applies its own normalisation and crop. Runs on
        one torch thread: for these small models on batched crops a second intra-op thread cost
        1.5x the CPU time (measured on 60 clips); parallelism comes from worker processes."""
        total: dict[str, np.ndarray] = {}
        with torch_threads(1):
            for w, m in zip(self.weights, self.members, strict=True):
                normed = [normalise(x, m.mel.normalisation) for x in mels]
                for task, p in predict_mels(m.model, normed, m.meta["crop_frames"], batch_size,
                                            self.device).items():
                    total[task] = total.get(task, 0) + w * p
        return total

    def predict(self, inputs: list[os.PathLike], batch_size: int = 16, progress: bool = False
                ) -> dict[str, np.ndarray]:
        return self.predict_mels(load_mels(inputs, self.members[0].mel, progress), batch_size)
