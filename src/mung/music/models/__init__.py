"""Closed registry of music networks by name. A model is described by a JSON-able *spec*
``{"name", "kwargs", "heads": {task: n_labels}, "aux": spec + {"task"} (attention only)}`` stored
in every checkpoint, so :func:`build` can rebuild it without unpickling code."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mung.errors import MungError
from mung.music.models.attention import AttentionNet
from mung.music.models.base import Backbone, MusicNet
from mung.music.models.crnn import CRNN
from mung.music.models.melstats import MelStats
from mung.music.models.resnext import ResNeXt
from mung.music.models.rexnet import ReXNet
from mung.music.models.richstats import RichStats
from mung.music.models.speakernet import SpeakerNet
from mung.music.models.speakernet1d import SpeakerNet1D

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "speakernet": SpeakerNet,
    "speakernet1d": SpeakerNet1D,
    "crnn": CRNN,
    "rexnet": ReXNet,
    "resnext50": ResNeXt,
    "melstats": MelStats,
    "richstats": RichStats,
}
MODELS = (*BACKBONES, "attention")


def build(spec: dict) -> nn.Module:
    """Build a network from its spec (see module docstring)."""
    name, kwargs = spec["name"], dict(spec.get("kwargs", {}))
    heads = spec["heads"]
    if name == "attention":
        aux_spec = spec.get("aux")
        if not aux_spec:
            raise MungError("attention model needs a frozen auxiliary model (--aux CHECKPOINT)")
        base = kwargs.pop("base", "speakernet")
        gate = kwargs.pop("gate", "one_plus")
        net = build({"name": base, "kwargs": kwargs, "heads": heads})
        return AttentionNet(net, build(aux_spec), aux_spec["task"], gate)
    if name not in BACKBONES:
        raise MungError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    dropout = kwargs.pop("dropout", 0.3)
    try:
        backbone = BACKBONES[name](**kwargs)
    except (TypeError, ValueError) as exc:
        raise MungError(f"model {name}: bad settings {kwargs} ({exc})") from None
    return MusicNet(backbone, heads, dropout)


def n_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
