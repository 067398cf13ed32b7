"""Train the segmentation model on simulated meeting chunks (made on the fly from single-speaker
utterances, see :mod:`mung.diarization.meetings`), optionally mixed with chunks of real
RTTM-labelled recordings.

Training runs for a wall-clock budget (``minutes``): AdamW, linear warm-up then cosine decay over
the budget, permutation-invariant powerset cross entropy (or, with ``objective: count``, cross
entropy of the number of speakers per frame). Every ``val_every`` minutes the model is
scored on a fixed set of chunks built from held-out speakers (and held-out music clips); the best
model so far (by validation loss) is written atomically, so an interrupted run leaves a usable file.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import ClassVar, TypeVar

import numpy as np
import torch

from mung import audio
from mung.config import DEVICE, Config, Interval, Options, param
from mung.diarization.meetings import ChunkConfig, ChunkSimulator, ReferenceChunks, SpeechBank, load_music
from mung.diarization.models import load_segmentation
from mung.diarization.rttm import read_rttm
from mung.diarization.segmentation import (
    FrameCounts,
    SegmentationModel,
    SegmentationSpec,
    count_loss,
    pit_powerset_loss,
)
from mung.errors import MungError
from mung.outputs import check_writable
from mung.torchutil import pick_device

T = TypeVar("T")


@dataclass
class SegmentationTrainConfig(Config):
    """``minutes``: wall-clock budget; ``max_steps``: optional step cap (tests);
    ``real_fraction``: share of each batch drawn from real recordings when some are given;
    ``workers``: processes that simulate batches (0: one background thread, right for 2 cores;
    a GPU host needs several, simulation costs about 8 ms of CPU per 5-s chunk); ``device``:
    ``auto`` trains on a GPU when one is visible; ``objective``: ``powerset`` (local speakers, for
    both pipelines) or ``count`` (speakers per frame only: overlap detection, for the overlap mode);
    ``speed_perturb``: each training speaker of a chunk plays at a speed drawn from ``1 ± x``
    (new voices from few speakers; validation chunks are not perturbed)."""

    section: ClassVar[str] = "segmentation_training"

    minutes: float = param(60.0, Interval(float, 0, None, "neither"))
    max_steps: int | None = param(None, Interval(int, 1, None), None)
    batch_size: int = param(32, Interval(int, 1, None))
    lr: float = param(2e-3, Interval(float, 0, None, "neither"))
    weight_decay: float = param(1e-2, Interval(float, 0, None))
    warmup_steps: int = param(100, Interval(int, 0, None))
    val_speakers: int = param(20, Interval(int, 1, None))
    val_chunks: int = param(256, Interval(int, 1, None))
    val_every: float = param(5.0, Interval(float, 0, None, "neither"))  # minutes between validations
    music_clips: int = param(120, Interval(int, 0, None))
    real_fraction: float = param(0.5, Interval(float, 0, 1))
    threads: int = param(1, Interval(int, 1, None))
    workers: int = param(0, Interval(int, 0, None))
    device: str = param("auto", DEVICE)
    seed: int = param(0, Interval(int, 0, None))
    objective: str | None = param(None, Options(("powerset", "count")), None)  # None: powerset, or init's
    speed_perturb: float = param(0.0, Interval(float, 0, 0.5, "left"))  # training speakers at 1 ± this speed


def prefetch(pool: Callable[[], Executor], task: Callable[[int], T], depth: int
             ) -> Generator[T, None, None]:
    """``task(0)``, ``task(1)``, ... in order, run on ``pool()`` ``depth`` ahead of the consumer;
    the pool is shut down when the generator is closed (on any exit, Ctrl-C included)."""
    executor = pool()
    try:
        pending = deque(executor.submit(task, i) for i in range(depth))
        for i in itertools.count(depth):
            yield pending.popleft().result()
            pending.append(executor.submit(task, i))
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class BatchMaker:
    """Training batches: ``simulated`` chunks from the simulator, then ``real`` ones from the
    RTTM-labelled recordings (if any). Picklable, so worker processes can run it."""

    sim: ChunkSimulator
    real: ReferenceChunks | None
    simulated: int
    n_real: int

    def __call__(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        wav, lab = self.sim.batch(rng, self.simulated)
        if self.n_real and self.real is not None:
            pairs = [self.real.example(rng) for _ in range(self.n_real)]
            wav = np.concatenate([wav, np.stack([p[0] for p in pairs])])
            lab = np.concatenate([lab, np.stack([p[1] for p in pairs])])
        return wav, lab


_WORKER_MAKE: BatchMaker | None = None  # set once in each simulation process


def _init_worker(make: BatchMaker) -> None:
    global _WORKER_MAKE
    _WORKER_MAKE = make


def _worker_batch(seed: list[int], i: int) -> tuple[np.ndarray, np.ndarray]:
    assert _WORKER_MAKE is not None, "initialised by _init_worker"
    return _WORKER_MAKE(np.random.default_rng([*seed, i]))


def batches_from(make: BatchMaker, seed: list[int], workers: int
                 ) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
    """Endless training batches, built ahead of the training step. ``workers`` 0: one background
    thread drawing from one generator, so the simulator (numpy and scipy release the GIL) runs on
    the second core while the network trains on the first (2-core machine: a step went from 0.71 s,
    0.26 simulation + 0.45 training, to about the training time alone). Otherwise ``workers``
    spawned processes (a fork after torch has started threads can hang), batch ``i`` drawn from
    the generator of ``seed + [i]``: the same batches whatever the number of processes."""
    if workers == 0:
        rng = np.random.default_rng(seed)
        return prefetch(partial(ThreadPoolExecutor, 1, thread_name_prefix="segmentation-batches"),
                        lambda _: make(rng), 2)
    return prefetch(partial(ProcessPoolExecutor, workers, mp_context=multiprocessing.get_context("spawn"),
                            initializer=_init_worker, initargs=(make,)),
                    partial(_worker_batch, seed), 2 * workers)


def _validation_set(sim: ChunkSimulator, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return sim.batch(np.random.default_rng(seed), n)


# A second speaker added to a frame removes a miss when the frame is overlapped and the speaker
# is right, changes a miss into a confusion when it is wrong, and adds a false alarm when the
# frame is not overlapped: the overlap threshold maximises RIGHT_SECOND * TP - FP.
RIGHT_SECOND = 0.75


def overlap_threshold(probability: np.ndarray, overlapped: np.ndarray) -> float:
    """The threshold on ``probability`` (frames) that maximises ``RIGHT_SECOND * TP - FP``
    against the 0/1 reference ``overlapped`` (the highest such threshold on ties)."""
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    gain = [RIGHT_SECOND * (overlapped & (probability > t)).sum() - (~overlapped & (probability > t)).sum()
            for t in grid]
    return float(grid[len(grid) - 1 - int(np.argmax(gain[::-1]))])


def evaluate(model: SegmentationModel, wavs: np.ndarray, labels: np.ndarray, batch_size: int = 32
             ) -> dict[str, float]:
    """Validation loss, frame metrics (speech / overlap precision and recall, frame error) and
    the overlap threshold the chunks call for (:func:`overlap_threshold`)."""
    model.net.eval()
    device = next(model.net.parameters()).device
    loss_fn = loss_function(model)
    counts, losses, probs = FrameCounts(), [], []
    with torch.inference_mode():
        for i in range(0, len(wavs), batch_size):
            logits = model.net(torch.from_numpy(wavs[i : i + batch_size]).to(device))
            y = torch.from_numpy(labels[i : i + batch_size])
            losses.append(float(loss_fn(logits, y.to(device))) * len(y))
            p = torch.softmax(logits, -1).cpu().numpy()
            probs.append(model.overlap_from(p))
            for ref, hyp in zip(y.numpy(), model.hard_from(p), strict=True):
                counts.add(ref, hyp)
    threshold = overlap_threshold(np.concatenate(probs).ravel(), labels.sum(-1).ravel() >= 2)
    metrics = counts.metrics()
    if not model.local_speakers:  # no local speakers, no frame error
        del metrics["frame_error"]
    return {"loss": round(sum(losses) / len(wavs), 4), **metrics, "overlap_threshold": threshold}


def loss_function(model: SegmentationModel) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss of the model's output: permutation-invariant powerset cross entropy, or
    the speaker-count cross entropy."""
    return pit_powerset_loss if model.local_speakers else count_loss


def _real_chunks(audio_dir: str | os.PathLike, ref: str | os.PathLike, chunk_seconds: float
                 ) -> ReferenceChunks:
    refs = read_rttm(ref)
    paths = [p for p in audio.find_audio([audio_dir]) if p.stem in refs]
    if not paths:
        raise MungError(f"{audio_dir}: no audio file whose stem is a uri of {ref}")
    return ReferenceChunks([(audio.load(p), refs[p.stem]) for p in paths], chunk_seconds)


def train_segmentation(speech_dir: str | os.PathLike, out: str | os.PathLike,
                       noise_dir: str | os.PathLike | None = None, audio_dir: str | os.PathLike | None = None,
                       ref: str | os.PathLike | None = None, config: SegmentationTrainConfig | None = None,
                       init: str | os.PathLike | None = None, force: bool = False,
                       log: Callable[[str], None] = print, progress: Callable | None = None) -> dict:
    """Train (or, from ``init``, fine-tune) a segmentation model and write the best one to ``out``.
    ``noise_dir``: audio used as music background; ``audio_dir`` + ``ref``: real recordings with
    an RTTM mixed into training. Returns the last validation metrics."""
    config = config or SegmentationTrainConfig()
    out = Path(out)
    check_writable(out, force)
    if (audio_dir is None) != (ref is None):
        raise MungError("fine-tuning needs both --audio-dir and --ref")
    before = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(speech_dir, out, noise_dir, audio_dir, ref, config, init, log, progress)
    finally:
        torch.set_num_threads(before)


def _train(speech_dir, out: Path, noise_dir, audio_dir, ref, config: SegmentationTrainConfig, init,
           log: Callable[[str], None], progress: Callable | None) -> dict:
    t0 = time.monotonic()
    device = pick_device(config.device)
    if init:
        model = load_segmentation(init)
        if not model.trainable:
            raise MungError(f"--init {init}: {model.meta.get('kind', 'this model')} cannot be fine-tuned by "
                            "mung; start from 'mung' (the model trained here) or a file")
        if config.objective not in (None, model.spec.output):
            raise MungError(f"{init}: a {model.spec.output} model cannot be fine-tuned with objective "
                            f"{config.objective}")
    else:
        model = SegmentationModel.create(SegmentationSpec.for_output(config.objective or "powerset"),
                                         config.seed)
    chunk = ChunkConfig(chunk_seconds=model.spec.chunk_seconds)
    bank = SpeechBank.from_dir(speech_dir, chunk.silence_db, chunk.fill_gap)
    train_spk, val_spk = bank.split(min(config.val_speakers, max(1, len(bank.speakers) // 5)), config.seed)
    music = load_music(noise_dir, config.music_clips, seed=config.seed)
    n_val_music = max(1, len(music) // 6) if len(music) > 1 else 0
    perturbed = replace(chunk, speed=(1 - config.speed_perturb, 1 + config.speed_perturb))
    train_sim = ChunkSimulator(bank, train_spk, music[n_val_music:] or music, perturbed)
    val_sim = ChunkSimulator(bank, val_spk, music[:n_val_music] or music, chunk)
    real = _real_chunks(audio_dir, ref, chunk.chunk_seconds) if audio_dir else None
    val_wav, val_lab = _validation_set(val_sim, config.val_chunks, config.seed + 1)
    n_real = f"{len(real.recordings)} real recordings, " if real else ""
    n_par = sum(p.numel() for p in model.net.parameters())
    log(f"{len(train_spk)} training / {len(val_spk)} validation speakers, {len(music)} music clips, "
        f"{n_real}{n_par} parameters; data ready in {time.monotonic() - t0:.0f} s")

    net = model.net.to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    prior = model.meta.get("trained", {})  # a fine-tuned model continues the step count (and data)
    prior_steps, prior_minutes = prior.get("total_steps", prior.get("steps", 0)), prior.get(
        "total_minutes", prior.get("minutes", 0.0))
    budget = config.minutes * 60
    start = last_val = time.monotonic()
    step, ema, best, metrics = 0, None, math.inf, {}
    bar = progress(total=int(budget), unit="s", desc="training") if progress else None
    k_real = int(round(config.batch_size * config.real_fraction)) if real else 0
    make = BatchMaker(train_sim, real, config.batch_size - k_real, k_real)
    batches = batches_from(make, [config.seed, 2, prior_steps], config.workers)
    train_loss = loss_function(model)
    try:
        history = []
        while True:
            elapsed = time.monotonic() - start
            frac = elapsed / budget
            if config.max_steps is not None:
                frac = max(frac, step / config.max_steps)
            done = frac >= 1
            if done or time.monotonic() - last_val >= config.val_every * 60:
                metrics = evaluate(model, val_wav, val_lab)
                history.append({"step": step, "minutes": round(elapsed / 60, 1), "train_loss": ema,
                                **metrics})
                shown = ema if ema is None else round(ema, 4)
                line = (f"step {step} ({elapsed / 60:.1f} min): train {shown}, "
                        + ", ".join(f"{k} {v}" for k, v in metrics.items()))
                (bar.write if bar else log)(line)
                if metrics["loss"] < best:
                    best = metrics["loss"]
                    extra = {"trained": {"overlap_threshold": metrics["overlap_threshold"],
                                         "steps": step, "minutes": round(elapsed / 60, 1),
                                         "total_steps": prior_steps + step,
                                         "total_minutes": round(prior_minutes + elapsed / 60, 1),
                                         "config": asdict(config), "chunks": asdict(chunk),
                                         "validation": metrics,
                                         "real_recordings": len(real.recordings) if real else 0,
                                         "init": str(init) if init else None}}
                    model.save(out, extra, force=True)
                last_val = time.monotonic()
                net.train()
                if done:
                    break
            decay = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
            lr = config.lr * min(1.0, (step + 1) / config.warmup_steps) * decay
            for group in opt.param_groups:
                group["lr"] = lr
            wav, lab = (torch.as_tensor(x).to(device, non_blocking=True) for x in next(batches))
            loss = train_loss(net(wav), lab)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            step += 1
            value = float(loss.detach())
            ema = value if ema is None else 0.98 * ema + 0.02 * value
            if bar:
                bar.n = min(int(time.monotonic() - start), int(budget))
                bar.set_postfix(step=step, loss=f"{ema:.3f}", refresh=False)
                bar.update(0)
    finally:
        batches.close()
    if bar:
        bar.close()
    log(f"best validation loss {best:.4f}; model written to {out}")
    return {**metrics, "best_loss": best, "steps": step, "history": history}
