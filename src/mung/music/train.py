"""``mung music train``: Adam + cosine annealing, CE / focal (station) and BCE (mood) losses,
optional mixup and frequency masking (off by default — the seed found they hurt), early stopping
on the validation metric, a metrics CSV, a training-curve PNG and a self-describing checkpoint."""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from mung import distributed
from mung.config import DEVICE, Config, Interval, Options, Type, param
from mung.errors import MungError
from mung.music.data import TASKS, Dataset, MelCache, encode, random_crop, read_dataset
from mung.music.features import MelConfig
from mung.music.metrics import mood_metrics, station_metrics, tune_threshold
from mung.music.model_io import CHECKPOINT_NAME, MusicModel, load_music_model, save_music_model
from mung.music.models import build
from mung.music.predict import predict_mels
from mung.outputs import check_writable, write_text
from mung.plots import figure
from mung.torchutil import count_parameters, pick_device

STATION_LOSSES = ("ce", "focal")


@dataclass
class MusicTrainConfig(Config):
    """Everything a training run depends on; saved in the checkpoint."""

    section: ClassVar[str] = ""  # keys as in the YAML file

    task: str = param("station", Options(TASKS))  # multi: one backbone, two heads
    model: str = param("crnn", Options(kind="music_model"))
    model_kwargs: dict = param(factory=dict)
    aux: str | None = param(None, Type(str), None)  # frozen auxiliary checkpoint (attention model)
    epochs: int = param(30, Interval(int, 1, None))
    batch_size: int = param(16, Interval(int, 1, None))
    lr: float = param(1e-3, Interval(float, 0, None, "neither"))
    weight_decay: float = param(1e-4, Interval(float, 0, None))
    # training crop; evaluation averages crops of this length
    crop_frames: int = param(256, Interval(int, 8, None))
    loss: str = param("ce", Options(STATION_LOSSES))  # station loss (mood always BCE)
    focal_gamma: float = param(2.0, Interval(float, 0, None))
    mood_weight: float = param(1.0, Interval(float, 0, None))  # multi-task: weight of the mood loss
    mixup: float = param(0.0, Interval(float, 0, None))  # Beta(α, α) mixup; 0 = off
    freq_mask: int = param(0, Interval(int, 0, None))  # max width of one random frequency mask; 0 = off
    patience: int = param(8, Interval(int, 1, None))  # epochs without improvement before stopping
    # best: the epoch with the best val score (early stopping after ``patience``); last: every
    # epoch is run and the last one kept, so val does not choose the epoch (the stored mood
    # threshold is still tuned on val, as with ``best``)
    keep: str = param("best", Options(("best", "last")))
    mood_prior: bool = param(True, Type(bool))  # mood-head bias = logit of each tag's training prevalence
    seed: int = param(0, Interval(int, 0, None))
    device: str = param("auto", DEVICE)
    mel: MelConfig = param(factory=MelConfig)
    cache_dir: str | None = param(None, Type(str), None)


@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    metrics: dict
    history: list[dict]


def _heads(cfg: MusicTrainConfig, data: Dataset) -> dict[str, int]:
    heads = {}
    if cfg.task in ("station", "multi"):
        if len(data.stations) < 2:
            raise MungError("station training needs at least two stations in the labels")
        heads["station"] = len(data.stations)
    if cfg.task in ("mood", "multi"):
        if not data.moods:
            raise MungError("mood training needs mood tags in the labels")
        heads["mood"] = len(data.moods)
    return heads


def model_spec(cfg: MusicTrainConfig, heads: dict[str, int]) -> tuple[dict, MusicModel | None]:
    """The JSON description :func:`mung.music.models.build` rebuilds the network from, and the
    frozen auxiliary checkpoint (attention model only) whose weights go into it."""
    spec = {"name": cfg.model, "kwargs": dict(cfg.model_kwargs), "heads": heads}
    if cfg.model != "attention":
        return spec, None
    if not cfg.aux:
        raise MungError("the attention model needs --aux CHECKPOINT (a frozen model of the other task)")
    aux = load_music_model(cfg.aux)
    want = "mood" if cfg.task == "station" else "station"
    if want not in aux.tasks:
        raise MungError(f"{cfg.aux}: auxiliary model must predict {want} for a {cfg.task} model")
    spec["aux"] = {**aux.meta["spec"], "task": want}
    return spec, aux


def _loss(cfg: MusicTrainConfig, out: dict, ys: torch.Tensor, ym: torch.Tensor) -> torch.Tensor:
    total = torch.zeros((), device=ys.device)
    if "station" in out:
        logits = out["station"]
        if ys.dim() == 2:  # mixed soft targets
            logp = F.log_softmax(logits, -1)
            ce = -(ys * logp).sum(-1)
        else:
            ce = F.cross_entropy(logits, ys, reduction="none")
        if cfg.loss == "focal":
            ce = (1 - torch.exp(-ce)) ** cfg.focal_gamma * ce
        total = total + ce.mean()
    if "mood" in out:
        total = total + cfg.mood_weight * F.binary_cross_entropy_with_logits(out["mood"], ym)
    return total


def init_mood_bias(model: torch.nn.Module, ym: np.ndarray, eps: float = 0.5) -> None:
    """Set the mood head's bias to the logit of each tag's (smoothed) training prevalence, so
    training starts from calibrated priors instead of p = 0.5 for every tag: the loss then spends
    its first steps on the features, not on pulling 50 biases down (after short runs with a
    zero bias no tag reached 0.5, micro-F1@0.5 = 0). Focal-loss-style prior init, Lin et al. 2017."""
    net = getattr(model, "net", model)  # the attention model wraps the trained network
    prior = (ym.sum(0) + eps) / (len(ym) + 2 * eps)
    with torch.no_grad():
        net.heads["mood"].bias.copy_(torch.from_numpy(np.log(prior / (1 - prior))).float())


def evaluate_split(model, mels, ys, ym, cfg: MusicTrainConfig, device: str, moods: list[str],
                   threshold: float = 0.5) -> tuple[dict, dict]:
    probs = predict_mels(model, mels, cfg.crop_frames, device=device)
    m: dict = {}
    if "station" in probs:
        m |= station_metrics(ys, probs["station"])
    if "mood" in probs:
        m |= mood_metrics(ym, probs["mood"], moods, threshold)
    return m, probs


def score(metrics: dict) -> float:
    """Early-stopping criterion: station accuracy, mood macro PR-AUC, or their sum (multi-task)."""
    return metrics.get("station_accuracy", 0.0) + np.nan_to_num(metrics.get("mood_macro_pr_auc", 0.0))


def train(cfg: MusicTrainConfig, data_path: os.PathLike, out_dir: os.PathLike, force: bool = False,
          progress: bool = True, data: Dataset | None = None, cache: MelCache | None = None) -> TrainResult:
    """Train on the ``train`` split, early-stop on ``val``, write ``OUT/model.safetensors``,
    ``metrics.csv`` and ``curves.png``."""
    from tqdm import tqdm

    cfg.validate()
    out_dir = Path(out_dir)
    check_writable(out_dir / CHECKPOINT_NAME, force)
    device = distributed.local_device(pick_device(cfg.device))
    main = distributed.is_main()
    progress = progress and main
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = data or read_dataset(data_path)
    train_t, val_t = data.split("train"), data.split("val")
    if not train_t or not val_t:
        raise MungError(f"{data_path}: need both train and val tracks (split column)")
    heads = _heads(cfg, data)
    spec, aux = model_spec(cfg, heads)
    model = build(spec)
    if aux is not None:
        model.aux.load_state_dict(aux.model.state_dict())
    model = distributed.sync_batch_norm(model, device).to(device)
    net = distributed.wrap(model, device)  # every process draws the same crops and keeps its rows
    distributed.reseed(cfg.seed)
    cache = cache or MelCache(cfg.mel, cfg.cache_dir)
    mels_tr = [cache.get(t.path) for t in tqdm(train_t, desc="features", disable=not progress)]
    mels_va = [cache.get(t.path) for t in val_t]
    ys_tr, ym_tr = encode(train_t, data.stations, data.moods)
    ys_va, ym_va = encode(val_t, data.stations, data.moods)
    if cfg.mood_prior and "mood" in heads:
        init_mood_bias(model, ym_tr)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_t) / cfg.batch_size)
    if len(train_t) // steps_per_epoch < distributed.world_size():
        raise MungError(f"batch size {cfg.batch_size} is smaller than the "
                        f"{distributed.world_size()} processes")
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    history, best, best_state, best_epoch, stale = [], -np.inf, None, 0, 0
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"train {cfg.model}/{cfg.task}", disable=not progress)
    t_train, n_seen = 0.0, 0
    for epoch in bar:
        model.train()
        t0, losses = time.perf_counter(), []
        for idx in np.array_split(rng.permutation(len(train_t)), steps_per_epoch):
            x = np.stack([random_crop(mels_tr[i], cfg.crop_frames, rng) for i in idx])
            if cfg.freq_mask:
                for b in range(len(x)):
                    w = int(rng.integers(0, cfg.freq_mask + 1))
                    f0 = int(rng.integers(0, x.shape[2] - w + 1))
                    x[b, :, f0 : f0 + w] = 0.0
            n_global, rows = len(idx), distributed.shard(len(idx))
            x, idx = x[rows], idx[rows]
            xt = torch.from_numpy(x).to(device)
            ys = torch.from_numpy(ys_tr[idx]).to(device)
            ym = torch.from_numpy(ym_tr[idx]).to(device)
            if cfg.mixup > 0:
                lam = float(rng.beta(cfg.mixup, cfg.mixup))
                perm = torch.randperm(len(idx), device=device)
                xt = lam * xt + (1 - lam) * xt[perm]
                if "station" in heads:
                    one = F.one_hot(ys, heads["station"]).float()
                    ys = lam * one + (1 - lam) * one[perm]
                ym = lam * ym + (1 - lam) * ym[perm]
            with torch.autocast(device_type="cuda", enabled=use_amp):
                loss = _loss(cfg, net(xt), ys, ym) * distributed.shard_weight(len(idx), n_global)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            losses.append(float(loss.detach()) / distributed.shard_weight(len(idx), n_global))
        t_train += time.perf_counter() - t0
        n_seen += len(train_t)
        metrics, _ = evaluate_split(model, mels_va, ys_va, ym_va, cfg, device, data.moods)
        row = {"epoch": epoch, "train_loss": distributed.mean_over_processes([float(np.mean(losses))])[0],
               **metrics}
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{score(metrics):.3f}")
        if score(metrics) > best:
            best, best_epoch, stale = score(metrics), epoch, 0
            if cfg.keep == "best":
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif cfg.keep == "best":
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    metrics, probs = evaluate_split(model, mels_va, ys_va, ym_va, cfg, device, data.moods)
    if "mood" in probs:
        thr = tune_threshold(ym_va, probs["mood"])
        metrics = metrics | mood_metrics(ym_va, probs["mood"], data.moods, thr)
    metrics["train_clips_per_s"] = n_seen / max(t_train, 1e-9)
    metrics["parameters"] = count_parameters(model, trainable_only=True)
    meta = {
        "spec": spec, "task": cfg.task, "stations": data.stations if "station" in heads else [],
        "moods": data.moods if "mood" in heads else [], "mel": cfg.mel.to_dict(),
        "crop_frames": cfg.crop_frames, "mood_threshold": metrics.get("mood_threshold", 0.5),
        "train_config": {k: v for k, v in asdict(cfg).items() if k != "mel"}, "best_epoch": best_epoch,
        "kept_epoch": best_epoch if cfg.keep == "best" else history[-1]["epoch"], "val_metrics": metrics,
        "data": str(data_path),
    }
    ckpt = out_dir / CHECKPOINT_NAME
    if main:  # one writer; the others wait so that the run folder is complete when all return
        save_music_model(ckpt, model.cpu(), meta, force)
        write_history(history, out_dir, force)
    distributed.barrier()
    return TrainResult(ckpt, best_epoch, metrics, history)


def write_history(history: list[dict], out_dir: Path, force: bool = False) -> None:
    """``metrics.csv`` and ``curves.png`` (loss and validation metrics per epoch)."""
    keys = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(history)
    write_text(out_dir / "metrics.csv", buf.getvalue(), force)
    epochs = [r["epoch"] for r in history]
    with figure(out_dir / "curves.png", (9, 3.2), ncols=2, force=force) as (_, (a1, a2)):
        a1.plot(epochs, [r["train_loss"] for r in history], marker=".")
        a1.set(xlabel="epoch", ylabel="train loss", title="training loss")
        for k in ("station_accuracy", "station_macro_f1", "mood_macro_pr_auc", "mood_micro_f1@0.5"):
            if k in keys:
                a2.plot(epochs, [r[k] for r in history], marker=".", label=k)
        a2.set(xlabel="epoch", title="validation")
        a2.legend(fontsize=7)


def train_processes(cfg: MusicTrainConfig, data_path: os.PathLike, out_dir: os.PathLike, force: bool = False,
                    nproc: int = 1) -> TrainResult:
    """:func:`train` in ``nproc`` data-parallel processes (or in the group ``torchrun`` started);
    the global batch stays ``cfg.batch_size`` and the learning rate ``cfg.lr``."""
    if cfg.batch_size < nproc:  # checked again inside, for torchrun
        raise MungError(f"batch size {cfg.batch_size} is smaller than the {nproc} processes")
    return distributed.spawn(_train_in_group, (cfg, data_path, out_dir, force), nproc)


def _train_in_group(cfg: MusicTrainConfig, data_path: os.PathLike, out_dir: os.PathLike, force: bool
                    ) -> TrainResult:
    with distributed.process_group(pick_device(cfg.device)):
        return train(cfg, data_path, out_dir, force)
