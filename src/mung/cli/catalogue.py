"""Options shared by the commands that run at catalogue scale (``--engine``, ``--address``,
``--dataset``) and the one function that runs such a job and sets the exit code."""

from __future__ import annotations

from collections.abc import Callable

import click

from mung.errors import MungError

ENGINE_HELP = "local: worker processes on this machine; ray: Ray actors (pip install 'mung[ray]')."
ADDRESS_HELP = "Ray cluster to join (HOST:6379, ray://HOST:10001, auto); none = a local Ray."
DATASET_HELP = ("Write a Parquet dataset here (part files, failures table; a re-run does only "
                "inputs not yet done). Inputs may be folders, globs or manifests (.txt/.csv/.parquet).")


def catalogue_options(f: Callable) -> Callable:
    f = click.option("--dataset", type=click.Path(), help=DATASET_HELP)(f)
    f = click.option("--address", default=None, help=ADDRESS_HELP)(f)
    return click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                        show_default=True, help=ENGINE_HELP)(f)


def wants_dataset(engine: str, address: str | None, dataset: str | None) -> bool:
    """True when the job writes a dataset (``--address`` needs ``--engine ray``)."""
    if address and engine != "ray":
        raise MungError("--address is for --engine ray")
    return bool(dataset)


def run_dataset_job(task, inputs, dataset: str, engine: str, address: str | None, jobs: int,
                    force: bool) -> None:
    """Run ``task`` into ``dataset``, print the summary, exit 1 if anything failed."""
    from mung.dataset import run_table

    report = run_table(task, list(inputs), dataset, engine=engine, address=address, jobs=jobs, force=force)
    click.echo(f"{report.summary()}; dataset {dataset}", err=True)
    if report.batch.interrupted:
        raise SystemExit(130)
    if not report.ok:
        raise SystemExit(1)
