"""What limits the shipped music model: a learning curve, and how much the random draw of the
random-convolution member matters.

1. **Learning curve.** The ``richstats`` features with L2 logistic heads (weight decay 0.3)
   cross-validated over the same five artist-disjoint folds of train as ``music_default.py``,
   each fold's training clips subsampled to 25 / 50 / 75 / 100 % (three draws each below 100 %).
   How fast the out-of-fold score grows with the number of training clips says how much more
   labelled music the targets would need.
2. **Filter draws.** The shipped ``randconv-lr`` member's filters are drawn from seed 0. The
   same member with seeds 0, 1 and 2 (the shipped weight decays), alone and in the shipped
   ensemble (the other members at their shipped settings), out of fold and on val.

    python benchmarks/music_limits.py [--cache /tmp/mung-music-cache] [--out results/music-limits.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from music_default import MEMBERS, _features, average

from mung.music.data import MelCache, encode, read_dataset
from mung.music.ensemble import Ensemble
from mung.music.features import MelConfig
from mung.music.models import build
from mung.music.statsfit import artist_folds, cross_validate, fit_member, oof_scores, predict_features
from mung.outputs import write_text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "music-4q"
WEIGHTS = ROOT / "src" / "mung" / "music" / "weights"
FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def scores(ys: np.ndarray, ym: np.ndarray, probs: dict) -> str:
    m = oof_scores(ys, ym, probs, [])
    return f"{m['station_accuracy']:.3f} | {m['mood_macro_pr_auc']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--cache", default="/tmp/mung-music-cache", help="Mel + feature cache (outside git).")
    ap.add_argument("--out", help="Also write the tables to this Markdown file.")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = read_dataset(args.data)
    cache, folder = MelCache(MelConfig(), args.cache), Path(args.cache)
    train, val = data.split("train"), data.split("val")
    splits = artist_folds(train, Path(args.data) / "artists.csv")
    ys, ym = encode(train, data.stations, data.moods)
    ys_va, ym_va = encode(val, data.stations, data.moods)
    heads = {"station": len(data.stations), "mood": len(data.moods)}

    def features(kind: str, kwargs: dict, split: str, tracks: list):
        # seed 0 (the default) reads the features music_default.py cached for the shipped member
        name = f"{kind}-seed{kwargs['seed']}" if kwargs.get("seed") else kind
        return _features(name, build({"name": kind, "kwargs": kwargs, "heads": heads}).eval(), tracks, cache,
                         folder, split)

    lines = ["| `richstats` + logistic heads, training clips per fold | out-of-fold station acc "
             "| out-of-fold mood PR-AUC |", "|---|---|---|"]
    spec = {"name": "richstats", "kwargs": {}, "heads": heads}
    f_tr = features("richstats", {}, "train", train)
    rng = np.random.default_rng(0)
    for frac in FRACTIONS:
        accs, aps = [], []
        for _ in range(3 if frac < 1 else 1):
            sub = [(np.sort(rng.choice(tr, int(len(tr) * frac), replace=False)), te) for tr, te in splits]
            (_, m, _), = cross_validate(spec, f_tr, ys, ym, sub, [{"station_wd": 0.3, "mood_wd": 0.3}])
            accs.append(m["station_accuracy"])
            aps.append(m["mood_macro_pr_auc"])
        n = int(np.mean([len(tr) for tr, _ in splits]) * frac)
        lines.append(f"| {n} ({frac:.0%}) | {np.mean(accs):.3f} | {np.mean(aps):.3f} |")
        print(lines[-1], flush=True)

    lines += ["", "| system | out-of-fold station acc | out-of-fold mood PR-AUC | val station acc "
              "| val mood PR-AUC |", "|---|---|---|---|---|"]
    others, rand_setting = [], {}
    for member in Ensemble(sorted(WEIGHTS.glob("*.safetensors"))).members:
        kind, kwargs, _ = MEMBERS[member.path.stem]
        setting = {k: v for k, v in member.meta["train_config"].items() if k not in ("recipe", "cv")}
        if kind == "randconv":
            rand_setting = setting
            continue
        sp = {"name": kind, "kwargs": kwargs, "heads": heads}
        f_t, f_v = features(kind, {}, "train", train), features(kind, {}, "val", val)
        (_, _, oof), = cross_validate(sp, f_t, ys, ym, splits, [setting])
        others.append((oof, predict_features(fit_member(sp, f_t, ys, ym, setting), f_v, len(val))))
    for seed in range(3):
        f_t = features("randconv", {"seed": seed}, "train", train)
        f_v = features("randconv", {"seed": seed}, "val", val)
        sp = {"name": "randconv", "kwargs": {"seed": seed}, "heads": heads}
        (_, _, oof), = cross_validate(sp, f_t, ys, ym, splits, [rand_setting])
        pv = predict_features(fit_member(sp, f_t, ys, ym, rand_setting), f_v, len(val))
        lines.append(f"| `randconv-lr`, seed {seed} | {scores(ys, ym, oof)} | {scores(ys_va, ym_va, pv)} |")
        print(lines[-1], flush=True)
        ens_oof = average([o for o, _ in others] + [oof])
        ens_val = average([v for _, v in others] + [pv])
        lines.append(f"| shipped ensemble with seed {seed} | {scores(ys, ym, ens_oof)} | "
                     f"{scores(ys_va, ym_va, ens_val)} |")
        print(lines[-1], flush=True)
    if args.out:
        write_text(Path(args.out), "\n".join(lines) + "\n", force=True)


if __name__ == "__main__":
    main()
