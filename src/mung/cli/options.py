"""Options shared by the training commands: ``--config`` / ``--show-config``, and click choices
read from the config constraints (so the allowed values are stated once, beside the field)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

T = TypeVar("T")


class LazyChoice(click.Choice):
    """A ``click.Choice`` whose values come from ``load()`` when first needed (the registries
    fill as their modules are imported; importing them all at start-up would cost seconds)."""

    def __init__(self, load: Callable[[], list[str]]) -> None:
        self._load, self._values = load, None
        super().__init__([], case_sensitive=True)

    @property
    def choices(self):  # type: ignore[override]
        if self._values is None:
            self._values = list(self._load())
        return self._values

    @choices.setter
    def choices(self, _value) -> None:  # click's __init__ assigns it
        pass


def typed_options(spec: dict[str, tuple[type, str]]) -> Callable[[Callable], Callable]:
    """One ``--NAME`` option per entry of ``spec`` (``NAME: (type, help)``), ``None`` when not given
    so that the config file's value (or the default) stays."""

    def apply(f: Callable) -> Callable:
        for name, (kind, text) in reversed(spec.items()):
            f = click.option(f"--{name}", type=kind, help=text)(f)
        return f

    return apply


def config_options(f: Callable) -> Callable:
    """``--config FILE`` and ``--show-config`` on a command."""
    f = click.option("--show-config", is_flag=True, help="Print the resolved config as YAML and exit.")(f)
    return click.option("--config", "config_file", type=click.Path(),
                        help="YAML config (keys as printed by --show-config); options override it.")(f)


def resolve_config(cls: type[T], config_file: str | None, overrides: dict[str, Any],
                   show_config: bool) -> T | None:
    """``cls`` from ``config_file`` with the given options applied (``None`` = not given); with
    ``show_config`` it is printed as YAML and ``None`` returned (the command then stops)."""
    from mung.config import dump, load

    config = load(cls, config_file, overrides)
    if show_config:
        click.echo(dump(config), nl=False)
        return None
    return config
