"""``mung music tag --dataset DIR``: one Parquet row per track (station, its probabilities,
moods, every mood score, model name and version), for catalogues of millions of tracks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from mung.batch import BatchItem, warn
from mung.dataset import ModelId, TableTask, files_digest
from mung.music.batch_tasks import TagTask
from mung.music.model_io import default_checkpoints, read_meta, resolve

SCORES = pa.map_(pa.string(), pa.float32())


class TagTable(TableTask):
    """Tag tracks with an ensemble of checkpoints (none = the shipped model); decoding (with
    the silence check) and the model are separate steps so that an engine can overlap them."""

    name = "tag"
    table = "tracks"
    schema = pa.schema([("path", pa.string()), ("uri", pa.string()), ("station", pa.string()),
                        ("station_probs", SCORES), ("moods", pa.list_(pa.string())),
                        ("mood_scores", SCORES)])

    def __init__(self, checkpoints: list[os.PathLike], weights: list[float] | None = None,
                 threshold: float | None = None) -> None:
        paths = [resolve(c) for c in checkpoints] or default_checkpoints()
        self.tagger = TagTask([str(p) for p in paths], weights, threshold)

    def model_id(self) -> ModelId:
        ckpts = self.tagger.checkpoints
        names = sorted({read_meta(c)["spec"]["name"] for c in ckpts})
        shipped = {str(p) for p in default_checkpoints()} == set(ckpts)
        name = ("shipped:" + "+".join(names) if shipped
                else "+".join(f"{Path(c).parent.name}/{Path(c).name}" for c in ckpts))
        return ModelId(name, files_digest(ckpts, f"{self.tagger.weights}|{self.tagger.threshold}"))

    def setup(self) -> None:
        self.tagger.setup()
        self.state = self.tagger._ensemble

    def load(self, item: BatchItem) -> tuple[np.ndarray, str | None]:
        return self.tagger.load(item)

    def infer(self, item: BatchItem, loaded: tuple[np.ndarray, str | None]) -> tuple[dict, str | None]:
        return self.tagger.infer(item, loaded)

    def write(self, item: BatchItem, result: tuple[dict, str | None]) -> None:
        if result[1]:
            warn(result[1])

    def rows(self, item: BatchItem, result: tuple[dict, str | None]) -> list[dict]:
        row = result[0]
        return [{"path": str(item.path), "uri": item.uri, "station": row["station"],
                 "station_probs": row["station_probs"], "moods": row["moods"],
                 "mood_scores": row["mood_scores"]}]
