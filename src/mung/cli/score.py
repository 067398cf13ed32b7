"""`mung score` and `mung tune` (placeholders)."""

import click


@click.command()
def score() -> None:
    """Score diarization."""


@click.command()
def tune() -> None:
    """Tune diarization."""
