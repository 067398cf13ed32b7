"""What every batch command prints at the end."""

from __future__ import annotations

import click

from mung.batch import BatchReport


def finish_batch(report: BatchReport) -> None:
    """Print a batch's summary (stderr) and set the exit code: 1 if anything failed, 130 if
    interrupted (finished outputs are kept either way)."""
    if report.interrupted or report.failed or report.skipped or len(report.done) > 1:
        click.echo(report.summary(), err=True)
    if report.interrupted:
        raise SystemExit(130)
    if not report.ok:
        raise SystemExit(1)
