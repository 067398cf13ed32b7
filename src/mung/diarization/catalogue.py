"""``mung diarize --dataset DIR``: one Parquet row per speaker turn (uri, start, end, speaker)
plus ``DIR/rttm/<uri>.rttm``, for archives of thousands of hours."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pyarrow as pa
import yaml

from mung import audio
from mung.batch import BatchItem
from mung.config import to_dict
from mung.dataset import ModelId, TableTask, files_digest
from mung.diarization.pipeline import DiarizationConfig
from mung.diarization.rttm import Diarization
from mung.diarization.task import DiarizeTask


class DiarizeTable(TableTask):
    """Diarize recordings with one pipeline config; its YAML and mung's version are the model
    version (another config → another dataset)."""

    name = "diarize"
    table = "turns"
    schema = pa.schema([("uri", pa.string()), ("path", pa.string()), ("start", pa.float64()),
                        ("end", pa.float64()), ("speaker", pa.string()), ("duration", pa.float64())])

    def __init__(self, config: DiarizationConfig, dataset: Path) -> None:
        self.config, self.files = config, DiarizeTask(config, Path(dataset) / "rttm")

    def model_id(self) -> ModelId:
        text = yaml.safe_dump(to_dict(self.config), sort_keys=True)
        model = self.config.embedding.model
        extra = [model.partition(":")[2]] if ":" in model else []
        return ModelId(f"mung-diarize-{version('mung')}", files_digest(extra, text))

    def setup(self) -> None:
        self.files.setup()
        self.state = self.files._diarizer

    def load(self, item: BatchItem) -> np.ndarray:
        return audio.load(item.path)

    def infer(self, item: BatchItem, wav: np.ndarray) -> Diarization:
        return self.state(wav, uri=item.uri)

    def write(self, item: BatchItem, result: Diarization) -> None:
        self.files.write(item, result)

    def rows(self, item: BatchItem, d: Diarization) -> list[dict]:
        return [{"uri": item.uri, "path": str(item.path), "start": t.start, "end": t.end,
                 "speaker": t.speaker, "duration": d.duration} for t in sorted(d.turns)]
