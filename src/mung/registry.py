"""One registry for every pluggable piece (speech detectors, speaker encoders, clustering methods,
music models, losses), in the shape of timm's model registry: ``@register(kind, name)`` on a small
class or function, ``create(kind, name, **kwargs)`` to build one, ``names(kind)`` to list them.

Entries of one kind share one call signature (stated where the kind is defined), so a new method
is one decorated function in its own module and appears in the config's allowed values, the CLI's
choices and the parametrised registry tests without further edits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mung.errors import MungError

F = TypeVar("F", bound=Callable[..., Any])
_ENTRIES: dict[str, dict[str, Callable[..., Any]]] = {}


def register(kind: str, name: str) -> Callable[[F], F]:
    """Decorator: add ``fn`` to ``kind`` under ``name`` (a second entry of the same name is a
    programming error)."""

    def add(fn: F) -> F:
        entries = _ENTRIES.setdefault(kind, {})
        if name in entries and entries[name] is not fn:
            raise ValueError(f"{kind} {name!r} is registered twice")
        entries[name] = fn
        return fn

    return add


def names(kind: str) -> list[str]:
    """Registered names of ``kind``, sorted."""
    return sorted(_ENTRIES.get(kind, {}))


def get(kind: str, name: str) -> Callable[..., Any]:
    """The entry itself; an unknown name is a user error listing the known ones."""
    entries = _ENTRIES.get(kind, {})
    if name not in entries:
        raise MungError(f"unknown {kind} {name!r}; choose one of: {', '.join(names(kind))}")
    return entries[name]


def create(kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call the ``kind`` entry ``name`` with the kind's arguments."""
    return get(kind, name)(*args, **kwargs)
