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


def artist_key(name: str) -> str:
    """Artist name for grouping: lower-cased, cut at "&", "and", "with", "feat." (the rule the
    music-4q splits were made with, so "Bob Marley & the Wailers" is "bob marley")."""
    return re.split(r"\s*(?:&|\band\b|\bwith\b|\bfeat\.?)\s*", name.lower().strip())[0].strip()


def read_artists(path: Path) -> dict[str, str]:
    """``file stem -> artist key`` from an ``artists.csv`` (``file,artist,title``)."""
    with open(path, newline="", encoding="utf-8") as f:
        return {Path(r["file"]).stem: artist_key(r["artist"]) for r in csv.DictReader(f)}


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


def predict_linear(x: np.ndarray, owner: np.ndarray, n_clips: int, mean, var, heads: dict) -> dict:
    """Clip probabilities from crop rows: softmax / sigmoid, averaged over a clip's crops."""
    z = _z(x, mean, var)
    out = {}
    for task, (w, b) in heads.items():
        logits = z @ w.T + b
        if task == "station":
            e = np.exp(logits - logits.max(1, keepdims=True))
            p = e / e.sum(1, keepdims=True)
        else:
            p = 1 / (1 + np.exp(-logits))
        summed = np.zeros((n_clips, p.shape[1]))
        np.add.at(summed, owner, p)
        out[task] = summed / np.bincount(owner, minlength=n_clips)[:, None]
    return out


def fit_heads(feats: CropFeatures, ys: np.ndarray, ym: np.ndarray, wd: dict[str, float]) -> tuple:
    """Standardisation + both heads fitted on every crop row (a crop inherits its clip's labels)."""
    mean, var = standardiser(feats.x)
    z = _z(feats.x, mean, var)
    heads = {"station": fit_linear(z, ys[feats.owner], "station", wd["station"]),
             "mood": fit_linear(z, ym[feats.owner], "mood", wd["mood"])}
    return mean, var, heads


def cross_validate(feats: CropFeatures, ys: np.ndarray, ym: np.ndarray, groups: np.ndarray,
                   grid: list[float], folds: int = 5) -> tuple[dict, dict]:
    """Out-of-fold scores for every weight decay in ``grid`` with artist-disjoint folds
    (:class:`~sklearn.model_selection.GroupKFold`). Returns ``(table, oof)``: ``table[wd]`` =
    station accuracy, mood macro PR-AUC and micro-F1 at a threshold tuned on the other folds'
    out-of-fold scores; ``oof[wd]`` = the out-of-fold probabilities."""
    n = len(ys)
    splits = list(GroupKFold(folds).split(np.zeros(n), ys, groups))
    table, oof = {}, {}
    for wd in grid:
        probs = {"station": np.zeros((n, ys.max() + 1)), "mood": np.zeros(ym.shape)}
        for tr, te in splits:
            rows_tr = np.isin(feats.owner, tr)
            rows_te = np.isin(feats.owner, te)
            sub = CropFeatures(feats.x[rows_tr], np.searchsorted(tr, feats.owner[rows_tr]))
            mean, var, heads = fit_heads(sub, ys[tr], ym[tr], {"station": wd, "mood": wd})
            p = predict_linear(feats.x[rows_te], np.searchsorted(te, feats.owner[rows_te]), len(te),
                               mean, var, heads)
            for task in probs:
                probs[task][te] = p[task]
        table[wd] = oof_scores(ys, ym, probs, splits)
        oof[wd] = probs
    return table, oof


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
