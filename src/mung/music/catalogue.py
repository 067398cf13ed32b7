"""``mung music tag --dataset DIR``: one Parquet row per track (station, its probabilities,
moods, every mood score, model name and version), for catalogues of millions of tracks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from mung.batch import BatchItem
from mung.dataset import ModelId, TableTask, files_digest
from mung.music.features import load_mel
from mung.music.inference import Ensemble, default_checkpoints, read_meta, resolve, tag_row

SCORES = pa.map_(pa.string(), pa.float32())


class TagTable(TableTask):
    """Tag tracks with an ensemble of checkpoints (none = the shipped model)."""

    name = "tag"
    table = "tracks"
    schema = pa.schema([("path", pa.string()), ("uri", pa.string()), ("station", pa.string()),
                        ("station_probs", SCORES), ("moods", pa.list_(pa.string())),
                        ("mood_scores", SCORES)])

    def __init__(self, checkpoints: list[os.PathLike], weights: list[float] | None = None,
                 threshold: float | None = None) -> None:
        paths = [resolve(c) for c in checkpoints] or default_checkpoints()
        self.checkpoints = [str(p) for p in paths]
        self.weights, self.threshold = weights, threshold

    def model_id(self) -> ModelId:
        names = sorted({read_meta(c)["spec"]["name"] for c in self.checkpoints})
        shipped = {str(p) for p in default_checkpoints()} == set(self.checkpoints)
        name = "shipped:" + "+".join(names) if shipped else "+".join(Path(c).parent.name + "/" + Path(c).name
                                                                     for c in self.checkpoints)
        return ModelId(name, files_digest(self.checkpoints, f"{self.weights}|{self.threshold}"))

    def setup(self) -> None:
        self.state = Ensemble(self.checkpoints, self.weights)

    def load(self, item: BatchItem) -> np.ndarray:
        return load_mel(item.path, self.state.members[0].mel)

    def infer(self, item: BatchItem, mel: np.ndarray) -> dict:
        ens = self.state
        thr = ens.threshold if self.threshold is None else self.threshold
        return tag_row(ens, ens.predict_mels([mel]), 0, item.path, thr)

    def rows(self, item: BatchItem, result: dict) -> list[dict]:
        return [{"path": str(item.path), "uri": item.uri, "station": result["station"],
                 "station_probs": result["station_probs"], "moods": result["moods"],
                 "mood_scores": result["mood_scores"]}]
