"""A weighted ensemble of music checkpoints of one task, vocabulary and front-end."""

from __future__ import annotations

import os

import numpy as np

from mung.errors import MungError
from mung.music.features import normalise
from mung.music.model_io import load_music_model
from mung.music.predict import load_mels, predict_many
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
        """``mels`` are raw power mel; each member applies its own normalisation and crop
        (members that share both run on the same crops and share features). Runs on one torch
        thread: for these small models on batched crops a second intra-op thread cost 1.5x the
        CPU time (measured on 60 clips); parallelism comes from worker processes."""
        groups: dict[tuple, list[int]] = {}
        for i, m in enumerate(self.members):
            groups.setdefault((m.mel.normalisation, m.meta["crop_frames"]), []).append(i)
        total: dict[str, np.ndarray] = {}
        with torch_threads(1):
            for (how, crop), idx in groups.items():
                normed = [normalise(x, how) for x in mels]
                models = [self.members[i].model for i in idx]
                for i, probs in zip(idx, predict_many(models, normed, crop, batch_size, self.device),
                                    strict=True):
                    for task, p in probs.items():
                        total[task] = total.get(task, 0) + self.weights[i] * p
        return total

    def predict(self, inputs: list[os.PathLike], batch_size: int = 16, progress: bool = False
                ) -> dict[str, np.ndarray]:
        return self.predict_mels(load_mels(inputs, self.members[0].mel, progress), batch_size)
