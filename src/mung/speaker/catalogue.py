"""``mung speaker embed --dataset DIR``: one Parquet row per file with its embedding vector."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pyarrow as pa

from mung.batch import BatchItem, warn
from mung.dataset import ModelId, TableTask, files_digest
from mung.speaker.embedding import EmbedTask
from mung.speaker.utterance import SpeechDetector


class EmbedTable(TableTask):
    """Whole-file embeddings (partial windows over the speech ``speech`` finds) with one encoder; silent
    files are refused as in ``mung speaker embed``."""

    name = "embed"
    table = "embeddings"
    schema = pa.schema([("uri", pa.string()), ("path", pa.string()),
                        ("embedding", pa.list_(pa.float32()))])

    def __init__(self, model: str = "default", segment_aggregation: bool = False, device: str = "cpu",
                 speech: SpeechDetector | None = None) -> None:
        self.embedder = EmbedTask(Path("."), model, segment_aggregation, device, speech=speech)

    def model_id(self) -> ModelId:
        model = self.embedder.model
        ckpt = model.partition(":")[2]
        files = [ckpt] if ckpt and Path(ckpt).is_file() else []
        return ModelId(f"{model.partition(':')[0] or 'default'}-{version('mung')}",
                       files_digest(files, f"{model}|{self.embedder.segment_aggregation}"))

    def setup(self) -> None:
        self.embedder.setup()
        self.state = self.embedder._encoder

    def load(self, item: BatchItem) -> tuple[np.ndarray, str | None]:
        return self.embedder.load(item)

    def infer(self, item: BatchItem, loaded: tuple[np.ndarray, str | None]) -> tuple[np.ndarray, str | None]:
        return self.embedder.infer(item, loaded)

    def write(self, item: BatchItem, result: tuple[np.ndarray, str | None]) -> None:
        if result[1]:
            warn(result[1])

    def rows(self, item: BatchItem, result: tuple[np.ndarray, str | None]) -> list[dict]:
        return [{"uri": item.uri, "path": str(item.path), "embedding": result[0].tolist()}]
