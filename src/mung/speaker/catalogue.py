"""``mung speaker embed --dataset DIR``: one Parquet row per file with its embedding vector."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pyarrow as pa

from mung import audio
from mung.batch import BatchItem, warn
from mung.dataset import ModelId, TableTask, files_digest
from mung.speaker.embedding import EmbedTask, embed_wav


class EmbedTable(TableTask):
    """Whole-file embeddings (mean of chunk embeddings for long audio) with one encoder; silent
    files are refused as in ``mung speaker embed``."""

    name = "embed"
    table = "embeddings"
    schema = pa.schema([("uri", pa.string()), ("path", pa.string()),
                        ("embedding", pa.list_(pa.float32()))])

    def __init__(self, model: str = "default", segment_aggregation: bool = False, device: str = "cpu"
                 ) -> None:
        self.embedder = EmbedTask(Path("."), model, segment_aggregation, device)

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
        wav = audio.load(item.path)
        mel = audio.power_mel(wav, audio.SAMPLE_RATE, 1024, 512, 128)
        return wav, audio.check_signal(item.path, mel, "embed")

    def infer(self, item: BatchItem, loaded: tuple[np.ndarray, str | None]) -> tuple[np.ndarray, str | None]:
        return embed_wav(self.state, loaded[0]).astype(np.float32), loaded[1]

    def write(self, item: BatchItem, result: tuple[np.ndarray, str | None]) -> None:
        if result[1]:
            warn(result[1])

    def rows(self, item: BatchItem, result: tuple[np.ndarray, str | None]) -> list[dict]:
        return [{"uri": item.uri, "path": str(item.path), "embedding": result[0].tolist()}]
