"""Music networks, one file each, registered by name (``names("music_model")``). A model is
described by a JSON-able *spec* stored in every checkpoint, so :func:`build` rebuilds it without
unpickling code. A new network is a file here with ``@register("music_model", NAME)`` on a
function ``fn(kwargs, heads, aux) -> nn.Module`` (usually :func:`backbone_model` on a
:class:`Backbone`), imported below."""

from __future__ import annotations

from mung.music.models import (
    attention,
    crnn,
    melstats,
    randconv,
    resnext,
    rexnet,
    richstats,
    speakernet,
    speakernet1d,
)
from mung.music.models.base import Backbone, MusicNet, backbone_model, build

__all__ = ["Backbone", "MusicNet", "attention", "backbone_model", "build", "crnn", "melstats", "randconv",
           "resnext", "rexnet", "richstats", "speakernet", "speakernet1d"]
