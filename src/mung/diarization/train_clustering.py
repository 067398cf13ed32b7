"""Training a supervised clustering model (UIS-RNN) on RTTM-labelled recordings: the pipeline's
own front-end embeds each recording, the reference turns label its windows, and the model is fit
on those sequences. :func:`train_clustering` is what ``mung diarize train-clustering`` runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from mung import outputs
from mung.audio import find_audio
from mung.config import Config, Options, merge, param
from mung.diarization.pipeline import DiarizationConfig, Diarizer, centred, front_end
from mung.diarization.rttm import read_rttm
from mung.diarization.uisrnn import UISRNN, UISRNNTrainConfig, save_model, train
from mung.errors import MungError

Progress = Callable[..., object]


@dataclass
class TrainedClustering:
    """What :func:`train_clustering` produced."""

    model: UISRNN
    path: Path
    recordings: int
    curve: list[float]
    meta: dict


@dataclass
class ClusteringTrainConfig(Config):
    """``pipeline``: the front-end whose embeddings the model learns (use the same one when
    diarizing); ``uisrnn``: the training settings."""

    section: ClassVar[str] = ""  # keys as in the YAML file

    method: str = param("uisrnn", Options(("uisrnn",)))
    pipeline: DiarizationConfig = param(factory=DiarizationConfig)
    uisrnn: UISRNNTrainConfig = param(factory=UISRNNTrainConfig)


def window_labels(windows: np.ndarray, turns, min_overlap: float = 0.5) -> np.ndarray:
    """Index (into the sorted speaker names) of the reference speaker covering most of each window;
    -1 where no speaker covers ``min_overlap`` of it."""
    names = sorted({t.speaker for t in turns})
    cover = np.zeros((len(windows), max(1, len(names))))
    for t in turns:
        j = names.index(t.speaker)
        cover[:, j] += np.clip(np.minimum(windows[:, 1], t.end) - np.maximum(windows[:, 0], t.start), 0, None)
    length = np.maximum(windows[:, 1] - windows[:, 0], 1e-9)
    best = cover.argmax(1)
    return np.where(cover.max(1) >= min_overlap * length, best, -1)


def labelled_embeddings(paths: list[Path], refs: dict, config: DiarizationConfig,
                        cache: str | os.PathLike | None = None,
                        progress=None) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict]:
    """Embed each file with the pipeline's front-end (dereverb → VAD → windows → encoder →
    centring) and label its windows from ``refs`` (uri → Diarization); windows no reference
    speaker covers are dropped. With ``cache`` (.npz) the embeddings are read from / written to it.
    Returns the data and the front-end description stored in the model."""
    missing = [p for p in paths if p.stem not in refs]
    if missing:
        raise MungError(f"{missing[0]}: no reference turns for uri '{missing[0].stem}' in the RTTM")
    config = merge(config, {"clustering.method": "ahc", "segmentation.model": "none"})  # window embeddings
    diarizer = Diarizer(config)
    config = diarizer.config  # the encoder's own centring where none is set
    meta = {"encoder": diarizer.encoder.name, "embedding": config.embedding.model, **front_end(config)}
    stored = dict(np.load(cache)) if cache is not None and Path(cache).is_file() else {}
    data, new = [], False
    for path in progress(paths) if progress else paths:
        key = path.stem
        if f"{key}/emb" not in stored:
            e = diarizer.embed(path)
            stored[f"{key}/emb"], stored[f"{key}/win"] = e.embeddings, e.windows
            new = True
        emb, win = stored[f"{key}/emb"], stored[f"{key}/win"]
        labels = window_labels(win, refs[key].turns)
        keep = labels >= 0
        data.append((centred(emb, config)[keep], labels[keep]))
    if cache is not None and new:

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **stored)

        outputs.write_with(cache, save, force=True)
    return data, meta


def train_clustering(audio_dir: str | os.PathLike, ref: str | os.PathLike, out: str | os.PathLike,
                     config: ClusteringTrainConfig | None = None, cache: str | os.PathLike | None = None,
                     force: bool = False, progress: Progress | None = None) -> TrainedClustering:
    """Embed the recordings of ``audio_dir`` whose stem is a uri of the RTTM ``ref``, fit the
    model and write it to ``out``. ``progress(iterable, desc=...)`` wraps the two long loops."""
    config = config or ClusteringTrainConfig()
    outputs.check_writable(Path(out), force)
    refs = read_rttm(ref)
    paths = [p for p in find_audio([audio_dir]) if p.stem in refs]
    if not paths:
        raise MungError(f"{audio_dir}: no audio file whose stem is a uri of {ref}")
    wrap = (lambda desc: (lambda it: progress(it, desc=desc))) if progress else (lambda desc: None)
    data, meta = labelled_embeddings(paths, refs, config.pipeline, cache, progress=wrap("embedding"))
    model, curve = train(data, config.uisrnn, meta, wrap("training"))
    path = save_model(model, out, force)
    return TrainedClustering(model, path, len(data), curve, meta)
