"""``tag``: station and mood labels for audio or mel files from a model or an ensemble."""

from __future__ import annotations

import os

import numpy as np

from mung.errors import MungError
from mung.music.ensemble import Ensemble
from mung.music.model_io import default_checkpoints
from mung.music.predict import expand_inputs


def tag(checkpoints: list[os.PathLike], inputs: list[os.PathLike], weights: list[float] | None = None,
        threshold: float | None = None, top: int | None = None, progress: bool = False) -> list[dict]:
    """Tag audio / ``.npy`` files. No checkpoint = the shipped default. Returns one dict per file:
    ``file``, ``station``, ``station_probs``, ``moods`` (score ≥ threshold, best first),
    ``mood_scores`` (every tag)."""
    ens = Ensemble(list(checkpoints) or default_checkpoints(), weights)
    files = expand_inputs(inputs)
    if not files:
        raise MungError("no input files")
    probs = ens.predict(files, progress=progress)
    thr = ens.threshold if threshold is None else threshold
    return [tag_row(ens, {k: v[i] for k, v in probs.items()}, f, thr, top) for i, f in enumerate(files)]


def tag_row(ens: Ensemble, probs: dict[str, np.ndarray], file: os.PathLike, threshold: float,
            top: int | None = None) -> dict:
    """One file's output row from its ``probs`` (task → probabilities), as :func:`tag` returns."""
    row: dict = {"file": str(file), "station": None, "station_probs": {}, "moods": [], "mood_scores": {}}
    if "station" in probs:
        p = probs["station"]
        row["station"] = ens.stations[int(p.argmax())]
        row["station_probs"] = {s: round(float(v), 4) for s, v in zip(ens.stations, p, strict=True)}
    if "mood" in probs:
        s = probs["mood"]
        order = np.argsort(-s)
        row["moods"] = [ens.moods[j] for j in order if s[j] >= threshold][: top or None]
        row["mood_scores"] = {m: round(float(v), 4) for m, v in zip(ens.moods, s, strict=True)}
    return row
