"""Nested dataclass configs ⇄ plain dicts / YAML, with scikit-learn-style validation messages."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

import yaml

from mung.errors import MungError

T = TypeVar("T")


def to_dict(config: Any) -> dict:
    """A dataclass config as a plain (YAML-safe) dict."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict | None, where: str = "config") -> T:
    """Build ``cls`` from ``data``; nested dataclasses recurse. Unknown keys are an error that
    lists the valid keys."""
    data = data or {}
    if not isinstance(data, dict):
        raise MungError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MungError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}"
        )
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, f"{where}.{name}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def load_yaml(cls: type[T], path: str | os.PathLike) -> T:
    """Read a YAML config file into ``cls``."""
    path = Path(path)
    if not path.is_file():
        raise MungError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MungError(f"{path}: not valid YAML ({exc})") from None
    return from_dict(cls, data, str(path))


def merge(config: T, overrides: dict[str, Any]) -> T:
    """Copy of ``config`` with dotted-key ``overrides`` (``{"vad.mode": 3}``) applied; ``None``
    values are skipped (flags the user did not give)."""
    data = to_dict(config)
    for key, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return from_dict(type(config), data)
