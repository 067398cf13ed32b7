"""torch helpers shared by the speaker, diarization and music code: device choice, thread
control, parameter counting, ONNX Runtime sessions of torch modules."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mung.errors import MungError
from mung.outputs import write_with


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


def cache_dir() -> Path:
    """Where mung keeps files it derives from installed packages (``$MUNG_CACHE``, else
    ``$XDG_CACHE_HOME/mung``, else ``~/.cache/mung``, else a folder in the temporary directory)."""
    if os.environ.get("MUNG_CACHE"):
        return Path(os.environ["MUNG_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "mung"
    try:
        return Path.home() / ".cache" / "mung"
    except RuntimeError:  # no home directory (some service accounts)
        return Path(tempfile.gettempdir()) / "mung-cache"


def onnx_session(build: Callable[[], nn.Module], example: torch.Tensor, key: str, threads: int = 1
                 ) -> Any:
    """An ONNX Runtime CPU session computing the module ``build()`` makes (input ``x``, output
    ``y``; axes 0 and 1 of the input dynamic), or ``None`` when ``onnx`` or ``onnxruntime`` is
    missing. The exported graph is kept as ``cache_dir()/key.onnx`` (written atomically), so
    ``build`` runs and the module is exported (seconds) only the first time; it is held in
    memory when that folder is not writable. Conv-heavy networks run faster in ONNX Runtime than
    in eager torch on one CPU thread (CAM++: 32 → 21 ms per 1.5-s window)."""
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
        return None
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # one allocation plan per input shape is kept otherwise: with the many span lengths of a
    # long recording that grew a 1-hour run in the local-speaker mode from 926 to 1 075 MB
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting
    path = cache_dir() / f"{key}.onnx"
    if path.exists():
        try:
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001  (a damaged cache file: export again)
            pass
    graph = _export(build(), example)
    try:
        write_with(path, lambda tmp: tmp.write_bytes(graph), force=True)
    except MungError:
        pass  # a read-only or full cache folder: the graph stays in memory
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _export(module: nn.Module, example: torch.Tensor) -> bytes:
    """``module`` as an ONNX graph (opset 17; batch and time axes of the input dynamic)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shape-dependent branches
        torch.onnx.export(module.eval(), (example,), buffer, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch", 1: "time"}}, opset_version=17, dynamo=False)
    return buffer.getvalue()
