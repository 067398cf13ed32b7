"""Nested dataclass configs ⇄ plain dicts / YAML, with constraints stated once beside each field.

A field's allowed values are declared where the field is (``threshold: float = param(0.7,
Interval(float, 0, 2))``), in the manner of scikit-learn's ``_parameter_constraints``; one
function checks them when a config is built, loaded (:func:`from_dict`, :func:`load_yaml`) or
overridden (:func:`merge`), and every violation reads the same way::

    The 'clustering.threshold' parameter must be a float in [0, 2]. Got 'abc' instead.

Rules that tie two fields together live in the config's ``check(where)`` method. The CLI derives
its choices from the same constraints (:func:`choices`)."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_type_hints

import yaml

from mung import registry
from mung.errors import MungError

T = TypeVar("T")


class Constraint:
    """One way a value may be valid; :meth:`describe` completes "must be ..."."""

    def ok(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def _is_number(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, Integral if kind is int else Real)


def _fmt(x: float | None, inf: str) -> str:
    return inf if x is None else f"{x:g}"


class Interval(Constraint):
    """A number of ``kind`` (``int`` or ``float``; a float field accepts ints) between ``low`` and
    ``high`` (``None`` = unbounded); ``closed`` is ``both``, ``left``, ``right`` or ``neither``."""

    def __init__(self, kind: type, low: float | None, high: float | None, closed: str = "both") -> None:
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def ok(self, value: Any) -> bool:
        if not _is_number(value, self.kind) or (isinstance(value, float) and math.isnan(value)):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return self.high is None or not (value > self.high or (value == self.high and not right))

    def describe(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        name = "an int" if self.kind is int else "a float"
        return f"{name} in {left}{_fmt(self.low, '-inf')}, {_fmt(self.high, 'inf')}{right}"


class Options(Constraint):
    """One of fixed ``values``, or of the names registered under ``kind`` (read when checked, so
    a newly registered entry is allowed at once)."""

    def __init__(self, values: Iterable[Any] = (), kind: str | None = None) -> None:
        self._values, self.kind = tuple(values), kind

    @property
    def values(self) -> tuple[Any, ...]:
        return tuple(registry.names(self.kind)) if self.kind else self._values

    def ok(self, value: Any) -> bool:
        return not isinstance(value, bool) and value in self.values

    def describe(self) -> str:
        vals = self.values
        what = "a str" if all(isinstance(v, str) for v in vals) else "an int" if all(
            isinstance(v, int) for v in vals) else "a value"
        return f"{what} among {{{', '.join(repr(v) for v in vals)}}}"


class Spec(Constraint):
    """A ``name[:argument]`` string whose name is registered under ``kind`` (or is in ``extra``);
    ``needs_arg`` lists the names that must have an argument."""

    def __init__(self, kind: str, extra: Iterable[str] = (), needs_arg: Iterable[str] = ()) -> None:
        self.kind, self.extra, self.needs_arg = kind, tuple(extra), tuple(needs_arg)

    def ok(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        name, _, arg = value.partition(":")
        name = name.lower()
        return (name in self.extra or name in registry.names(self.kind)) and (
            name not in self.needs_arg or bool(arg))

    def describe(self) -> str:
        names = [*self.extra, *(f"{n}:PATH" if n in self.needs_arg else n for n in registry.names(self.kind))]
        return f"a str among {{{', '.join(repr(n) for n in names)}}}"


class Type(Constraint):
    """An instance of ``kind`` (``bool`` is not taken for ``int``)."""

    def __init__(self, kind: type | tuple[type, ...]) -> None:
        self.kind = kind if isinstance(kind, tuple) else (kind,)

    def ok(self, value: Any) -> bool:
        if isinstance(value, bool) and bool not in self.kind:
            return False
        return isinstance(value, self.kind)

    def describe(self) -> str:
        names = [k.__name__ for k in self.kind]
        article = "an" if names[0][0] in "aeiou" else "a"
        return f"{article} {' or '.join(names)}"


class Range(Constraint):
    """A pair ``(low, high)`` of numbers with ``low <= high``, both satisfying ``bounds``."""

    def __init__(self, bounds: Interval) -> None:
        self.bounds = bounds

    def ok(self, value: Any) -> bool:
        return (isinstance(value, (list, tuple)) and len(value) == 2
                and all(self.bounds.ok(v) for v in value) and value[0] <= value[1])

    def describe(self) -> str:
        return f"a pair (low, high) with low <= high, each {self.bounds.describe()}"


class Check(Constraint):
    """Any predicate with its description (for the rare rule the others cannot state)."""

    def __init__(self, predicate: Callable[[Any], bool], description: str) -> None:
        self.predicate, self.description = predicate, description

    def ok(self, value: Any) -> bool:
        return bool(self.predicate(value))

    def describe(self) -> str:
        return self.description


NONE = None  # put ``None`` among a field's constraints to allow it

# A torch device name (whether it exists on this machine is checked when a model is loaded:
# mung.torchutil.pick_device).
DEVICE = Check(lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None,
               "one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'")


def param(default: Any = dataclasses.MISSING, *constraints: Constraint | None,
          factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with its constraints (a value must satisfy one of them)."""
    meta = {"constraints": constraints}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def constraints(cls: type, name: str) -> tuple[Constraint | None, ...]:
    """The constraints declared for field ``name`` of the dataclass ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return tuple(f.metadata.get("constraints", ()))
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def choices(cls: type, name: str) -> list[str]:
    """The allowed values of an option-valued field, as strings (for ``click.Choice``)."""
    for c in constraints(cls, name):
        if isinstance(c, Options):
            return [str(v) for v in c.values]
    raise KeyError(f"{cls.__name__}.{name} has no fixed options")


def check_value(value: Any, rules: Iterable[Constraint | None], where: str) -> None:
    """Raise the one-line :class:`MungError` unless ``value`` satisfies one of ``rules``."""
    rules = tuple(rules)
    if not rules or any(value is None if r is None else r.ok(value) for r in rules):
        return
    text = " or ".join("None" if r is None else r.describe() for r in rules)
    raise MungError(f"The '{where}' parameter must be {text}. Got {value!r} instead.")


def at_least(config: Any, where: str, large: str, small: str) -> None:
    """Cross-field rule: field ``large`` must not be below field ``small`` (``None`` = no bound)."""
    hi, lo = getattr(config, large), getattr(config, small)
    if hi is not None and lo is not None and hi < lo:
        raise MungError(f"The '{_key(where, large)}' parameter must be at least '{_key(where, small)}' "
                        f"({lo!r}). Got {hi!r} instead.")


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def validate(config: Any, where: str | None = None) -> None:
    """Check every field of ``config`` (nested configs too) against its constraints, then the
    config's own cross-field ``check(where)`` if it has one."""
    where = getattr(config, "section", "config") if where is None else where
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        check_value(value, f.metadata.get("constraints", ()), _key(where, f.name))
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value, _key(where, f.name))
    if hasattr(config, "check"):
        config.check(where)


class Config:
    """Base of mung's config dataclasses: validated on construction and by ``validate()``."""

    section: ClassVar[str] = "config"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, where: str | None = None) -> None:
        validate(self, self.section if where is None else where)


def to_dict(config: Any) -> dict:
    """A dataclass config as a plain (YAML-safe) dict."""
    return _plain(dataclasses.asdict(config))


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def from_dict(cls: type[T], data: dict | None, where: str | None = None) -> T:
    """Build ``cls`` from ``data``; nested dataclasses recurse. Unknown keys are an error that
    lists the valid keys; values are checked against the fields' constraints (the message names
    the dotted key)."""
    where = getattr(cls, "section", "config") if where is None else where
    data = data or {}
    if not isinstance(data, dict):
        raise MungError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MungError(
            f"{where or 'config'}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}"
        )
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value, _key(where, name))
            continue
        check_value(value, fields[name].metadata.get("constraints", ()), _key(where, name))
        if isinstance(value, list) and "tuple" in str(hint):
            value = tuple(value)
        kwargs[name] = value
    config = cls(**kwargs)
    validate(config, where)
    return config


def load_yaml(cls: type[T], path: str | os.PathLike) -> T:
    """Read a YAML config file into ``cls``."""
    path = Path(path)
    if not path.is_file():
        raise MungError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MungError(f"{path}: not valid YAML ({exc})") from None
    try:
        return from_dict(cls, data)
    except MungError as exc:
        raise MungError(f"{path}: {exc}") from None


def load(cls: type[T], path: str | os.PathLike | None, overrides: dict[str, Any] | None = None) -> T:
    """``cls`` from the YAML at ``path`` (defaults when ``None``) with dotted ``overrides``."""
    config = load_yaml(cls, path) if path else cls()
    return merge(config, overrides or {})


def dump(config: Any) -> str:
    """The config as YAML (what ``--show-config`` prints and ``--config`` reads back)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


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
