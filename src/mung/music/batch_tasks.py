"""``mung music tag`` and ``mung music featurize`` as batch tasks (see :mod:`mung.batch`): a bad
file is one error line and the others are still tagged / featurized.

Silent input is an error (a station "with confidence" for silence is meaningless); broadband
noise is tagged with a warning."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mung import audio
from mung.batch import BatchItem, BatchReport, items_from_paths, run_batch, safe_uri, unique_files, warn
from mung.errors import MungError
from mung.music.ensemble import Ensemble
from mung.music.features import MelConfig, load_mel
from mung.music.model_io import default_checkpoints
from mung.music.predict import expand_inputs
from mung.music.tag import tag_row
from mung.outputs import write_with


@dataclass
class TagTask:
    """Station and moods per file; rows are collected here (``write`` runs in the calling
    process) and :meth:`ordered_rows` returns them in input order."""

    checkpoints: list[str] = field(default_factory=list)
    weights: list[float] | None = None
    threshold: float | None = None
    name: str = "tag"

    def __post_init__(self) -> None:
        self._ensemble: Ensemble | None = None
        self._rows: dict[Path, dict] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_ensemble": None, "_rows": {}}  # workers load their own model

    def setup(self) -> None:
        if self._ensemble is None:
            self._ensemble = Ensemble([*self.checkpoints] or default_checkpoints(), self.weights)

    def outputs(self, item: BatchItem) -> list[Path]:
        return []  # one table for all files, printed or written by the caller

    def load(self, item: BatchItem) -> tuple[np.ndarray, str | None]:
        """Decode to the members' mel and check that it carries a signal (thread-safe)."""
        assert self._ensemble is not None, "setup() first"
        cfg = self._ensemble.members[0].mel
        mel = load_mel(item.path, cfg)
        return mel, audio.check_signal(item.path, mel, "tag", cfg.sample_rate, cfg.n_fft, cfg.hop_length)

    def infer(self, item: BatchItem, loaded: tuple[np.ndarray, str | None]) -> tuple[dict, str | None]:
        ens, (mel, note) = self._ensemble, loaded
        assert ens is not None, "setup() first"
        probs = ens.predict_mels([mel])
        thr = ens.threshold if self.threshold is None else self.threshold
        return tag_row(ens, {k: v[0] for k, v in probs.items()}, item.path, thr), note

    def process(self, item: BatchItem) -> tuple[dict, str | None]:
        return self.infer(item, self.load(item))

    def write(self, item: BatchItem, result: tuple[dict, str | None]) -> None:
        row, note = result
        if note:
            warn(note)
        self._rows[item.path] = row

    def ordered_rows(self, items: list[BatchItem]) -> list[dict]:
        return [self._rows[it.path] for it in items if it.path in self._rows]


def tag_items(inputs: list[os.PathLike]) -> list[BatchItem]:
    """Audio files, folders (of ``.npy`` mel files or audio) and competition ``.json`` lists."""
    files = expand_inputs(inputs)
    if not files:
        raise MungError("no input files")
    return [BatchItem(f, safe_uri(f.stem)) for f in unique_files(files)]


@dataclass
class FeaturizeTask:
    """Competition-format raw power mel ``OUT/<uri>.npy`` ``[1, 128, T]`` per audio file."""

    out_dir: Path
    cfg: MelConfig = MelConfig()
    name: str = "featurize"

    def setup(self) -> None:
        pass

    def outputs(self, item: BatchItem) -> list[Path]:
        return [Path(self.out_dir) / f"{item.uri}.npy"]

    def process(self, item: BatchItem) -> np.ndarray:
        return load_mel(item.path, self.cfg)

    def write(self, item: BatchItem, mel: np.ndarray) -> None:
        write_with(self.outputs(item)[0], lambda p: np.save(p, mel, allow_pickle=False), force=True)


def featurize(paths: list[str | os.PathLike], out_dir: str | os.PathLike, cfg: MelConfig | None = None,
              force: bool = False, progress: bool = True, jobs: int = 1) -> BatchReport:
    """Write ``OUT/<uri>.npy`` for every audio file of ``paths`` (files or folders)."""
    task = FeaturizeTask(Path(out_dir), cfg or MelConfig())
    return run_batch(task, items_from_paths(paths), jobs=jobs, force=force, progress=progress)
