"""Where the time of ``mung music tag`` goes, for the shipped default on 30-s compressed clips:
decoding (libsndfile, Ogg Opus at 16 kHz), the mel front-end, each model, and the whole CLI run
(start-up included) from files to JSON tags. CPU seconds are reported beside wall time, because
on a shared machine the wall clock mostly measures the other jobs; ``clips/s (2 free cores)``
is ``clips / (CPU s / 2)``, what the same work gives when two cores are free.

    python benchmarks/music_speed.py [--clips 180] [--out benchmarks/results/music-speed.md] [--compare DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mung import audio
from mung.batch import usable_cores
from mung.music.data import read_dataset
from mung.music.ensemble import Ensemble
from mung.music.features import mel_from_wave
from mung.music.model_io import default_checkpoints
from mung.outputs import write_text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "music-4q"


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def tag_cli(files: list, repeats: int, *checkpoints: list[Path]) -> list[tuple[float, float]]:
    """Median (wall, CPU) seconds of a ``mung music tag`` process on ``files`` over ``repeats``
    runs: with the shipped default, then with each further set of ``checkpoints``, run in turn
    (A B A B …) so that a drifting machine slows them alike."""
    sets: list[list[Path]] = [[], *checkpoints]
    runs: list[list[tuple[float, float]]] = [[] for _ in sets]
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for k, ckpts in enumerate(sets):
                cmd = [sys.executable, "-m", "mung", "music", "tag", *map(str, ckpts), *map(str, files),
                       "--format", "json", "--out", str(Path(tmp) / "tags.json"), "--force"]
                c0, w0 = _children_cpu(), time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                runs[k].append((time.perf_counter() - w0, _children_cpu() - c0))
    return [(float(np.median([r[0] for r in rs])), float(np.median([r[1] for r in rs]))) for rs in runs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--clips", type=int, default=180)
    ap.add_argument("--repeats", type=int, default=3, help="end-to-end runs; medians are reported")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "music-speed.md"))
    ap.add_argument("--compare", help="A folder of other checkpoints (e.g. an earlier default, from git): "
                    "its end-to-end run is timed in turn with the shipped default's.")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ds = read_dataset(args.data)
    files = [t.path for t in (ds.split("val") + ds.split("train"))[: args.clips]]
    n = len(files)
    rows = []

    def row(stage: str, wall: float, cpu: float, per_wall: str = "–") -> None:
        rows.append(f"| {stage} | {1000 * cpu / n:.1f} | {wall:.1f} | {2 * n / max(cpu, 1e-9):.1f} "
                    f"| {per_wall} |")
        print(rows[-1], flush=True)

    waves, w, c = _timed(lambda: [audio.load(f) for f in files])
    row("decode (audio.load: FFmpeg Opus 48 kHz → soxr → 16 kHz mono)", w, c)
    mels, w, c = _timed(lambda: [mel_from_wave(x) for x in waves])
    row("mel front-end (numpy STFT + Slaney filters)", w, c)
    shipped = default_checkpoints()
    for p in shipped:
        ens = Ensemble([p])
        ens.predict_mels(mels[:2])
        _, w, c = _timed(lambda e=ens: e.predict_mels(mels))
        row(f"model: {p.stem} (mel → probabilities)", w, c)
    ens = Ensemble(shipped)
    _, w, c = _timed(lambda: ens.predict_mels(mels))
    row(f"model: shipped ensemble of {len(shipped)}", w, c)
    (one_wall, one_cpu), = tag_cli(files[:1], args.repeats)
    other = [sorted(Path(args.compare).glob("*.safetensors"))] if args.compare else []
    (wall, cpu), *compared = tag_cli(files, args.repeats, *other)
    row(f"**end to end**: `mung music tag` {n} files → JSON (start-up included)", wall, cpu,
        f"**{n / wall:.1f}**")
    for (w, c), ckpts in zip(compared, other, strict=True):
        row(f"end to end, run in turn with the above: {' + '.join(p.stem for p in ckpts)} (`--compare`)",
            w, c, f"{n / w:.1f}")
    rows.append(f"| start-up: `mung music tag` on 1 file (imports, {len(shipped)} models, 1 clip) | "
                f"{1000 * one_cpu:.0f} (total) | {one_wall:.1f} | – | – |")
    rows.append(f"| steady state: the other {n - 1} files (end to end minus start-up) | "
                f"{1000 * (cpu - one_cpu) / (n - 1):.1f} | {wall - one_wall:.1f} | "
                f"{2 * (n - 1) / max(cpu - one_cpu, 1e-9):.1f} | **{(n - 1) / (wall - one_wall):.1f}** |")
    print("\n".join(rows[-2:]), flush=True)
    load = os.getloadavg()[0]
    header = ["| stage | CPU ms / clip | wall s | clips/s (CPU: 2 free cores) | clips/s (wall) |",
              "|---|---|---|---|---|"]
    note = (f"\n{n} clips of 25–32 s (Ogg Opus 16 kbit/s, music-4q val then train), torch threads = 1 "
            f"in the stage rows; the CLI decodes the next inputs in {min(4, usable_cores())} threads while "
            "the models run (the shipped members share one computation of their features); "
            f"CLI rows are medians of {args.repeats} runs. Load average at the end {load:.1f} on "
            f"{os.cpu_count()} cores (this benchmark included): where other jobs run, wall seconds are "
            "inflated and CPU ms are what the work costs.\n")
    text = "\n".join(header + rows) + "\n" + note
    print(note)
    write_text(args.out, text, force=True)


if __name__ == "__main__":
    main()
