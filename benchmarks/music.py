"""Music benchmark on ../shared/data/music-4q: train every registry model on the train split
(multi-task: one station head + one mood head; val for early stopping), evaluate on val and
print one table — station accuracy, mood micro-F1@0.5, mood macro PR-AUC, parameters, training
and inference clips per second on CPU — plus the shipped default model. Epochs and crop lengths
are kept short so the whole run fits a shared 2-core CPU; they are printed in the table header.

    python benchmarks/music.py [--threads 1] [--out benchmarks/results/music.md]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import torch

from mung.errors import MungError
from mung.music.data import MelCache, encode, read_dataset
from mung.music.ensemble import Ensemble
from mung.music.evaluate import evaluate
from mung.music.features import MelConfig, load_mel
from mung.music.model_io import default_checkpoints
from mung.music.train import MusicTrainConfig, train
from mung.outputs import write_text
from mung.torchutil import count_parameters

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "music-4q"

# name -> (model, model kwargs, task, epochs, crop frames, extra MusicTrainConfig settings)
SYSTEMS: dict[str, tuple] = {
    "melstats (hand-crafted + LR)": ("melstats", {}, "multi", 25, 940, {"lr": 3e-3, "weight_decay": 1e-3}),
    "crnn (32/64/64/64, GRU 64)": ("crnn", {"channels": [32, 64, 64, 64], "hidden": 64}, "multi", 5, 128, {}),
    "speakernet + gru": ("speakernet", {"aggregation": "gru"}, "multi", 4, 128, {}),
    "speakernet1d + gru": ("speakernet1d", {"aggregation": "gru"}, "multi", 5, 128, {}),
    "rexnet (ReXNet-1.0)": ("rexnet", {}, "multi", 4, 128, {}),
    "resnext50 (32x4d)": ("resnext50", {}, "multi", 2, 128, {}),
}


def throughput(ens: Ensemble, files: list[Path]) -> tuple[float, float]:
    """(end-to-end clips/s from audio file, model-only clips/s on precomputed mel)."""
    ens.predict(files[:2])  # warm-up
    t0 = time.perf_counter()
    mels = [load_mel(f, ens.members[0].mel) for f in files]
    t1 = time.perf_counter()
    ens.predict_mels(mels)
    t2 = time.perf_counter()
    return len(files) / (t2 - t0), len(files) / (t2 - t1)


def _shipped_row(shipped: list[Path], data: str, speed_files: list[Path]) -> str:
    m = evaluate(shipped, data, "val", progress=False)
    ens = Ensemble(shipped)
    e2e, model_only = throughput(ens, speed_files)
    params = sum(count_parameters(c.model, trainable_only=True) for c in ens.members)
    line = (f"| **shipped default** ({len(shipped)} model(s)) | see docs/music.md | {_scores(m)} "
            f"| {params / 1e6:.2f} M | – | {e2e:.1f} | {model_only:.1f} |")
    print(line, flush=True)
    return line


def _scores(m: dict) -> str:
    keys = ("station_accuracy", "mood_micro_f1@0.5", "mood_micro_f1@tuned", "mood_macro_pr_auc")
    return " | ".join(f"{m[k]:.3f}" for k in keys)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--runs", default="/tmp/mung-music-bench", help="Where run folders go.")
    ap.add_argument("--cache", default="/tmp/mung-music-cache", help="Mel cache folder.")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", help="Subset of system names (prefix match).")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "music.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = read_dataset(args.data)
    cache = MelCache(MelConfig(), args.cache)
    val = data.split("val")
    speed_files = [t.path for t in val[:48]]
    header = ("| system | epochs × crop | station acc | mood µF1@0.5 | mood µF1@tuned | mood PR-AUC "
              "| params | train clips/s | infer clips/s (file→tags) | infer clips/s (mel→tags) |")
    lines = [header, "|" + "---|" * 10]
    print(header, flush=True)
    systems = {k: v for k, v in SYSTEMS.items() if not args.only or any(k.startswith(o) for o in args.only)}
    for name, (model, kwargs, task, epochs, crop, extra) in systems.items():
        cfg = MusicTrainConfig(task=task, model=model, model_kwargs=kwargs, epochs=epochs, crop_frames=crop,
                          patience=epochs, **extra)
        run = Path(args.runs) / re.sub(r"[^\w.-]+", "_", name).strip("_")
        res = train(cfg, args.data, run, force=True, progress=False, data=data, cache=cache)
        m = res.metrics
        e2e, model_only = throughput(Ensemble([res.checkpoint]), speed_files)
        line = (f"| {name} | {epochs} × {crop} | {_scores(m)} | {m['parameters'] / 1e6:.2f} M "
                f"| {m['train_clips_per_s']:.1f} | {e2e:.1f} | {model_only:.1f} |")
        print(line, flush=True)
        lines.append(line)
    try:
        shipped = default_checkpoints()
    except MungError as exc:
        print(f"(no shipped row: {exc})")
        shipped = []
    if shipped:
        lines.append(_shipped_row(shipped, args.data, speed_files))
    ys, _ = encode(val, data.stations, data.moods)
    note = (f"\n4Q val split ({len(val)} clips, {np.bincount(ys).tolist()} per station), trained on the "
            f"train split ({len(data.split('train'))} clips). Multi-task training (station + mood heads). "
            f"CPU, torch threads = {args.threads}, machine shared with other jobs; clips/s are 30-s clips. "
            "µF1@0.5 is the organisers' micro-F1; µF1@tuned uses the threshold tuned on val.\n")
    print(note)
    write_text(args.out, "\n".join(lines) + "\n" + note, force=True)


if __name__ == "__main__":
    main()
