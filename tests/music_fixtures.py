"""Shared helpers for the music tests: a few real 4Q clips (tests skip clearly when absent)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from conftest import DATA, data_dir

MUSIC = DATA / "music-4q"


def music_dir() -> Path:
    return data_dir("music-4q")


def rows(per_station: int = 2, split: str = "train") -> list[dict]:
    """The first ``per_station`` rows of each station in ``split`` (deterministic)."""
    with open(music_dir() / "labels.csv", newline="") as f:
        all_rows = [r for r in csv.DictReader(f) if r["split"] == split]
    out: list[dict] = []
    for q in ("Q1", "Q2", "Q3", "Q4"):
        out += [r for r in all_rows if r["station"] == q and r["moods"]][:per_station]
    return out


def write_labels(path: Path, train_per: int = 2, val_per: int = 1) -> Path:
    """A labels CSV of a few real clips with absolute paths."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "station", "moods", "split"])
        for split, n in (("train", train_per), ("val", val_per)):
            for r in rows(n, split):
                w.writerow([str(MUSIC / r["file"]), r["station"], r["moods"], split])
    return path


def tiny_batch(n_frames: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Normalised mel crops ``[4, 1, 128, n_frames]`` of one clip per station, and their labels."""
    from mung.music.features import load_mel, normalise

    chosen = rows(1)
    x = np.stack([normalise(load_mel(MUSIC / r["file"]))[..., 100 : 100 + n_frames] for r in chosen])
    return x, np.arange(len(chosen))
