"""The one file format for every model mung saves: safetensors weights plus a JSON description
under the ``mung`` metadata key. Loading never unpickles code, the description alone rebuilds the
network, and :func:`read_meta` reads it without touching the weights."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from mung.errors import MungError
from mung.outputs import write_with

META_KEY = "mung"


def state_tensors(module: torch.nn.Module, prefix: str = "") -> dict[str, torch.Tensor]:
    """``module``'s state dict as contiguous CPU tensors, keys optionally prefixed."""
    return {f"{prefix}{k}": v.detach().cpu().clone().contiguous() for k, v in module.state_dict().items()}


def half(tensors: dict[str, torch.Tensor], keys: set[str] | None = None) -> dict[str, torch.Tensor]:
    """Floating-point tensors (only ``keys`` when given) stored as float16: half the file size."""
    return {k: v.half() if v.is_floating_point() and (keys is None or k in keys) else v
            for k, v in tensors.items()}


def save(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
         force: bool = False) -> Path:
    """Write ``tensors`` and the JSON-able ``meta`` to ``path`` atomically."""
    text = json.dumps(meta, default=str)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    return write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata={META_KEY: text}), force)


def read_meta(path: str | os.PathLike, what: str = "mung model") -> dict[str, Any]:
    """The JSON description of the checkpoint at ``path`` (a one-line error names ``what`` the
    file should have been)."""
    path = Path(path)
    if not path.is_file():
        raise MungError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "null"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise MungError(f"{path}: not a readable safetensors file ({exc}); not a {what}") from None
    if not isinstance(meta, dict):
        raise MungError(f"{path}: safetensors file has no mung metadata; not a {what}")
    return meta


def load(path: str | os.PathLike, what: str = "mung model") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights and description of the checkpoint at ``path``."""
    meta = read_meta(path, what)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise MungError(f"{path}: not a readable safetensors file ({exc}); not a {what}") from None
    return tensors, meta


def strip_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors whose key starts with ``prefix``, without it."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
