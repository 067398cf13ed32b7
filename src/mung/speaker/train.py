"""Train ResNetSE34L on a voxceleb_trainer-style list: N speakers × M utterances per batch,
random crops, optional noise / reverberation, angular prototypical (or softmax / AM-softmax)
loss, optional segment-aggregation training (segment loss + aggregated loss, Jung et al. 2020), cosine or
step schedule, resumable self-describing checkpoints and a training-curve PNG."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from mung import distributed
from mung.arrays import fit_length
from mung.audio import SAMPLE_RATE, find_audio, info, load
from mung.config import DEVICE, Config, Interval, Options, Range, Type, at_least, param
from mung.errors import MungError
from mung.outputs import check_writable, write_json
from mung.plots import figure
from mung.speaker.encoders import ResNetSE34LEncoder
from mung.speaker.evaluate import evaluate_trials
from mung.speaker.lists import Utterance, read_train_list, read_trials
from mung.speaker.losses import make_loss
from mung.speaker.model_io import AggregationConfig, SpeakerModel, load_speaker_model, save_speaker_model
from mung.speaker.models import (
    ResNetSE34L,
    ResNetSEConfig,
    SegmentAggregator,
    segment_bounds,
)
from mung.torchutil import count_parameters, pick_device

CACHE_LIMIT_SECONDS = 4 * 3600.0  # lists shorter than this are decoded once and kept in memory
# Settings that must not change when a run is resumed.
FIXED_ON_RESUME = (
    "loss",
    "n_out",
    "encoder_type",
    "segment_aggregation",
    "segment_seconds",
    "segment_hop",
    "utts_per_speaker",
)


@dataclass
class SpeakerTrainConfig(Config):
    """Everything a training run depends on (stored in every checkpoint)."""

    section: ClassVar[str] = ""  # keys as in the YAML file

    train_list: str | None = param(None, Type(str), None)
    audio_root: str | None = param(None, Type(str), None)
    out: str | None = param(None, Type(str), None)
    loss: str = param("angleproto", Options(kind="speaker_loss"))
    epochs: int = param(20, Interval(int, 1, None))
    speakers_per_batch: int = param(32, Interval(int, 2, None))
    utts_per_speaker: int = param(2, Interval(int, 1, None))
    crop_seconds: float = param(2.0, Interval(float, 0.2, None))
    lr: float = param(1e-3, Interval(float, 0, None, "neither"))
    weight_decay: float = param(5e-5, Interval(float, 0, None))
    schedule: str = param("cosine", Options(("cosine", "step")))
    step_epochs: int = param(10, Interval(int, 1, None))
    step_gamma: float = param(0.5, Interval(float, 0, 1, "right"))
    margin: float = param(0.2, Interval(float, 0, None))
    scale: float = param(30.0, Interval(float, 0, None, "neither"))
    n_out: int = param(512, Interval(int, 1, None))
    encoder_type: str = param("SAP", Options(("SAP", "ASP")))
    segment_aggregation: bool = param(False, Type(bool))
    segment_seconds: float = param(0.5, Interval(float, 0, None, "neither"))
    segment_hop: float = param(0.25, Interval(float, 0, None, "neither"))
    noise_dir: str | None = param(None, Type(str), None)
    rir_dir: str | None = param(None, Type(str), None)
    augment_prob: float = param(0.5, Interval(float, 0, 1))
    snr_db: list[float] = param(dataclasses.MISSING, Range(Interval(float, None, None)),
                                factory=lambda: [0.0, 15.0])
    val_trials: str | None = param(None, Type(str), None)
    val_audio_root: str | None = param(None, Type(str), None)
    init: str | None = param(None, Type(str), None)
    device: str = param("auto", DEVICE)
    workers: int = param(0, Interval(int, 0, None))
    seed: int = param(0, Interval(int, 0, None))

    def check(self, where: str) -> None:
        if self.loss == "angleproto" and self.utts_per_speaker < 2:
            raise MungError(f"The '{where}.utts_per_speaker' parameter must be at least 2 for the "
                            f"angular prototypical loss. Got {self.utts_per_speaker!r} instead.")
        if self.segment_aggregation:
            at_least(self, where, "segment_seconds", "segment_hop")
        if self.val_trials and not self.val_audio_root:
            raise MungError("--val-trials needs --val-audio-root")


class Augmenter:
    """Random reverberation (convolution with a room impulse response) and additive noise at a
    random SNR, each applied with probability ``prob``, from user folders of audio files."""

    def __init__(self, noise_dir: str | None, rir_dir: str | None, prob: float, snr_db: list[float]):
        self.noises = [(p, info(p).duration) for p in find_audio([noise_dir])] if noise_dir else []
        self.rirs = find_audio([rir_dir]) if rir_dir else []
        self.prob, self.snr_db = prob, snr_db

    def __bool__(self) -> bool:
        return bool(self.noises or self.rirs)

    def __call__(self, wav: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from scipy.signal import fftconvolve

        if self.rirs and rng.random() < self.prob:
            rir = load(self.rirs[rng.integers(len(self.rirs))])
            rir = rir / max(float(np.sqrt(np.sum(rir**2))), 1e-8)
            wav = fftconvolve(wav, rir)[: len(wav)].astype(np.float32)
        if self.noises and rng.random() < self.prob:
            path, dur = self.noises[rng.integers(len(self.noises))]
            need = len(wav) / SAMPLE_RATE
            offset = rng.uniform(0, max(dur - need, 0.0))
            noise = fit_length(load(path, offset=offset, duration=min(need, dur)), len(wav))[: len(wav)]
            snr = rng.uniform(*self.snr_db)
            p_sig, p_noise = np.mean(wav**2) + 1e-10, np.mean(noise**2) + 1e-10
            wav = wav + noise * np.sqrt(p_sig / (p_noise * 10 ** (snr / 10)))
        return wav.astype(np.float32)


def plan_epoch(
    speakers: list[list[int]], n_per_batch: int, m: int, rng: np.random.Generator
) -> list[list[tuple[int, list[int]]]]:
    """Batches of ``(speaker_index, M utterance indices)`` with distinct speakers per batch; each
    utterance is used about once per epoch (voxceleb_trainer's sampling)."""
    groups = []
    for s, utts in enumerate(speakers):
        perm = rng.permutation(utts)
        groups += [(s, perm[i : i + m].tolist()) for i in range(0, len(perm) - m + 1, m)]
    order = rng.permutation(len(groups))
    open_batches: list[list[tuple[int, list[int]]]] = []
    for gi in order:
        g = groups[gi]
        for b in open_batches:
            if len(b) < n_per_batch and all(s != g[0] for s, _ in b):
                b.append(g)
                break
        else:
            open_batches.append([g])
    return [b for b in open_batches if len(b) >= 2]


class BatchSet(Dataset):
    """One item = one training batch ``(wav [N, M, samples], speaker labels [N])``; with ``part =
    (rank, world)`` only that process's share of the N speakers is decoded (labels stay global)."""

    def __init__(
        self,
        utts: list[Utterance],
        plan: list,
        crop: int,
        augment: Augmenter | None,
        seed: int,
        cache: dict[Path, np.ndarray] | None,
        part: tuple[int, int] = (0, 1),
    ) -> None:
        self.utts, self.plan, self.crop, self.augment = utts, plan, crop, augment
        self.seed, self.cache, self.part = seed, cache, part

    def __len__(self) -> int:
        return len(self.plan)

    def _crop(self, u: Utterance, rng: np.random.Generator) -> np.ndarray:
        if self.cache is not None:
            wav = self.cache[u.path]
        else:
            span = self.crop / SAMPLE_RATE
            offset = rng.uniform(0, u.seconds - span) if u.seconds > span else 0.0
            wav = load(u.path, offset=offset, duration=min(span, u.seconds))
        wav = fit_length(wav, self.crop)
        start = rng.integers(len(wav) - self.crop + 1)
        wav = wav[start : start + self.crop]
        return self.augment(wav, rng) if self.augment else wav

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        groups = self.plan[i]
        mine = distributed.shard(len(groups), *self.part)  # one random stream per speaker group
        wav = np.stack([np.stack([self._crop(self.utts[j], np.random.default_rng([self.seed, i, k]))
                                  for j in idx])
                        for k, (_, idx) in enumerate(groups) if mine.start <= k < mine.stop])
        return torch.from_numpy(wav), torch.tensor([s for s, _ in groups])


def learning_rate(cfg: SpeakerTrainConfig, epoch: float) -> float:
    """Learning rate at (fractional) ``epoch``: cosine annealing to 0 or step decay."""
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(epoch / cfg.epochs, 1.0)))
    return cfg.lr * cfg.step_gamma ** int(epoch // cfg.step_epochs)


class Trainer:
    """Holds the model, aggregator, losses and optimiser of one run."""

    def __init__(self, cfg: SpeakerTrainConfig, n_speakers: int) -> None:
        self.cfg, self.device = cfg, distributed.local_device(pick_device(cfg.device))
        if cfg.init:
            init = load_speaker_model(cfg.init)
            if init.model.cfg.n_out != cfg.n_out or init.model.cfg.encoder_type != cfg.encoder_type:
                raise MungError(
                    f"{cfg.init}: --init model has n_out={init.model.cfg.n_out}, "
                    f"{init.model.cfg.encoder_type}; this run asks for {cfg.n_out}, {cfg.encoder_type}"
                )
            self.model = init.model
        else:
            self.model = ResNetSE34L(ResNetSEConfig(n_out=cfg.n_out, encoder_type=cfg.encoder_type))
        self.aggregator = SegmentAggregator(cfg.n_out) if cfg.segment_aggregation else None
        kw = {"dim": cfg.n_out, "n_speakers": n_speakers, "margin": cfg.margin, "scale": cfg.scale}
        self.losses = torch.nn.ModuleDict({"utt": make_loss(cfg.loss, **kw)})
        if cfg.segment_aggregation:
            self.losses["agg"] = make_loss(cfg.loss, **kw)
        self.modules = torch.nn.ModuleDict({"model": self.model, "losses": self.losses})
        if self.aggregator is not None:
            self.modules["aggregator"] = self.aggregator
        distributed.sync_batch_norm(self.modules, self.device).to(self.device)
        self.net = distributed.wrap(_LossStep(self.modules, self._loss), self.device)
        self.opt = torch.optim.Adam(self.modules.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.agg_cfg = AggregationConfig(cfg.segment_seconds, cfg.segment_hop)

    def speaker_model(self) -> SpeakerModel:
        return SpeakerModel(self.model, self.aggregator, self.agg_cfg)

    def step(self, wav: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        """One optimisation step on ``wav [N, M, samples]`` (this process's speakers) and the
        global batch's ``labels``; returns (loss, accuracy)."""
        loss, acc = self.net(wav.to(self.device), labels.to(self.device))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item(), acc

    def _loss(self, wav: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Loss over the global batch: embeddings of every process are gathered first."""
        gather = distributed.all_gather_rows
        n, m, length = wav.shape
        if self.aggregator is None:
            emb = gather(self.model(wav.reshape(n * m, length)).reshape(n, m, -1))
            loss, acc = self.losses["utt"](emb, labels)
        else:  # segment loss on every segment + loss on the aggregated utterance embeddings
            seg_n = int(self.cfg.segment_seconds * SAMPLE_RATE)
            bounds = segment_bounds(length, seg_n, int(self.cfg.segment_hop * SAMPLE_RATE))
            segs = torch.stack([wav[:, :, a:b] for a, b in bounds], dim=2)  # [N, M, S, seg]
            s = segs.shape[2]
            emb = self.model(segs.reshape(n * m * s, -1)).reshape(n, m, s, -1)
            seg_loss, _ = self.losses["utt"](gather(emb.reshape(n, m * s, -1)), labels)
            agg = gather(self.aggregator(emb.reshape(n * m, s, -1)).reshape(n, m, -1))
            agg_loss, acc = self.losses["agg"](agg, labels)
            loss = seg_loss + agg_loss
        return loss, acc

    def state(self) -> dict[str, Any]:
        return {
            "losses_state_dict": {k: v.detach().cpu() for k, v in self.losses.state_dict().items()},
            "optimizer_state_dict": self.opt.state_dict(),
        }

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["state_dict"])
        if self.aggregator is not None:
            self.aggregator.load_state_dict(ckpt["aggregator_state_dict"])
        self.losses.load_state_dict(ckpt["losses_state_dict"])
        self.opt.load_state_dict(ckpt["optimizer_state_dict"])


class _LossStep(torch.nn.Module):
    """The trainer's modules with the loss as ``forward``, so DDP can wrap one module."""

    def __init__(self, modules: torch.nn.ModuleDict, loss) -> None:
        super().__init__()
        self.parts, self.loss = modules, loss

    def forward(self, wav: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
        return self.loss(wav, labels)


def plot_curve(history: list[dict[str, float]], path: Path) -> None:
    """Loss, accuracy and (if any) validation EER per epoch → PNG."""
    ep = [h["epoch"] for h in history]
    panels = [("loss", "training loss"), ("accuracy", "training accuracy")]
    if any("val_eer" in h for h in history):
        panels.append(("val_eer", "validation EER %"))
    with figure(path, (4 * len(panels), 3.2), ncols=len(panels), force=True) as (_, axes):
        for ax, (key, title) in zip(axes, panels, strict=True):
            ax.plot(ep, [h.get(key, np.nan) for h in history], marker="o")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)


def _resume_checkpoint(path: Path, cfg: SpeakerTrainConfig) -> dict[str, Any]:
    if not path.is_file():
        raise MungError(f"{path}: nothing to resume (no checkpoint in the run directory)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    old = ckpt.get("train_config", {})
    changed = [k for k in FIXED_ON_RESUME if old.get(k) != getattr(cfg, k)]
    if changed:
        raise MungError(f"{path}: cannot resume with changed settings: {', '.join(changed)}")
    return ckpt


def validate(trainer: Trainer, cfg: SpeakerTrainConfig) -> float:
    """Validation EER (percent) on full-length trials."""
    trials = read_trials(cfg.val_trials, cfg.val_audio_root)
    enc = ResNetSE34LEncoder(
        trainer.speaker_model(), trainer.device, segment_aggregation=cfg.segment_aggregation
    )
    trainer.modules.eval()
    try:
        return evaluate_trials(enc, trials, cfg.val_audio_root, durations=(None,), progress=False,
                               interval=False)[0].eer
    finally:
        trainer.modules.train()


def train(
    cfg: SpeakerTrainConfig, resume: bool = False, force: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run training; writes ``checkpoint.pt`` (resumable), ``model.pt`` (final), ``history.json``,
    ``config.json`` and ``training_curve.png`` under ``cfg.out``. Returns the final metrics."""
    cfg.validate()
    for name in ("train_list", "audio_root", "out"):
        if not getattr(cfg, name):
            raise MungError(f"The '{name}' parameter must be given (--{name.replace('_', '-')} "
                            "or the config file). Got None instead.")
    out = Path(cfg.out)
    ckpt_path, model_path = out / "checkpoint.pt", out / "model.pt"
    if not resume:
        check_writable(ckpt_path, force)
        check_writable(model_path, force)
    utts = read_train_list(cfg.train_list, cfg.audio_root, min_per_speaker=cfg.utts_per_speaker)
    spk_names = sorted({u.speaker for u in utts})
    spk_index = {s: i for i, s in enumerate(spk_names)}
    speakers: list[list[int]] = [[] for _ in spk_names]
    for i, u in enumerate(utts):
        speakers[spk_index[u.speaker]].append(i)
    if cfg.val_trials:
        read_trials(cfg.val_trials, cfg.val_audio_root)  # fail early on a bad trial list
    augment = Augmenter(cfg.noise_dir, cfg.rir_dir, cfg.augment_prob, cfg.snr_db)
    total = sum(u.seconds for u in utts)
    cache = None
    if total <= CACHE_LIMIT_SECONDS:
        cache = {u.path: load(u.path) for u in tqdm(utts, desc="decoding", unit="file", disable=not progress)}
    torch.manual_seed(cfg.seed)
    trainer = Trainer(cfg, len(spk_names))
    distributed.reseed(cfg.seed)
    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume:
        ckpt = _resume_checkpoint(ckpt_path, cfg)
        try:
            trainer.load_state(ckpt)
        except (RuntimeError, KeyError, ValueError) as exc:
            msg = str(exc).splitlines()[0][:200]
            raise MungError(f"{ckpt_path}: cannot resume this run with this list ({msg})") from None
        history, start_epoch = list(ckpt["history"]), int(ckpt["epoch"])
        if start_epoch >= cfg.epochs:
            raise MungError(f"{ckpt_path}: already trained {start_epoch} epochs; raise --epochs to continue")
    main, part = distributed.is_main(), (distributed.rank(), distributed.world_size())
    progress = progress and main
    out.mkdir(parents=True, exist_ok=True)
    if main:
        write_json(out / "config.json", asdict(cfg), force=True)
    crop = int(cfg.crop_seconds * SAMPLE_RATE)
    meta = {
        "train_config": asdict(cfg),
        "train_speakers": len(spk_names),
        "train_utterances": len(utts),
        "train_seconds": round(total, 1),
        "parameters": count_parameters(trainer.model),
    }
    for epoch in range(start_epoch, cfg.epochs):
        rng = np.random.default_rng([cfg.seed, epoch])
        plan = plan_epoch(speakers, cfg.speakers_per_batch, cfg.utts_per_speaker, rng)
        plan = [b for b in plan if len(b) >= part[1]]  # every process needs one speaker
        if not plan:
            raise MungError("the training list cannot fill one batch (need >= 2 speakers with M utterances)")
        data = BatchSet(utts, plan, crop, augment or None, cfg.seed * 100003 + epoch, cache, part)
        loader = DataLoader(data, batch_size=None, shuffle=False, num_workers=cfg.workers)
        trainer.modules.train()
        losses, accs, t0 = [], [], time.time()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not progress)
        for b, (wav, labels) in enumerate(bar):
            for g in trainer.opt.param_groups:
                g["lr"] = learning_rate(cfg, epoch + b / len(plan))
            loss, acc = trainer.step(wav, labels)
            losses.append(loss)
            accs.append(acc)
            bar.set_postfix(loss=f"{np.mean(losses):.3f}", acc=f"{np.mean(accs):.2f}")
        rec = {
            "epoch": epoch + 1,
            "loss": float(np.mean(losses)),
            "accuracy": float(np.mean(accs)),
            "lr": trainer.opt.param_groups[0]["lr"],
            "seconds": round(time.time() - t0, 1),
        }
        if cfg.val_trials and main:
            rec["val_eer"] = validate(trainer, cfg)
        history.append(rec)
        if not main:  # one writer: the others go on to the next epoch
            continue
        if progress:
            tqdm.write(json.dumps(rec))
        sm = trainer.speaker_model()
        sm.meta = {**meta, "metrics": rec}
        save_speaker_model(
            ckpt_path,
            sm,
            force=True,
            epoch=epoch + 1,
            history=history,
            train_config=asdict(cfg),
            **trainer.state(),
        )
        write_json(out / "history.json", history, force=True)
        plot_curve(history, out / "training_curve.png")
    if main:
        sm = trainer.speaker_model()
        sm.meta = {**meta, "metrics": history[-1], "epochs": len(history)}
        save_speaker_model(model_path, sm, force=True)
    distributed.barrier()
    return history[-1]


def train_processes(cfg: SpeakerTrainConfig, resume: bool = False, force: bool = False, nproc: int = 1
                    ) -> dict[str, Any]:
    """:func:`train` in ``nproc`` data-parallel processes (or in the group ``torchrun`` started);
    the global batch stays ``speakers_per_batch`` × ``utts_per_speaker``, the learning rate ``lr``."""
    return distributed.spawn(_train_in_group, (cfg, resume, force), nproc)


def _train_in_group(cfg: SpeakerTrainConfig, resume: bool, force: bool) -> dict[str, Any]:
    with distributed.process_group(pick_device(cfg.device)):
        return train(cfg, resume, force, progress=distributed.is_main())
