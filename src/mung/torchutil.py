"""torch helpers shared by the speaker, diarization and music code: device choice, thread
control, parameter counting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from mung.errors import MungError


def pick_device(name: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; a requested but missing GPU is a
    user error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MungError("--device cuda requested but no CUDA GPU is available")
    return name


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` CPU threads inside the block. The LSTM's small per-step products gain
    little from a second thread and slow down 5-20x when the cores are busy (measured), so
    the encoders default to one thread; parallelism comes from worker processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
