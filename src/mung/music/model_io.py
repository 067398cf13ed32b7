"""Music models on disk: the shared :mod:`mung.checkpoint` format with the model's spec, task,
vocabularies, front-end and crop length in its description; the shipped default models."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from mung import checkpoint
from mung.errors import MungError
from mung.music.features import MelConfig
from mung.music.models import build

FORMAT_VERSION = 1
CHECKPOINT_NAME = "model.safetensors"
WHAT = "mung music checkpoint"


@dataclass
class MusicModel:
    """A loaded model and its metadata (task, vocabularies, front-end, crop length, metrics)."""

    path: Path
    model: torch.nn.Module
    meta: dict

    @property
    def tasks(self) -> list[str]:
        return ["station", "mood"] if self.meta["task"] == "multi" else [self.meta["task"]]

    @property
    def mel(self) -> MelConfig:
        return MelConfig(**self.meta["mel"])


def save_music_model(path: os.PathLike, model: torch.nn.Module, meta: dict, force: bool = False,
                     half: bool = False) -> Path:
    """Write weights + metadata in the :mod:`mung.checkpoint` format atomically."""
    state = checkpoint.state_tensors(model)
    if half:  # weights only: batch-norm statistics keep float32 range
        state = checkpoint.half(state, {k for k, _ in model.named_parameters()})
    return checkpoint.save(path, state, {**meta, "format_version": FORMAT_VERSION}, force)


def resolve(path: os.PathLike) -> Path:
    """A checkpoint file, or a run folder holding ``model.safetensors``."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def read_meta(path: os.PathLike) -> dict:
    """A checkpoint's JSON metadata, without loading the weights."""
    path = resolve(path)
    meta = checkpoint.read_meta(path, WHAT)
    if "spec" not in meta:
        raise MungError(f"{path}: checkpoint has no model description; not a {WHAT}")
    return meta


_BLOCK_KEYS = {"body.0": "conv1", "body.1": "bn1", "body.3": "conv2", "body.4": "bn2", "body.5": "se",
               "short": "downsample"}


def upgrade_keys(state: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights saved before the SE block and attentive pooling moved to :mod:`mung.nn`, renamed to
    today's keys (exactly the same function): ``body.{0,1,3,4,5}`` / ``short`` → ``conv1, bn1,
    conv2, bn2, se`` / ``downsample``; pooling ``att.0`` → ``sap.linear`` and ``att.2.weight`` →
    ``sap.attention`` (transposed; its bias is dropped: a constant before a softmax changes nothing)."""
    if all(k in ref for k in state):
        return state
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        for old, repl in _BLOCK_KEYS.items():
            new = new.replace(f".{old}.", f".{repl}.")
        prefix, _, rest = new.partition("att.")
        if rest.startswith("0."):
            new = f"{prefix}sap.linear.{rest[2:]}"
        elif rest == "2.weight":
            new, value = f"{prefix}sap.attention", value.T
        elif rest == "2.bias":
            continue
        out[new] = value
    return out


def load_music_model(path: os.PathLike, device: str = "cpu") -> MusicModel:
    """Rebuild the network from its metadata and load the weights (no code is unpickled)."""
    path = resolve(path)
    meta = read_meta(path)
    state, _ = checkpoint.load(path, WHAT)
    model = build(meta["spec"])
    ref = model.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref else v for k, v in upgrade_keys(state, ref).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise MungError(f"{path}: weights do not match the described model ({exc})") from None
    return MusicModel(path, model.to(device).eval(), meta)


def export(run: os.PathLike, out: os.PathLike, half: bool = True, force: bool = False) -> Path:
    """Copy a trained checkpoint to ``out`` (fp16 weights by default), e.g. into the package's
    ``mung/music/weights/`` folder to make it (part of) the shipped default."""
    ck = load_music_model(run)
    return save_music_model(out, ck.model, {**ck.meta, "exported_from": str(ck.path)}, force, half)


def default_checkpoints() -> list[Path]:
    """The shipped default model(s) inside the package."""
    folder = resources.files("mung.music") / "weights"
    found = sorted(Path(str(p)) for p in folder.iterdir() if str(p).endswith(".safetensors"))
    if not found:
        raise MungError("no shipped music model found in the package (mung/music/weights)")
    return found
