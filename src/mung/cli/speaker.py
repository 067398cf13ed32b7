"""`mung speaker` commands."""

import click


@click.group()
def speaker() -> None:
    """speaker commands."""
