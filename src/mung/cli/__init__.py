"""Command line: ``mung diarize | score | tune | speaker | music``. Parsing only; work lives in
the library modules that share the command names."""

from __future__ import annotations

import sys

import click

from mung.errors import MungError


class DefaultGroup(click.Group):
    """A group that runs ``default_command`` when the first argument is not a sub-command
    (``mung diarize a.wav`` and ``mung diarize simulate ...`` both work)."""

    def __init__(self, *args, default_command: str = "run", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands or args[0] == self.default_command:
            if not (args and args[0] in ("--help", "-h") and len(args) == 1):
                args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="mung")
def cli(debug: bool) -> None:
    """mung — offline diarization, speaker embeddings and music tagging."""


def _register() -> None:
    from mung.cli import diarize, music, score, speaker, view

    cli.add_command(diarize.diarize_group)
    cli.add_command(score.score)
    cli.add_command(score.tune)
    cli.add_command(speaker.speaker)
    cli.add_command(music.music)
    cli.add_command(view.view)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one ``error:`` line and exit code 1 (traceback with --debug)."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        cli.main(args=argv, prog_name="mung", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except MungError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: no traceback without --debug
        if debug:
            raise
        click.echo(f"error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
        sys.exit(1)
