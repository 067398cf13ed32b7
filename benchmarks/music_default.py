"""Build (and re-build) the shipped default music model, printing how it was chosen.

For each hand-crafted member (``melstats``, ``richstats``, linear heads fitted by L-BFGS):
features of every clip once, weight decay per task picked by 5-fold artist-disjoint
cross-validation on the **train** split (``artists.csv``), mood threshold tuned on the
out-of-fold scores; then fitted on all of train and scored on val, which took no part in any
choice. Trained network runs (``--net RUN``, e.g. from ``mung music train``) join as candidate
members with their val scores only (networks have no out-of-fold scores on a CPU budget).
Equal-weight ensembles of every subset are scored on the cross-validated members' out-of-fold
predictions (networks excluded) and on val; ``--ship A+B`` writes the named ensemble to
``--weights`` (fp16 safetensors; each file's metadata holds the ensemble's val metrics).

    python benchmarks/music_default.py [--net /tmp/music-runs/cnn60] [--ship richstats+melstats]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch

from mung.music.data import MelCache, encode, read_dataset
from mung.music.evaluate import evaluate
from mung.music.features import MelConfig
from mung.music.inference import Ensemble, export, load_mels, save_checkpoint
from mung.music.metrics import mood_metrics, station_metrics, tune_threshold
from mung.music.models import build, n_parameters
from mung.music.statsfit import (
    CropFeatures,
    crop_features,
    cross_validate,
    fit_heads,
    load_into,
    oof_scores,
    predict_linear,
    read_artists,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "music-4q"
CROP = 940  # one crop covers a 30-s clip
GRID = [0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
MEMBERS = {"melstats": {}, "richstats": {}}
KEYS = ("station_accuracy", "mood_macro_pr_auc", "mood_micro_f1@0.5", "mood_micro_f1@tuned")


def _features(name: str, model, tracks, cache: MelCache, folder: Path, split: str) -> CropFeatures:
    path = folder / f"feats-{name}-{split}-{cache.key}.npz"
    if path.exists():
        z = np.load(path)
        return CropFeatures(z["x"], z["owner"])
    f = crop_features(model, tracks, cache, CROP)
    np.savez(path, x=f.x, owner=f.owner)
    return f


def _row(name: str, m: dict) -> str:
    return f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in KEYS) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--cache", default="/tmp/mung-music-cache", help="Mel + feature cache (outside git).")
    ap.add_argument("--net", action="append", default=[], help="Trained network run folder (repeatable).")
    ap.add_argument("--ship", help="Members to ship, joined by '+', e.g. richstats+melstats.")
    ap.add_argument("--weights", default=str(ROOT / "src" / "mung" / "music" / "weights"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.process_time()
    data = read_dataset(args.data)
    cache = MelCache(MelConfig(), args.cache)
    folder = Path(args.cache)
    train, val = data.split("train"), data.split("val")
    artists = read_artists(Path(args.data) / "artists.csv")
    groups = np.array([artists[t.path.stem] for t in train])
    ys, ym = encode(train, data.stations, data.moods)
    ys_va, ym_va = encode(val, data.stations, data.moods)
    heads = {"station": len(data.stations), "mood": len(data.moods)}
    oof, val_probs, models, cv_lines = {}, {}, {}, []
    for name, kwargs in MEMBERS.items():
        model = build({"name": name, "kwargs": kwargs, "heads": heads}).eval()
        f_tr = _features(name, model, train, cache, folder, "train")
        f_va = _features(name, model, val, cache, folder, "val")
        table, probs = cross_validate(f_tr, ys, ym, groups, GRID)
        for wd, m in table.items():
            cv_lines.append(f"| {name} | {wd:g} | {m['station_accuracy']:.3f} | {m['mood_macro_pr_auc']:.3f} "
                            f"| {m['mood_micro_f1@cv_tuned']:.3f} |")
            print(cv_lines[-1], flush=True)
        wd = {"station": max(GRID, key=lambda w: (table[w]["station_accuracy"], w)),
              "mood": max(GRID, key=lambda w: (table[w]["mood_macro_pr_auc"], w))}
        oof[name] = {"station": probs[wd["station"]]["station"], "mood": probs[wd["mood"]]["mood"]}
        thr = tune_threshold(ym, oof[name]["mood"])
        mean, var, fitted = fit_heads(f_tr, ys, ym, wd)
        val_probs[name] = predict_linear(f_va.x, f_va.owner, len(val), mean, var, fitted)
        models[name] = (load_into(model, mean, var, fitted), wd, thr)
    for run in args.net:
        ens = Ensemble([run])
        name = Path(run).name
        val_probs[name] = ens.predict_mels(load_mels([t.path for t in val], ens.members[0].mel))
        models[name] = (run, None, ens.threshold)
    print("\n| CV on train, 5 artist folds | wd | station acc | mood PR-AUC | mood µF1@cv-tuned |")
    print("\n".join(cv_lines))
    print("\n| member or ensemble (val; µF1@tuned: threshold from train out-of-fold) | station acc "
          "| mood PR-AUC | µF1@0.5 | µF1@tuned | CV station acc | CV mood PR-AUC |")
    print("|---|---|---|---|---|---|---|")
    names = list(val_probs)
    for k in range(1, len(names) + 1):
        for combo in itertools.combinations(names, k):
            pv = {t: np.mean([val_probs[n][t] for n in combo], 0) for t in ("station", "mood")}
            thr = float(np.mean([models[n][2] for n in combo]))
            m = station_metrics(ys_va, pv["station"]) | mood_metrics(ym_va, pv["mood"], data.moods, thr)
            cv = ""
            if all(n in oof for n in combo):
                po = {t: np.mean([oof[n][t] for n in combo], 0) for t in ("station", "mood")}
                c = oof_scores(ys, ym, po, [])
                cv = f" {c['station_accuracy']:.3f} | {c['mood_macro_pr_auc']:.3f} |"
            print(_row("+".join(combo), m)[:-1] + ("|" + cv if cv else "| – | – |"), flush=True)
    print(f"\n(CPU time so far {time.process_time() - t0:.0f} s)")
    if args.ship:
        ship(args.ship.split("+"), models, args, data)
    print(f"total CPU time {time.process_time() - t0:.0f} s")


def ship(names: list[str], models: dict, args, data) -> None:
    """Write the members (fp16) and store the ensemble's own val metrics in each file."""
    out = Path(args.weights)
    for old in out.glob("*.safetensors"):
        old.unlink()
    thr = float(np.mean([models[n][2] for n in names]))  # the ensemble threshold = mean of members'
    paths = []
    for name in names:
        model, wd, _ = models[name]
        p = out / f"{name}.safetensors"
        if wd is None:  # a trained network run: copied as it is (fp16)
            paths.append(export(model, p, half=True, force=True))
            continue
        meta = {"spec": {"name": name, "kwargs": MEMBERS.get(name, {}), "heads": {
                    "station": len(data.stations), "mood": len(data.moods)}},
                "task": "multi", "stations": data.stations, "moods": data.moods, "mel": MelConfig().to_dict(),
                "crop_frames": CROP, "mood_threshold": thr, "data": "music-4q train split",
                "train_config": {"recipe": "benchmarks/music_default.py", "weight_decay": wd,
                                 "cv": "5-fold GroupKFold by artist on train"}}
        save_checkpoint(p, model, meta, force=True, half=True)
        meta["val_metrics"] = evaluate([p], args.data, "val", progress=False)
        meta["parameters"] = n_parameters(model)
        save_checkpoint(p, model, meta, force=True, half=True)
        paths.append(p)
    ens_metrics = evaluate(paths, args.data, "val", progress=False)
    for p in paths:
        ck = Ensemble([p]).members[0]
        save_checkpoint(p, ck.model, {**ck.meta, "mood_threshold": thr, "default_ensemble": {
            "members": [q.name for q in paths], "val_metrics": ens_metrics}}, force=True, half=True)
    print("shipped", [str(p) for p in paths], json.dumps(ens_metrics, indent=1))


if __name__ == "__main__":
    main()
