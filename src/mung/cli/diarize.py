"""`mung diarize` (placeholder until the pipeline lands)."""

import click

from mung.cli import DefaultGroup


@click.group(cls=DefaultGroup, name="diarize")
def diarize_group() -> None:
    """Who spoke when."""
