"""Data-parallel training (PyTorch DDP, Li et al. 2020, "PyTorch Distributed"): one process per
device, gloo on CPU and NCCL on GPUs, launched by ``--nproc N`` (spawned here) or by ``torchrun``
(which sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``).

The rule every trainer follows: the **global batch is fixed** (the ``--batch-size`` /
``--speakers-per-batch`` the user gives) and split across the N processes, and the **learning rate
is unchanged** — so N processes compute the same gradient as one process (Goyal et al. 2017's
linear-scaling rule is not needed: the batch does not grow with N). To make that exact, batch
norm statistics are synchronised over the global batch (:func:`sync_batch_norm`), each process's
loss is weighted by its share of the batch (:func:`shard_weight`), and every process draws the
same random numbers and keeps its own rows. Only rank 0 writes files."""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn  # differentiable collectives
import torch.multiprocessing as mp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mung.errors import MungError

# The differentiable collectives below are torch's documented autograd-aware ones; the replacement
# their deprecation warning names (torch.distributed._functional_collectives) is a private module.
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.\w+ is deprecated",
                        category=FutureWarning)


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """True in the one process that writes checkpoints, logs and progress bars (also before
    and after the group, from torchrun's ``RANK``)."""
    return (dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))) == 0


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ and not dist.is_initialized()


def local_device(device: str) -> str:
    """``cuda`` → this process's GPU (``LOCAL_RANK``); CPU stays CPU."""
    if device.startswith("cuda") and world_size() > 1:
        index = int(os.environ.get("LOCAL_RANK", rank())) % torch.cuda.device_count()
        torch.cuda.set_device(index)
        return f"cuda:{index}"
    return device


@contextmanager
def process_group(device: str) -> Iterator[None]:
    """Join the group described by the environment (torchrun or :func:`spawn`) for the block;
    a no-op in a single process."""
    if not launched_by_torchrun():
        yield
        return
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(index: int, nproc: int, port: int, fn: Callable, args: tuple, folder: str) -> None:
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index), WORLD_SIZE=str(nproc),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    try:
        result = fn(*args)
        if index == 0:
            with open(os.path.join(folder, "result.pkl"), "wb") as f:
                pickle.dump(result, f)
    except MungError as exc:
        Path(folder, f"error-{index}").write_text(str(exc))
        raise SystemExit(1) from None
    except Exception:
        Path(folder, f"crash-{index}").write_text(traceback.format_exc())
        raise SystemExit(1) from None


def spawn(fn: Callable[..., Any], args: tuple, nproc: int) -> Any:
    """Run ``fn(*args)`` in ``nproc`` processes on this machine (a fresh port; gloo or NCCL as
    ``fn``'s device says) and return rank 0's result; a :class:`MungError` in any process is
    re-raised here as one line."""
    if nproc < 1:
        raise MungError(f"--nproc must be at least 1, got {nproc}")
    if nproc == 1 or launched_by_torchrun():
        return fn(*args)
    with tempfile.TemporaryDirectory(prefix="mung-ddp-") as folder:
        try:
            mp.start_processes(_entry, args=(nproc, _free_port(), fn, args, folder), nprocs=nproc,
                               join=True, start_method="spawn")
        except mp.ProcessExitedException:
            pass  # the reason is in the folder
        found = sorted(Path(folder).iterdir())
        for p in found:
            if p.name.startswith("error-"):
                raise MungError(p.read_text())
        for p in found:
            if p.name.startswith("crash-"):
                raise RuntimeError(f"training process {p.name[6:]} crashed:\n{p.read_text()}")
        result = Path(folder, "result.pkl")
        if not result.exists():
            raise MungError(f"training with --nproc {nproc}: a process died without a message")
        with open(result, "rb") as f:
            return pickle.load(f)


def shard(n: int, r: int | None = None, w: int | None = None) -> slice:
    """Process ``r``'s (default: this one's) contiguous rows of a global batch of ``n`` split over
    ``w`` processes (sizes differ by at most 1)."""
    w = world_size() if w is None else w
    r = rank() if r is None else r
    bounds = np.linspace(0, n, w + 1).round().astype(int)
    return slice(int(bounds[r]), int(bounds[r + 1]))


def shard_weight(n_local: int, n_global: int) -> float:
    """Factor for this process's mean loss so that DDP's gradient average equals the gradient of
    the global-batch mean loss (local batches may differ by one row)."""
    return n_local * world_size() / max(n_global, 1)


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every process's rows in rank order, gradients flowing back to each owner
    (for losses whose negatives are the whole batch, e.g. angular prototypical)."""
    if world_size() == 1:
        return x
    sizes = torch.tensor([x.shape[0]], device=x.device)
    all_sizes = [torch.zeros_like(sizes) for _ in range(world_size())]
    dist.all_gather(all_sizes, sizes)
    most = int(max(s.item() for s in all_sizes))
    pad = torch.cat([x, x.new_zeros((most - x.shape[0], *x.shape[1:]))]) if x.shape[0] < most else x
    parts = dist_nn.all_gather(pad)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, all_sizes, strict=True)])


def mean_over_processes(values: Sequence[float], weights: Sequence[float] | None = None) -> list[float]:
    """All-reduce of per-process metrics: their (weighted) mean, the same in every process."""
    if world_size() == 1:
        return list(values)
    w = torch.tensor(list(weights) if weights is not None else [1.0] * len(values), dtype=torch.float64)
    t = torch.cat([torch.tensor(list(values), dtype=torch.float64) * w, w])
    dist.all_reduce(t)
    n = len(values)
    return (t[:n] / t[n:].clamp_min(1e-12)).tolist()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


class GlobalBatchNorm(_BatchNorm):
    """Batch norm whose training statistics are those of the global batch: per-channel sum,
    sum of squares and count are all-reduced (with gradients) before normalising. Same
    parameters and buffers as the layer it replaces, so checkpoints do not change. Works with
    gloo on CPU, where ``torch.nn.SyncBatchNorm`` does not."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        c = x.shape[1]
        shape = [1, c] + [1] * (x.dim() - 2)
        sums = dist_nn.all_reduce(torch.cat([x.sum(dims), x.new_full((1,), x.numel() / c)]))
        n = sums[-1]
        mean = sums[:c] / n
        var = dist_nn.all_reduce(((x - mean.view(shape)) ** 2).sum(dims)) / n  # two passes: exact
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp_min(1))
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batch_norm(module: nn.Module, device: str) -> nn.Module:
    """Replace every batch norm with one over the global batch (``torch.nn.SyncBatchNorm`` on
    GPUs, :class:`GlobalBatchNorm` on CPU); unchanged in a single process."""
    if world_size() == 1:
        return module
    if device.startswith("cuda"):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and not isinstance(child, GlobalBatchNorm):
            new = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                  child.track_running_stats)
            new.load_state_dict(child.state_dict())
            new.to(next(iter(child.buffers()), torch.zeros(())).device)
            setattr(module, name, new)
        else:
            sync_batch_norm(child, device)
    return module


def reseed(seed: int) -> None:
    """Different torch random streams per process (dropout, mixup pairs) after the model is
    built; rank 0 keeps the single-process stream. Dropout masks are therefore drawn per
    process: with dropout, N processes equal one only in distribution, not bit for bit."""
    if rank() > 0:
        torch.manual_seed(seed + 1_000_003 * rank())


def wrap(module: nn.Module, device: str) -> nn.Module:
    """``module`` in DistributedDataParallel (a no-op in a single process); frozen parameters
    (an attention model's auxiliary network) are left out by DDP itself."""
    if world_size() == 1 or not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)
