"""`mung music` commands."""

import click


@click.group()
def music() -> None:
    """music commands."""
