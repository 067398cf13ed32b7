"""``mung music evaluate``: score checkpoints (one, or an ensemble) on a labelled split."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mung.errors import MungError
from mung.music.data import encode, read_dataset
from mung.music.ensemble import Ensemble
from mung.music.metrics import mood_metrics, plot_confusion, station_metrics
from mung.music.model_io import default_checkpoints
from mung.music.predict import load_mels
from mung.outputs import check_writable, write_json


def evaluate(checkpoints: list[os.PathLike], data: os.PathLike, split: str | None = "val",
             out_dir: os.PathLike | None = None, weights: list[float] | None = None,
             threshold: float | None = None, force: bool = False, progress: bool = True) -> dict:
    """Metrics of the (ensembled) checkpoints on ``split`` of ``data`` (``None`` or ``all`` = every
    track). With ``out_dir``: ``metrics.json`` and ``confusion.png`` (station)."""
    ens = Ensemble(list(checkpoints) or default_checkpoints(), weights)
    ds = read_dataset(data)
    tracks = ds.tracks if split in (None, "all") else ds.split(split)
    if not tracks:
        raise MungError(f"{data}: no tracks in split {split!r}")
    if out_dir is not None:
        for name in ("metrics.json", "confusion.png"):
            check_writable(Path(out_dir) / name, force)
    ys, ym = encode(tracks, ens.stations, ens.moods)
    mels = load_mels([t.path for t in tracks], ens.members[0].mel, progress)
    probs = ens.predict_mels(mels)
    thr = ens.threshold if threshold is None else threshold
    metrics: dict = {"split": split or "all", "tracks": len(tracks),
                     "checkpoints": [str(m.path) for m in ens.members]}
    if "station" in probs:
        metrics |= station_metrics(ys, probs["station"])
    if "mood" in probs:
        metrics |= mood_metrics(ym, probs["mood"], ens.moods, thr)
        metrics["tracks_without_moods"] = int((ym.sum(1) == 0).sum())
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_json(out_dir / "metrics.json", metrics, force)
        if "station" in probs:
            plot_confusion(ys, probs["station"], ens.stations, out_dir / "confusion.png", force)
    return {k: (round(v, 4) if isinstance(v, float) and np.isfinite(v) else v) for k, v in metrics.items()}
