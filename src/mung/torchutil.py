"""torch helpers shared by the speaker, diarization and music code: device choice, thread
control, parameter counting."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from mung.errors import MungError


def pick_device(name: str) -> str:
    """``auto`` → ``cuda`` when a GPU is visible, else ``cpu``; an unknown name or a device this
    machine lacks is a one-line user error (not torch's traceback)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", str(name)):
        raise MungError(f"device: one of auto, cpu, cuda, cuda:N, mps; got {name!r}")
    if name.startswith("cuda"):
        if torch.version.cuda is None:
            raise MungError(f"device {name!r}: this torch build ({torch.__version__}) has no CUDA support; "
                            "use --device cpu")
        count = torch.cuda.device_count()
        index = int(name.partition(":")[2] or 0)
        if index >= count:
            raise MungError(f"device {name!r}: {count} CUDA GPU(s) visible; use --device cpu"
                            + (f" or cuda:0..{count - 1}" if count else ""))
    if name == "mps" and not torch.backends.mps.is_available():
        raise MungError("device 'mps': not available on this machine; use --device cpu")
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
