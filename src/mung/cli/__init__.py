"""Command line: ``mung diarize | speaker | music``. Parsing and printing only; the work lives in
the library modules that share the command names."""

from __future__ import annotations

import os
import sys

import click

from mung.batch import DEBUG_ENV
from mung.cli import diarize, music, score, speaker, view
from mung.cli.groups import hidden_alias
from mung.errors import MungError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="mung")
def cli(debug: bool) -> None:
    """mung — offline diarization, speaker embeddings and music tagging."""


diarize.diarize_group.add_command(score.score)
diarize.diarize_group.add_command(score.tune)
cli.add_command(diarize.diarize_group)
cli.add_command(speaker.speaker)
cli.add_command(music.music)
cli.add_command(view.view)
cli.add_command(hidden_alias(score.score, "score"))  # now `mung diarize score`
cli.add_command(hidden_alias(score.tune, "tune"))  # now `mung diarize tune`


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one ``error:`` line and exit code 1 (traceback with --debug)."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    if debug:  # batch workers (other processes) read it too
        os.environ[DEBUG_ENV] = "1"
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
