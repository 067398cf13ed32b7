"""Fitting a hand-crafted-statistics model (``melstats`` / ``richstats`` with a linear head) the
direct way: compute its features once per crop, set the standardisation from the training
features, and solve the L2-regularised logistic regressions (softmax for stations, one sigmoid
per mood tag) with full-batch L-BFGS — convex problems, so no epochs, learning rate or early
stopping to choose, only the weight decay, which :func:`cross_validate` picks by artist-disjoint
cross-validation. The result is an ordinary :class:`~mung.music.models.base.MusicNet` checkpoint.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import GroupKFold

from mung.music.data import MelCache, Track, eval_crops
from mung.music.features import normalise
from mung.music.metrics import mood_metrics, station_metrics, tune_threshold
from mung.music.models import build


def artist_key(name: str) -> str:
    """Artist name for grouping: lower-cased, cut at "&", "and", "with", "feat." (the rule the
    music-4q splits were made with, so "Bob Marley & the Wailers" is "bob marley")."""
    return re.split(r"\s*(?:&|\band\b|\bwith\b|\bfeat\.?)\s*", name.lower().strip())[0].strip()


def read_artists(path: Path) -> dict[str, str]:
    """``file stem -> artist key`` from an ``artists.csv`` (``file,artist,title``)."""
    with open(path, newline="", encoding="utf-8") as f:
        return {Path(r["file"]).stem: artist_key(r["artist"]) for r in csv.DictReader(f)}


Folds = list[tuple[np.ndarray, np.ndarray]]  # (fit rows, held-out rows) per fold


def artist_folds(tracks: list, artists_csv: Path, folds: int = 5) -> Folds:
    """Artist-disjoint folds of ``tracks`` (:class:`~sklearn.model_selection.GroupKFold` over
    :func:`read_artists`; deterministic, so every model cross-validated here, the hand-crafted
    members and the networks trained per fold alike, sees the same folds)."""
    artists = read_artists(artists_csv)
    groups = np.array([artists[t.path.stem] for t in tracks])
    return list(GroupKFold(folds).split(np.zeros(len(tracks)), None, groups))


@dataclass
class CropFeatures:
    """Feature rows of every evaluation crop and the clip each row belongs to."""

    x: np.ndarray  # [n_crops, D] float32
    owner: np.ndarray  # [n_crops] clip index


@torch.no_grad()
def crop_features(model: torch.nn.Module, tracks: list[Track], cache: MelCache, crop: int,
                  batch: int = 32) -> CropFeatures:
    """The backbone's raw statistics for the deterministic crops inference uses."""
    rows, owner = [], []
    for i, t in enumerate(tracks):
        crops = eval_crops(normalise(cache.raw(t.path), cache.cfg.normalisation), crop)
        for s in range(0, len(crops), batch):
            rows.append(model.backbone.features(torch.from_numpy(crops[s : s + batch])).numpy())
        owner += [i] * len(crops)
    return CropFeatures(np.concatenate(rows).astype(np.float32), np.asarray(owner))


def _lbfgs(w: torch.Tensor, b: torch.Tensor, loss_fn, iters: int) -> None:
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)


def fit_linear(z: np.ndarray, y: np.ndarray, task: str, weight_decay: float, iters: int = 300
               ) -> tuple[np.ndarray, np.ndarray]:
    """L2-regularised logistic regression on standardised features ``z``: softmax over stations
    (``y`` class indices) or independent sigmoids (``y`` multi-hot moods, bias started from the
    tag priors). Returns ``(weight [K, D], bias [K])``."""
    zt = torch.from_numpy(z).double()
    if task == "station":
        yt = torch.from_numpy(y).long()
        k = int(y.max()) + 1
        b0 = torch.zeros(k, dtype=torch.float64)
    else:
        yt = torch.from_numpy(y).double()
        k = y.shape[1]
        prior = (y.sum(0) + 0.5) / (len(y) + 1.0)
        b0 = torch.from_numpy(np.log(prior / (1 - prior)))
    w = torch.zeros(k, z.shape[1], dtype=torch.float64, requires_grad=True)
    b = b0.clone().requires_grad_(True)

    def loss():
        logits = zt @ w.T + b
        data = (F.cross_entropy(logits, yt) if task == "station"
                else F.binary_cross_entropy_with_logits(logits, yt, reduction="sum") / len(zt))
        return data + 0.5 * weight_decay * (w**2).sum()

    _lbfgs(w, b, loss, iters)
    return w.detach().float().numpy(), b.detach().float().numpy()


def standardiser(x: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance the non-affine batch norm of the backbone will apply."""
    return x.mean(0), x.var(0) + 1e-8


def _z(x: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    return ((x - mean) / np.sqrt(var + eps)).astype(np.float32)


def fit_heads(feats: CropFeatures, ys: np.ndarray, ym: np.ndarray, wd: dict[str, float]) -> tuple:
    """Standardisation + both heads fitted on every crop row (a crop inherits its clip's labels)."""
    mean, var = standardiser(feats.x)
    z = _z(feats.x, mean, var)
    heads = {"station": fit_linear(z, ys[feats.owner], "station", wd["station"]),
             "mood": fit_linear(z, ym[feats.owner], "mood", wd["mood"])}
    return mean, var, heads


def fit_member(spec: dict, feats: CropFeatures, ys: np.ndarray, ym: np.ndarray, setting: dict
               ) -> torch.nn.Module:
    """A stats ``MusicNet`` fitted on ``feats``: linear heads by L-BFGS (``setting``:
    ``station_wd``, ``mood_wd``) or, with ``epochs`` in ``setting``, the hidden layer by
    :func:`fit_mlp` (``weight_decay``, ``seed``). The seed also draws the initial weights, so a
    member fitted by any script, in any order, is the same."""
    torch.manual_seed(setting.get("seed", 0))
    model = build(spec)
    if "epochs" in setting:
        return fit_mlp(model, feats, ys, ym, setting["epochs"], setting["weight_decay"],
                       seed=setting.get("seed", 0))
    wd = {"station": setting["station_wd"], "mood": setting["mood_wd"]}
    mean, var, heads = fit_heads(feats, ys, ym, wd)
    return load_into(model, mean, var, heads)


def cross_validate(spec: dict, feats: CropFeatures, ys: np.ndarray, ym: np.ndarray, splits: Folds,
                   settings: list[dict]) -> list[tuple[dict, dict, dict]]:
    """Out-of-fold scores of every setting over ``splits`` (:func:`artist_folds`):
    ``(setting, scores, oof probabilities)``, the scores from :func:`oof_scores`."""
    n = len(ys)
    out = []
    for setting in settings:
        probs = {"station": np.zeros((n, ys.max() + 1)), "mood": np.zeros(ym.shape)}
        for tr, te in splits:
            rows_tr, rows_te = np.isin(feats.owner, tr), np.isin(feats.owner, te)
            sub = CropFeatures(feats.x[rows_tr], np.searchsorted(tr, feats.owner[rows_tr]))
            model = fit_member(spec, sub, ys[tr], ym[tr], setting)
            held = CropFeatures(feats.x[rows_te], np.searchsorted(te, feats.owner[rows_te]))
            for task, p in predict_features(model, held, len(te)).items():
                probs[task][te] = p
        out.append((setting, oof_scores(ys, ym, probs, splits), probs))
    return out


def oof_scores(ys: np.ndarray, ym: np.ndarray, probs: dict, splits: list) -> dict:
    """Station accuracy, mood PR-AUC / micro-F1@0.5, and micro-F1 with each fold's threshold
    tuned on the remaining folds (so no clip is scored at a threshold tuned on itself)."""
    m = station_metrics(ys, probs["station"]) | mood_metrics(ym, probs["mood"], [str(i) for i in
                                                                               range(ym.shape[1])])
    hits = np.zeros(ym.shape, dtype=bool)
    for tr, te in splits:
        thr = tune_threshold(ym[tr], probs["mood"][tr])
        hits[te] = probs["mood"][te] >= thr
    tp = (hits & (ym > 0)).sum()
    m["mood_micro_f1@cv_tuned"] = float(2 * tp / max(hits.sum() + (ym > 0).sum(), 1))
    return m


def load_into(model: torch.nn.Module, mean: np.ndarray, var: np.ndarray, heads: dict) -> torch.nn.Module:
    """Put the standardisation and the fitted heads into a linear-head stats ``MusicNet``."""
    norm = model.backbone.norm
    norm.running_mean.copy_(torch.from_numpy(mean))
    norm.running_var.copy_(torch.from_numpy(var))
    norm.num_batches_tracked.fill_(1)
    with torch.no_grad():
        for task, (w, b) in heads.items():
            model.heads[task].weight.copy_(torch.from_numpy(w))
            model.heads[task].bias.copy_(torch.from_numpy(b))
    return model.eval()


def fit_mlp(model: torch.nn.Module, feats: CropFeatures, ys: np.ndarray, ym: np.ndarray, epochs: int,
            weight_decay: float, lr: float = 1e-3, batch: int = 32, seed: int = 0) -> torch.nn.Module:
    """Train the hidden layer and heads of a stats ``MusicNet`` (``hidden`` > 0) on precomputed
    crop features with Adam + cosine annealing: the standardisation is frozen at the training
    features' statistics, dropout as in the network, mood bias started from the tag priors."""
    mean, var = standardiser(feats.x)
    load_into(model, mean, var, {})
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(feats.x)
    y_s = torch.from_numpy(ys[feats.owner]).long()
    y_m = torch.from_numpy(ym[feats.owner]).float()
    prior = (ym.sum(0) + 0.5) / (len(ym) + 1.0)
    with torch.no_grad():
        model.heads["mood"].bias.copy_(torch.from_numpy(np.log(prior / (1 - prior))).float())
    params = [*model.backbone.mlp.parameters(), *model.heads.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    steps = max(1, len(x) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps)
    for _ in range(epochs):
        model.train()
        model.backbone.norm.eval()  # frozen standardisation
        for idx in np.array_split(rng.permutation(len(x)), steps):
            z = model.dropout(model.backbone.mlp(model.backbone.norm(x[idx])))
            loss = (F.cross_entropy(model.heads["station"](z), y_s[idx])
                    + F.binary_cross_entropy_with_logits(model.heads["mood"](z), y_m[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict_features(model: torch.nn.Module, feats: CropFeatures, n_clips: int) -> dict:
    """Clip probabilities of a stats ``MusicNet`` from precomputed crop features."""
    model.eval()
    z = model.backbone.mlp(model.backbone.norm(torch.from_numpy(feats.x)))
    probs = {"station": torch.softmax(model.heads["station"](z), -1).numpy(),
             "mood": torch.sigmoid(model.heads["mood"](z)).numpy()}
    res = {}
    for task, p in probs.items():
        summed = np.zeros((n_clips, p.shape[1]))
        np.add.at(summed, feats.owner, p)
        res[task] = summed / np.bincount(feats.owner, minlength=n_clips)[:, None]
    return res
