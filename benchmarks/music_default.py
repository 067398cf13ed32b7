"""Build (and re-build) the shipped default music model, printing how it was chosen.

For each statistics member (the hand-crafted ``melstats`` and ``richstats``, and ``randconv``'s
untrained random convolutions; linear heads fitted by L-BFGS, or one hidden layer):
features of every clip once, weight decay per task picked by 5-fold artist-disjoint
cross-validation on the **train** split (``artists.csv``), mood threshold tuned on the
out-of-fold scores; then fitted on all of train and scored on val, which took no part in any
choice. Trained network runs (``--net RUN``) join as candidate members: a folder made by
``music_net_cv.py`` (``RUN/fold0..4`` trained on the same artist folds, ``RUN/full`` on all of
train) brings out-of-fold scores like the hand-crafted members; a plain ``mung music train`` run
brings its val scores only. Equal-weight ensembles of every subset are scored on the out-of-fold
predictions (members without folds excluded) and on val; ``--ship auto`` takes the best
out-of-fold ensemble (plus each fold-less network that raises the val score), ``--ship A+B``
the named one, and writes it to ``--weights`` (fp16 safetensors; each file's metadata holds the
ensemble's val metrics).

    python benchmarks/music_default.py [--net /tmp/music-runs/cnn60cv] [--ship auto|richstats-mlp+randconv-lr]
    python benchmarks/music_default.py --restamp   # the stored val metrics only, after a front-end change
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mung import checkpoint
from mung.music.data import MelCache, encode, read_dataset
from mung.music.ensemble import Ensemble
from mung.music.evaluate import evaluate
from mung.music.features import MelConfig
from mung.music.metrics import mood_metrics, station_metrics, tune_threshold
from mung.music.model_io import export
from mung.music.model_io import save_music_model as save_checkpoint
from mung.music.models import build
from mung.music.statsfit import (
    CropFeatures,
    artist_folds,
    crop_features,
    cross_validate,
    fit_member,
    oof_scores,
    predict_features,
)
from mung.torchutil import count_parameters

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "music-4q"
CROP = 940  # one crop covers a 30-s clip
LINEAR = [{"station_wd": w, "mood_wd": w} for w in (0.03, 0.1, 0.3, 1.0, 3.0)]
MLP = [{"epochs": e, "weight_decay": w} for e in (30, 80) for w in (0.01, 0.1)]
# member name -> (features model, kwargs, settings searched by CV)
MEMBERS = {
    "richstats-mlp": ("richstats", {"hidden": 256, "dropout": 0.5}, MLP),
    "melstats-mlp": ("melstats", {"hidden": 256, "dropout": 0.5}, MLP),
    "richstats-lr": ("richstats", {}, LINEAR),
    "randconv-lr": ("randconv", {}, LINEAR),
}
KEYS = ("station_accuracy", "mood_macro_pr_auc", "mood_micro_f1@0.5", "mood_micro_f1@tuned")


def _features(name: str, model, tracks, cache: MelCache, folder: Path, split: str) -> CropFeatures:
    path = folder / f"feats-{name}-{split}-{cache.key}.npz"
    if path.exists():
        z = np.load(path)
        return CropFeatures(z["x"], z["owner"])
    f = crop_features(model, tracks, cache, CROP)
    np.savez(path, x=f.x, owner=f.owner)
    return f


def average(members: list[dict]) -> dict:
    """The equal-weight ensemble of members' ``{"station", "mood"}`` probabilities."""
    return {t: np.mean([p[t] for p in members], 0) for t in ("station", "mood")}


def _row(name: str, m: dict) -> str:
    return f"| {name} | " + " | ".join(f"{m[k]:.3f}" for k in KEYS) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--cache", default="/tmp/mung-music-cache", help="Mel + feature cache (outside git).")
    ap.add_argument("--net", action="append", default=[], help="Trained network run folder (repeatable).")
    ap.add_argument("--ship", help="Members to ship joined by '+' (e.g. richstats-mlp+melstats-mlp), or "
                    "'auto': the best out-of-fold ensemble, plus each --net that raises the val score.")
    ap.add_argument("--weights", default=str(ROOT / "src" / "mung" / "music" / "weights"))
    ap.add_argument("--restamp", action="store_true",
                    help="Only recompute the shipped files' stored val metrics (after a front-end change).")
    args = ap.parse_args()
    if args.restamp:
        shipped = sorted(Path(args.weights).glob("*.safetensors"))
        print(json.dumps(stamp(shipped, args.data), indent=1))
        return
    torch.set_num_threads(1)
    t0 = time.process_time()
    data = read_dataset(args.data)
    cache = MelCache(MelConfig(), args.cache)
    folder = Path(args.cache)
    train, val = data.split("train"), data.split("val")
    splits = artist_folds(train, Path(args.data) / "artists.csv")
    ys, ym = encode(train, data.stations, data.moods)
    ys_va, ym_va = encode(val, data.stations, data.moods)
    heads = {"station": len(data.stations), "mood": len(data.moods)}
    oof, val_probs, models, cv_lines = {}, {}, {}, []
    for name, (kind, kwargs, grid) in MEMBERS.items():
        spec = {"name": kind, "kwargs": kwargs, "heads": heads}
        probe = build({"name": kind, "kwargs": {}, "heads": heads}).eval()
        f_tr = _features(kind, probe, train, cache, folder, "train")
        f_va = _features(kind, probe, val, cache, folder, "val")
        results = cross_validate(spec, f_tr, ys, ym, splits, grid)
        for setting, m, _ in results:
            cv_lines.append(f"| {name} | {json.dumps(setting)} | {m['station_accuracy']:.3f} "
                            f"| {m['mood_macro_pr_auc']:.3f} | {m['mood_micro_f1@cv_tuned']:.3f} |")
            print(cv_lines[-1], flush=True)
        if "epochs" in grid[0]:  # one hidden layer serves both tasks: best sum
            best, _, probs = max(results, key=lambda r: r[1]["station_accuracy"] + r[1]["mood_macro_pr_auc"])
            oof[name] = probs
        else:  # independent linear heads: each task its own weight decay
            s_best = max(results, key=lambda r: (r[1]["station_accuracy"], r[0]["station_wd"]))
            m_best = max(results, key=lambda r: (r[1]["mood_macro_pr_auc"], r[0]["mood_wd"]))
            best = {"station_wd": s_best[0]["station_wd"], "mood_wd": m_best[0]["mood_wd"]}
            oof[name] = {"station": s_best[2]["station"], "mood": m_best[2]["mood"]}
        thr = tune_threshold(ym, oof[name]["mood"])
        model = fit_member(spec, f_tr, ys, ym, best)
        val_probs[name] = predict_features(model, f_va, len(val))
        models[name] = (model, {"spec": spec, "setting": best}, thr)
    for run in map(Path, args.net):
        name, full = run.name, run / "full" if (run / "full").is_dir() else run
        while not (full / "model.safetensors").exists():  # a run still training
            time.sleep(30)
        ens = Ensemble([full])
        val_probs[name] = net_probs(ens, val, cache, data)
        threshold = ens.threshold  # tuned on val by the run: used only for a network without folds
        if (run / "fold0").is_dir():  # fold runs of music_net_cv.py: out-of-fold scores like the others
            oof[name] = net_oof(run, train, splits, cache, data)
            threshold = tune_threshold(ym, oof[name]["mood"])
            c = oof_scores(ys, ym, oof[name], [])
            cv_lines.append(f"| {name} | folds of {run} | {c['station_accuracy']:.3f} "
                            f"| {c['mood_macro_pr_auc']:.3f} | – |")
        models[name] = (full, None, threshold)
    print("\n| CV on train, 5 artist folds | setting | station acc | mood PR-AUC | mood µF1@cv-tuned |")
    print("\n".join(cv_lines))
    print("\n| member or ensemble (val; µF1@tuned: threshold from train out-of-fold) | station acc "
          "| mood PR-AUC | µF1@0.5 | µF1@tuned | CV station acc | CV mood PR-AUC |")
    print("|---|---|---|---|---|---|---|")
    names, member_val, scored = list(val_probs), {}, []
    for k in range(1, len(names) + 1):
        for combo in itertools.combinations(names, k):
            pv = average([val_probs[n] for n in combo])
            thr = float(np.mean([models[n][2] for n in combo]))
            m = station_metrics(ys_va, pv["station"]) | mood_metrics(ym_va, pv["mood"], data.moods, thr)
            cv = ""
            if all(n in oof for n in combo):
                po = average([oof[n] for n in combo])
                c = oof_scores(ys, ym, po, [])
                cv = f" {c['station_accuracy']:.3f} | {c['mood_macro_pr_auc']:.3f} |"
                scored.append((c["station_accuracy"] + c["mood_macro_pr_auc"], combo))
            if k == 1:
                member_val[combo[0]] = m
            print(_row("+".join(combo), m)[:-1] + ("|" + cv if cv else "| – | – |"), flush=True)
    print(f"\n(CPU time so far {time.process_time() - t0:.0f} s)")
    if args.ship == "auto":
        chosen = list(max(scored)[1])
        for net in [n for n in args.net if Path(n).name not in oof]:  # no folds: kept if it raises val
            def val_sum(c):
                pv = average([val_probs[n] for n in c])
                m = station_metrics(ys_va, pv["station"]) | mood_metrics(ym_va, pv["mood"], data.moods)
                return m["station_accuracy"] + m["mood_macro_pr_auc"]
            if val_sum(chosen + [Path(net).name]) > val_sum(chosen):
                chosen.append(Path(net).name)
        args.ship = "+".join(chosen)
        print(f"auto choice: {args.ship} (members with folds by out-of-fold score; networks without by val)")
    if args.ship:
        ship(args.ship.split("+"), models, member_val, args, data)
    print(f"total CPU time {time.process_time() - t0:.0f} s")


def net_probs(ens: Ensemble, tracks: list, cache: MelCache, data) -> dict:
    """Probabilities of a network run on ``tracks``, columns in the data set's station / mood
    order (a fold run's vocabulary lacks the tags that occur only outside its training clips:
    probability 0). Mels come from the cache the hand-crafted members filled, not decoded again."""
    if replace(ens.members[0].mel, normalisation=cache.cfg.normalisation) != cache.cfg:  # raw mel
        raise SystemExit(f"{ens.members[0].path}: its mel front-end differs from the cache's")
    probs = ens.predict_mels([cache.raw(t.path) for t in tracks])
    out = {}
    for task, names, vocab in (("station", ens.stations, data.stations), ("mood", ens.moods, data.moods)):
        out[task] = np.zeros((len(tracks), len(vocab)))
        out[task][:, [vocab.index(n) for n in names]] = probs[task]
    return out


def net_oof(run: Path, train: list, splits: list, cache: MelCache, data) -> dict:
    """Out-of-fold probabilities of a network from its fold runs (``run/fold{k}`` trained without
    fold ``k`` of ``splits``)."""
    probs = {"station": np.zeros((len(train), len(data.stations))),
             "mood": np.zeros((len(train), len(data.moods)))}
    for k, (_, held) in enumerate(splits):
        while not (run / f"fold{k}" / "model.safetensors").exists():  # a fold still training
            time.sleep(30)
        p = net_probs(Ensemble([run / f"fold{k}"]), [train[i] for i in held], cache, data)
        for task in probs:
            probs[task][held] = p[task]
    return probs


def ship(names: list[str], models: dict, val_metrics: dict, args, data) -> None:
    """Write the members (fp16) and store the ensemble's val metrics (recomputed from the written
    files) in each; a member's own ``val_metrics`` are those of its float32 fit."""
    out = Path(args.weights)
    for old in out.glob("*.safetensors"):
        old.unlink()
    thr = float(np.mean([models[n][2] for n in names]))  # the ensemble threshold = mean of members'
    paths = []
    for name in names:
        model, fit, _ = models[name]
        p = out / f"{name}.safetensors"
        if fit is None:  # a trained network run: copied as it is (fp16)
            paths.append(export(model, p, half=True, force=True))
            continue
        meta = {"spec": fit["spec"], "task": "multi", "stations": data.stations, "moods": data.moods,
                "mel": MelConfig().to_dict(), "crop_frames": CROP, "data": "music-4q train split",
                "train_config": {"recipe": "benchmarks/music_default.py", **fit["setting"],
                                 "cv": "5-fold GroupKFold by artist on train"},
                "val_metrics": val_metrics[name], "parameters": count_parameters(model, trainable_only=True)}
        paths.append(save_checkpoint(p, model, meta, force=True, half=True))
    for p in paths:  # one mood threshold for the ensemble, then its val metrics from these files
        ck = Ensemble([p]).members[0]
        save_checkpoint(p, ck.model, {**ck.meta, "mood_threshold": thr}, force=True, half=True)
    ens_metrics = stamp(paths, args.data)
    print(f"shipped (mood threshold {thr:.3f})", [p.name for p in paths], json.dumps(ens_metrics, indent=1))


def stamp(paths: list[Path], data: str) -> dict:
    """Store the ensemble's val metrics, recomputed from the files in ``paths``, in each of them
    (the tensors are written back as they were read)."""
    ens_metrics = evaluate(paths, data, "val", progress=False)
    for p in paths:
        tensors, meta = checkpoint.load(p)
        checkpoint.save(p, tensors, {**meta, "default_ensemble": {
            "members": [q.name for q in paths], "val_metrics": ens_metrics}}, force=True)
    return ens_metrics


if __name__ == "__main__":
    main()
