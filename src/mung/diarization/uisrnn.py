"""UIS-RNN supervised clustering (Zhang et al., "Fully supervised speaker diarization", ICASSP 2019),
re-implemented in torch.

Each speaker's embedding sequence is modelled by one shared GRU: the prediction for the speaker's
next embedding is the running mean of the GRU outputs so far, with a diagonal Gaussian (learned
variance) around it. Between consecutive windows the speaker changes with probability
``p_change``; a changed speaker is an existing one in proportion to its number of turns or a new
one in proportion to ``crp_alpha`` (distance-dependent Chinese restaurant process). Decoding is a
beam search whose beams are held in batched tensors: one GRU step per window for all beams, so
prediction costs a few milliseconds per window instead of one model call per beam and candidate.

Checkpoints (the shared safetensors + JSON format of :mod:`mung.checkpoint`) record the embedding dimension,
the encoder name, the centring and window settings they were trained with.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from mung import checkpoint
from mung.config import Config, Interval, Type, param
from mung.diarization.clustering import ClusteringConfig, fold
from mung.errors import MungError
from mung.registry import register
from mung.torchutil import torch_threads

FORMAT = "mung-uisrnn"
WHAT = "UIS-RNN model (expected a file from `mung diarize train-clustering`)"


@dataclass
class UISRNNTrainConfig(Config):
    """``steps`` of Adam on batches of ``batch_size`` speaker sequences cropped to ``max_length``
    windows; ``hidden``: GRU size. ``holdout``: share of the recordings kept out of training to
    calibrate the new-speaker prior (``crp_alpha`` is scaled by the best of ``alpha_scales``)."""

    section: ClassVar[str] = "uisrnn"

    hidden: int = param(128, Interval(int, 1, None))  # GRU size
    steps: int = param(2000, Interval(int, 1, None))
    holdout: float = param(0.1, Interval(float, 0, 1, "left"))  # share of recordings for calibration
    alpha_scales: tuple[float, ...] = param((1.0, 1e-5, 1e-10, 1e-20, 1e-30, 1e-40), Type((tuple, list)))
    batch_size: int = param(32, Interval(int, 1, None))  # speaker sequences per step
    max_length: int = param(64, Interval(int, 2, None))  # windows per training sequence
    learning_rate: float = param(1e-3, Interval(float, 0, None, "neither"))
    weight_decay: float = param(1e-5, Interval(float, 0, None))
    seed: int = param(0, Interval(int, 0, None))

    def check(self, where: str) -> None:
        if not self.alpha_scales or min(self.alpha_scales) <= 0:
            raise MungError(f"The '{where}.alpha_scales' parameter must be a non-empty list of "
                            f"positive floats. Got {self.alpha_scales!r} instead.")


class UISRNN(nn.Module):
    """The speaker-sequence model plus the turn statistics learned from labels."""

    def __init__(self, dim: int, hidden: int, meta: dict | None = None) -> None:
        super().__init__()
        self.dim, self.hidden = dim, hidden
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(hidden))
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.log_sigma2 = nn.Parameter(torch.full((dim,), math.log(0.01)))
        self.meta = dict(meta or {})
        self.p_change = float(self.meta.get("p_change", 0.05))
        self.crp_alpha = float(self.meta.get("crp_alpha", 1.0))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs [B, T, dim]`` (a zero vector then the speaker's embeddings) → predicted means,
        the running mean of the GRU outputs ``[B, T, dim]``."""
        h, _ = self.gru(inputs, self.h0.expand(1, len(inputs), -1).contiguous())
        steps = torch.arange(1, inputs.shape[1] + 1, device=inputs.device, dtype=inputs.dtype)
        return torch.cumsum(self.out(h), 1) / steps[None, :, None]

    def nll(self, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean Gaussian negative log-likelihood per observed window."""
        mean = self(inputs)
        s2 = self.log_sigma2.exp()
        per = 0.5 * (((targets - mean) ** 2) / s2 + self.log_sigma2 + math.log(2 * math.pi)).sum(-1)
        return (per * mask).sum() / mask.sum()


def save_model(model: UISRNN, path: str | os.PathLike, force: bool = False) -> Path:
    """Write a self-describing checkpoint (the :mod:`mung.checkpoint` format) atomically."""
    meta = {**model.meta, "p_change": model.p_change, "crp_alpha": model.crp_alpha}
    description = {"format": FORMAT, "version": 2, "dim": model.dim, "hidden": model.hidden, "meta": meta}
    return checkpoint.save(path, checkpoint.state_tensors(model), description, force)


def load_model(path: str | os.PathLike) -> UISRNN:
    """Read a checkpoint written by :func:`save_model` (cached per path and modification time)."""
    path = Path(path)
    if not path.is_file():
        raise MungError(f"{path}: UIS-RNN model not found (train one with `mung diarize train-clustering`)")
    return _load(str(path), path.stat().st_mtime_ns)


def _read_legacy(path: str) -> tuple[dict, dict] | None:
    """Version-1 files (``torch.save`` of plain tensors, read with ``weights_only=True``)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - pickle/zip errors of every kind: not a legacy file
        return None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        return None
    return blob.pop("state_dict"), blob


@lru_cache(maxsize=4)
def _load(path: str, _mtime: int) -> UISRNN:
    legacy = _read_legacy(path)
    state, blob = legacy if legacy else checkpoint.load(path, WHAT)
    if blob.get("format") != FORMAT:
        raise MungError(f"{path}: not a {WHAT}")
    model = UISRNN(int(blob["dim"]), int(blob["hidden"]), blob["meta"])
    model.load_state_dict(state)
    return model.eval()


def check_compatible(model: UISRNN, path: str, dim: int, encoder: str | None = None,
                     front_end: dict | None = None) -> None:
    """Refuse embeddings the model was not trained on; warn when ``front_end`` settings (centring,
    windows, VAD) differ from the training ones."""
    trained = model.meta.get("encoder", "?")
    if dim != model.dim:
        raise MungError(
            f"{path}: UIS-RNN model was trained on {model.dim}-d embeddings ({trained}) but the pipeline "
            f"gives {dim}-d ones; use the same --embedding or retrain with `mung diarize train-clustering`"
        )
    if encoder is not None and trained not in ("?", encoder):
        raise MungError(f"{path}: UIS-RNN model was trained on '{trained}' embeddings, not '{encoder}'")
    differ = [f"{k} {model.meta[k]} (now {v})" for k, v in (front_end or {}).items()
              if k in model.meta and model.meta[k] != v]
    if differ:
        warnings.warn(f"{path}: UIS-RNN model was trained with {', '.join(differ)}", stacklevel=2)


# ---------------------------------------------------------------------------------------- decoding


def _grow(t: torch.Tensor, n: int, fill: float) -> torch.Tensor:
    """``t [B, K, ...]`` with ``n`` more speaker slots filled with ``fill``."""
    return torch.cat([t, torch.full((len(t), n, *t.shape[2:]), float(fill))], 1)


@torch.no_grad()
def decode(model: UISRNN, emb: np.ndarray, max_speakers: int, beam_size: int = 10) -> np.ndarray:
    """Most likely speaker labels (0.. in order of appearance) of the embedding sequence ``emb``."""
    x_all = torch.as_tensor(np.asarray(emb), dtype=torch.float32)
    k = max(1, max_speakers)
    if len(x_all) == 0:
        return np.zeros(0, int)
    inv_s2 = (-model.log_sigma2).exp()
    h1 = model.gru(torch.zeros(1, 1, model.dim), model.h0[None, None])[0][0, 0]  # new speaker's state
    s1 = model.out(h1)
    log_p, log_q, log_a = math.log(model.p_change), math.log1p(-model.p_change), math.log(model.crp_alpha)
    hid, sums = torch.zeros(1, 0, model.hidden), torch.zeros(1, 0, model.dim)
    counts, turns = torch.ones(1, 0), torch.zeros(1, 0)
    nspk = torch.zeros(1, dtype=torch.long)
    last = torch.full((1,), -1, dtype=torch.long)
    score = torch.zeros(1)
    history: list[tuple[torch.Tensor, torch.Tensor]] = []
    for x in x_all:
        slots_now = hid.shape[1]
        if int(nspk.max()) >= slots_now and slots_now < k:  # room for one more speaker in every beam
            n = min(k, slots_now + 4) - slots_now
            hid, sums = _grow(hid, n, 0), _grow(sums, n, 0)
            counts, turns = _grow(counts, n, 1), _grow(turns, n, 0)
        slots = torch.arange(hid.shape[1])
        nll_old = 0.5 * (((x - sums / counts[..., None]) ** 2) * inv_s2).sum(-1)  # [B, k]
        nll_new = 0.5 * (((x - s1) ** 2) * inv_s2).sum()
        denom = torch.log(turns.sum(1, keepdim=True) + model.crp_alpha)
        prior_old = torch.where(slots[None] == last[:, None], log_q, log_p + torch.log(turns) - denom)
        old = score[:, None] + nll_old - prior_old
        old = old.masked_fill(slots[None] >= nspk[:, None], math.inf)
        new = (score + nll_new - (log_p + log_a - denom[:, 0])).masked_fill(nspk >= k, math.inf)
        new = torch.where(nspk == 0, score + nll_new, new)  # the first window opens the first speaker
        cand = torch.cat([old, new[:, None]], 1).flatten()
        best = torch.topk(cand, min(beam_size, int(torch.isfinite(cand).sum())), largest=False)
        parent, choice = best.indices // (len(slots) + 1), best.indices % (len(slots) + 1)
        is_new = choice == len(slots)
        label = torch.where(is_new, nspk[parent], choice)
        rows = torch.arange(len(parent))
        hid, sums, counts, turns = hid[parent], sums[parent], counts[parent], turns[parent]
        prev_h = torch.where(is_new[:, None], h1, hid[rows, label])
        h = model.gru(x.expand(len(parent), 1, -1), prev_h[None].contiguous())[0][:, 0]
        hid[rows, label] = h
        sums[rows, label] = torch.where(is_new[:, None], s1, sums[rows, label]) + model.out(h)
        counts[rows, label] = torch.where(is_new, 1.0, counts[rows, label]) + 1
        turns[rows, label] = torch.where(is_new, 0.0, turns[rows, label]) + (label != last[parent]).float()
        nspk, last, score = nspk[parent] + is_new.long(), label, best.values
        history.append((parent, label))
    labels, b = [], 0
    for parent, label in reversed(history):
        labels.append(int(label[b]))
        b = int(parent[b])
    return np.asarray(labels[::-1])


def predict(emb: np.ndarray, model_path: str, max_speakers: int, beam_size: int = 10) -> np.ndarray:
    """Labels for ``emb`` with the model at ``model_path`` (dimension checked)."""
    model = load_model(model_path)
    check_compatible(model, model_path, emb.shape[1])
    with torch_threads(1):  # tiny per-step ops: threads only add overhead
        return decode(model, emb, max_speakers, beam_size)


# ---------------------------------------------------------------------------------------- training


def turn_statistics(label_seqs: list[np.ndarray]) -> tuple[float, float]:
    """``p_change`` (share of consecutive windows whose speaker differs) and the CRP ``alpha`` that
    maximises the likelihood of the turn sequences (grid search)."""
    pairs = sum(max(0, len(s) - 1) for s in label_seqs)
    changes = sum(int((s[1:] != s[:-1]).sum()) for s in label_seqs)
    p_change = (changes + 1) / (pairs + 2)
    blocks = [s[np.r_[True, s[1:] != s[:-1]]] for s in label_seqs if len(s)]
    alphas = np.logspace(-2, 2, 81)
    best, best_ll = 1.0, -np.inf
    for a in alphas:
        ll = 0.0
        for seq in blocks:
            counts: dict[int, int] = {}
            for i, spk in enumerate(seq):
                if i:  # the first block is certain; later ones are existing (∝ count) or new (∝ a)
                    ll += math.log((counts[spk] if spk in counts else a) / (i + a))
                counts[spk] = counts.get(spk, 0) + 1
        if ll > best_ll:
            best, best_ll = float(a), ll
    return float(p_change), best


def speaker_sequences(data: list[tuple[np.ndarray, np.ndarray]]) -> list[torch.Tensor]:
    """Each recording's embeddings split into one time-ordered sequence per speaker label."""
    out = []
    for emb, labels in data:
        for spk in np.unique(labels):
            out.append(torch.as_tensor(emb[labels == spk], dtype=torch.float32))
    return out


def train(data: list[tuple[np.ndarray, np.ndarray]], config: UISRNNTrainConfig | None = None,
          meta: dict | None = None, progress=None) -> tuple[UISRNN, list[float]]:
    """Fit a model on ``(embeddings [n, dim], speaker labels [n])`` per recording; return it and
    the loss curve (mean NLL per logged interval)."""
    config = config or UISRNNTrainConfig()
    config.validate()
    data = [(e, np.asarray(lab)) for e, lab in data if len(e)]
    if not data:
        raise MungError("uisrnn: no labelled embeddings to train on")
    dims = {e.shape[1] for e, _ in data}
    if len(dims) != 1:
        raise MungError(f"uisrnn: training embeddings have different dimensions {sorted(dims)}")
    rng = np.random.default_rng(config.seed)
    n_held = int(config.holdout * len(data)) if len(data) >= 5 else 0
    order = rng.permutation(len(data))
    held, data = [data[i] for i in order[:n_held]], [data[i] for i in order[n_held:]]
    p_change, alpha = turn_statistics([lab for _, lab in data])
    model = UISRNN(dims.pop(), config.hidden, {**(meta or {}), "p_change": p_change, "crp_alpha": alpha,
                                                "train": asdict(config)})
    seqs = speaker_sequences(data)
    torch.manual_seed(config.seed)
    opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps)
    curve, running = [], []
    steps = range(config.steps) if progress is None else progress(range(config.steps))
    for step in steps:
        batch = []
        for i in rng.integers(len(seqs), size=config.batch_size):
            s = seqs[i]
            n = min(len(s), config.max_length)
            a = int(rng.integers(len(s) - n + 1))
            batch.append(s[a : a + n])
        length = max(len(s) for s in batch)
        targets = torch.zeros(len(batch), length, model.dim)
        mask = torch.zeros(len(batch), length)
        for j, s in enumerate(batch):
            targets[j, : len(s)], mask[j, : len(s)] = s, 1
        inputs = torch.cat([torch.zeros(len(batch), 1, model.dim), targets[:, :-1]], 1)
        loss = model.nll(inputs, targets, mask)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        running.append(loss.item())
        if (step + 1) % 100 == 0 or step + 1 == config.steps:
            curve.append(float(np.mean(running)))
            running = []
    model.eval()
    if held:
        calibrate_alpha(model, held, config.alpha_scales)
    return model, curve


def label_accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of windows labelled right under the best one-to-one mapping of labels to speakers."""
    m = np.zeros((labels.max() + 1, truth.max() + 1))
    np.add.at(m, (labels, truth), 1)
    rows, cols = linear_sum_assignment(-m)
    return float(m[rows, cols].sum() / len(labels))


def calibrate_alpha(model: UISRNN, held: list[tuple[np.ndarray, np.ndarray]], scales) -> None:
    """Scale ``crp_alpha`` to the value that labels the held-out recordings best (the Gaussian
    likelihood over correlated embedding dimensions is over-confident, so the raw prior
    invents speakers)."""
    base, scores = model.crp_alpha, {}
    for scale in scales:
        model.crp_alpha = base * scale
        hits = [label_accuracy(decode(model, e, 10), lab) * len(lab) for e, lab in held]
        scores[scale] = sum(hits) / sum(len(lab) for _, lab in held)
    best = max(scores, key=lambda k: (scores[k], k))
    model.crp_alpha = base * best
    accuracy = {f"{k:g}": v for k, v in scores.items()}
    model.meta.update(crp_alpha_estimated=base, alpha_scale=best, holdout_accuracy=accuracy)


@register("clustering", "uisrnn")
def uisrnn_method(emb: np.ndarray, config: ClusteringConfig, weights: np.ndarray) -> np.ndarray:
    """Beam-search decoding with the trained model at ``config.model``, small clusters folded."""
    labels = predict(emb, config.model, config.bounds(len(emb))[1], config.beam_size)
    return fold(emb, labels, weights, config)
