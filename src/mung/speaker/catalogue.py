"""``mung speaker embed --dataset DIR``: one Parquet row per file with its embedding vector."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pyarrow as pa

from mung import audio
from mung.batch import BatchItem
from mung.dataset import ModelId, TableTask, files_digest
from mung.speaker.encoder import load_encoder
from mung.speaker.evaluate import embed_wav


class EmbedTable(TableTask):
    """Whole-file embeddings (mean of chunk embeddings for long audio) with one encoder."""

    name = "embed"
    table = "embeddings"
    schema = pa.schema([("uri", pa.string()), ("path", pa.string()),
                        ("embedding", pa.list_(pa.float32()))])

    def __init__(self, model: str = "default", segment_aggregation: bool = False, device: str = "cpu"
                 ) -> None:
        self.model, self.segment_aggregation, self.device = model, segment_aggregation, device

    def model_id(self) -> ModelId:
        ckpt = self.model.partition(":")[2]
        files = [ckpt] if ckpt and Path(ckpt).is_file() else []
        return ModelId(f"{self.model.partition(':')[0] or 'default'}-{version('mung')}",
                       files_digest(files, f"{self.model}|{self.segment_aggregation}"))

    def setup(self) -> None:
        self.state = load_encoder(self.model, self.device, segment_aggregation=self.segment_aggregation)

    def load(self, item: BatchItem) -> np.ndarray:
        return audio.load(item.path)

    def infer(self, item: BatchItem, wav: np.ndarray) -> np.ndarray:
        return embed_wav(self.state, wav).astype(np.float32)

    def rows(self, item: BatchItem, vec: np.ndarray) -> list[dict]:
        return [{"uri": item.uri, "path": str(item.path), "embedding": vec.tolist()}]
