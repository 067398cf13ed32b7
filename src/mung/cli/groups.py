"""Click group classes shared by the command modules."""

from __future__ import annotations

import copy

import click


class DefaultGroup(click.Group):
    """A group that runs ``default_command`` when the first argument is not a sub-command
    (``mung diarize a.wav`` and ``mung diarize simulate ...`` both work)."""

    def __init__(self, *args, default_command: str = "run", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:  # `run` itself is a sub-command, not an input
            if not (args and args[0] in ("--help", "-h") and len(args) == 1):
                args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def hidden_alias(command: click.Command, name: str) -> click.Command:
    """``command`` under another ``name``, left out of ``--help`` (an old spelling kept working)."""
    alias = copy.copy(command)
    alias.name, alias.hidden = name, True
    return alias
