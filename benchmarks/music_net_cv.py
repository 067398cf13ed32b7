"""Out-of-fold predictions for a music network, so that the shipped ensemble can choose it by
cross-validation like the hand-crafted members instead of by its val score.

The network is trained once per artist-disjoint fold of the **train** split (the same five
folds, :func:`mung.music.statsfit.artist_folds`, that ``music_default.py`` uses for the
hand-crafted members), with that fold held out as its "val" split, and once on all of train (``full/``, the
file that would be shipped; val is only reported). Every run keeps its last epoch
(``--keep last``), so no held-out score chooses anything. ``music_default.py --net RUN`` then
reads ``RUN/fold*/`` for the network's out-of-fold scores and ``RUN/full/`` for its val scores.

    python benchmarks/music_net_cv.py --out /tmp/music-runs/cnn60cv -- \\
        --task multi --model speakernet --epochs 60 ... (the ``mung music train`` options)
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mung.music.data import read_dataset
from mung.music.statsfit import artist_folds

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "music-4q"


def write_fold(path: Path, train: list, fit: np.ndarray, held: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "station", "moods", "split"])
        for rows, split in ((fit, "train"), (held, "val")):
            for i in rows:
                t = train[i]
                w.writerow([str(t.path.resolve()), t.station, "|".join(t.moods), split])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, required=True, help="RUN: writes RUN/fold0..4 and RUN/full")
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the `mung music train` options")
    args = ap.parse_args()
    extra = [a for a in args.train_args if a != "--"]
    train = read_dataset(args.data).split("train")
    splits = artist_folds(train, args.data / "artists.csv")
    mung = [sys.executable, "-m", "mung", "music", "train", "--keep", "last", *extra]
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(f"fold{k}", Path(tmp) / f"fold{k}.csv") for k in range(len(splits))] + [("full", args.data)]
        for k, (fit, held) in enumerate(splits):
            write_fold(jobs[k][1], train, fit, held)
        for name, labels in jobs:
            run = args.out / name
            if (run / "model.safetensors").exists():
                print(f"{run}: done already", flush=True)
                continue
            t0 = time.perf_counter()
            subprocess.run([*mung, "--data", str(labels), "--out", str(run)], check=True)
            print(f"{run}: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
