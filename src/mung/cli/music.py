"""`mung music` commands: featurize, train, tag, evaluate, ablate. Parsing only; the work lives in
:mod:`mung.music` under the same names."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mung.cli.catalogue import catalogue_options, run_dataset_job, wants_dataset
from mung.cli.options import LazyChoice, config_options, resolve_config, typed_options
from mung.errors import MungError
from mung.music.formats import FORMATS


@click.group()
def music() -> None:
    """Music station classification and mood tagging."""


def _json_option(value: str | None, name: str) -> dict:
    if not value:
        return {}
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as exc:
        raise MungError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise MungError(f"{name}: expected a JSON object like '{{\"aggregation\": \"gru\"}}'")
    return obj


def _is_checkpoint(p: str) -> bool:
    path = Path(p)
    return path.suffix == ".safetensors" or (path.is_dir() and (path / "model.safetensors").exists())


@music.command()
@click.argument("audio", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Folder for <uri>.npy files.")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, help="Worker processes.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def featurize(audio: tuple[str, ...], out_dir: str, jobs: int, force: bool) -> None:
    """Write competition-format mel files [1, 128, T] (16 kHz, 32 ms hop, raw power mel); a re-run
    skips finished files."""
    from mung.cli.common import finish_batch
    from mung.music.batch_tasks import featurize as run

    report = run(list(audio), out_dir, force=force, jobs=jobs)
    click.echo(f"wrote {len(report.done)} mel file(s) to {out_dir}")
    finish_batch(report)


def _train_choices(name: str, section: str = "") -> LazyChoice:
    """The allowed values of a ``MusicTrainConfig`` field (its constraints, read when needed)."""

    def load() -> list[str]:
        from mung.config import choices
        from mung.music.features import MelConfig
        from mung.music.train import MusicTrainConfig

        return choices(MelConfig if section == "mel" else MusicTrainConfig, name)

    return LazyChoice(load)


@music.command()
@click.option("--task", type=_train_choices("task"), help="Default station.")
@click.option("--model", "model", type=_train_choices("model"), help="Network (default crnn).")
@click.option("--model-args", default=None, help='JSON settings, e.g. \'{"aggregation": "gru"}\'.')
@click.option("--aux", type=click.Path(), help="Frozen checkpoint of the other task (attention model).")
@click.option("--data", required=True, type=click.Path(),
              help="labels CSV, folder with labels.csv, or competition root.")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Run folder.")
@typed_options({
    "epochs": (int, "Default 30."), "batch-size": (int, "Default 16."), "lr": (float, "Default 1e-3."),
    "weight-decay": (float, "Default 1e-4."),
    "crop-frames": (int, "Training crop (32 ms frames; default 256)."),
    "loss": (_train_choices("loss"), "Station loss (default ce; mood always BCE)."),
    "mixup": (float, "Mixup Beta(α, α); 0 = off (default)."),
    "freq-mask": (int, "Max frequency-mask width; 0 = off (default)."), "patience": (int, "Default 8."),
    "keep": (_train_choices("keep"), "best: the best epoch on val (early stopping; default); last: the "
             "last epoch (val does not choose it)."),
    "seed": (int, "Default 0."),
})
@click.option("--device", help="Default auto.")
@click.option("--normalisation", type=_train_choices("normalisation", "mel"), help="Default log10.")
@click.option("--cache", "cache_dir", type=click.Path(), help="Folder to keep computed mel features.")
@click.option("--force", is_flag=True, help="Overwrite an existing run folder's outputs.")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(min=1),
              help="Data-parallel processes (DDP; global batch and lr unchanged). Or run under torchrun.")
@config_options
def train(data, out_dir, model_args, normalisation, force, config_file, show_config, nproc, **opts):
    """Train a station / mood / multi-task model (early stopping on the val split, or --keep last)."""
    from mung.distributed import is_main
    from mung.music.train import MusicTrainConfig
    from mung.music.train import train_processes as run

    overrides = {**opts, "mel.normalisation": normalisation,
                 "model_kwargs": _json_option(model_args, "--model-args") if model_args else None}
    cfg = resolve_config(MusicTrainConfig, config_file, overrides, show_config)
    if cfg is None:
        return
    result = run(cfg, data, out_dir, force=force, nproc=nproc)
    if not is_main():
        return
    shown = {k: round(v, 4) for k, v in result.metrics.items() if isinstance(v, float)}
    kept = f"last epoch ({cfg.epochs} run; best on val: {result.best_epoch})" if cfg.keep == "last" \
        else f"best epoch {result.best_epoch}"
    click.echo(f"{kept}: {shown}")
    click.echo(f"checkpoint {result.checkpoint}")


@music.command()
@click.argument("items", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--weights", default=None, help="Comma-separated ensemble weights, one per checkpoint.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=None,
              help="Mood threshold (default: the tuned one).")
@click.option("--top", type=click.IntRange(1), default=5, show_default=True,
              help="Moods shown in text format.")
@click.option("--out", "out_file", type=click.Path(), help="Write to a file instead of stdout.")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, help="Workers (processes or Ray actors).")
@click.option("--force", is_flag=True, help="Overwrite --out (with --dataset: start it over).")
@click.option("--html", "html_dir", type=click.Path(), help="Also write a results page DIR/index.html.")
@click.option("--labels", type=click.Path(), help="Labels CSV shown beside the predictions (--html).")
@catalogue_options
def tag(items, fmt, weights, threshold, top, out_file, jobs, force, html_dir, labels, engine, address,
        dataset):
    """Tag [CHECKPOINT...] AUDIO_OR_NPY...: station and moods (no checkpoint = shipped model;
    several = weighted ensemble). A bad or silent file is one error line; the others are tagged."""
    from mung.batch import run_batch
    from mung.cli.common import finish_batch
    from mung.music.batch_tasks import TagTask, tag_items
    from mung.music.formats import format_rows
    from mung.outputs import check_writable, write_text

    ckpts = [i for i in items if _is_checkpoint(i)]
    inputs = [i for i in items if not _is_checkpoint(i)]
    if not inputs:
        raise MungError("no audio or .npy input given")
    if wants_dataset(engine, address, dataset):
        from mung.music.catalogue import TagTable

        table = TagTable(ckpts, _weights(weights), threshold)
        run_dataset_job(table, inputs, dataset, engine, address, jobs, force)
        return
    if out_file:
        check_writable(Path(out_file), force)
    task = TagTask(ckpts, _weights(weights), threshold)
    batch = tag_items(inputs)
    report = run_batch(task, batch, jobs=jobs, engine=engine, address=address)
    rows = task.ordered_rows(batch)
    text = format_rows(rows, fmt, top)
    if out_file and report.done:
        write_text(out_file, text + "\n", force)
        click.echo(f"wrote {out_file}")
    elif report.done:
        click.echo(text)
    if html_dir and report.done:
        from mung.view import write_music_page

        write_music_page(html_dir, rows, labels=labels, force=force)
        click.echo(f"page written to {Path(html_dir) / 'index.html'} (or: mung view {html_dir})", err=True)
    finish_batch(report)


def _weights(weights: str | None) -> list[float] | None:
    if not weights:
        return None
    try:
        return [float(w) for w in weights.split(",")]
    except ValueError:
        raise MungError(f"--weights: expected comma-separated numbers, got {weights!r}") from None


@music.command()
@click.option("--data", required=True, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Folder for ablation.json/.md/.png.")
@click.option("--seeds", default=None, type=int, help="Seeds per arm (default 3; quick 2).")
@click.option("--epochs", default=None, type=int, help="Epochs per run (default 8; quick 1).")
@click.option("--quick", is_flag=True, help="Smoke run: 2 seeds, tiny models and a few clips.")
@click.option("--cache", "cache_dir", type=click.Path(), help="Folder to keep computed mel features.")
@click.option("--only", multiple=True, help="Only claims containing this word (repeatable), e.g. focal.")
@click.option("--task", "tasks", multiple=True, type=click.Choice(["station", "mood"]),
              help="Test only this task (repeatable; default both).")
@click.option("--force", is_flag=True)
def ablate(data, out_dir, seeds, epochs, quick, cache_dir, only, tasks, force):
    """Re-test the seed's claims (crop length, 1-D vs 2-D, GRU vs pooling, attention, focal, mixup,
    frequency masking, ensemble) with several seeds; writes a verdict table."""
    from dataclasses import replace

    from mung.music.ablate import AblationConfig
    from mung.music.ablate import ablate as run

    cfg = AblationConfig.quick_config() if quick else AblationConfig()
    cfg = replace(cfg, seeds=cfg.seeds if seeds is None else seeds, epochs=epochs or cfg.epochs)
    run(data, out_dir, cfg, force=force, cache_dir=cache_dir, only=list(only) or None,
        tasks=tuple(tasks) or ("station", "mood"))
    click.echo((Path(out_dir) / "ablation.md").read_text())


@music.command()
@click.argument("run", type=click.Path())
@click.option("--out", "out_file", required=True, type=click.Path(), help="Target .safetensors file.")
@click.option("--full-precision", is_flag=True, help="Keep float32 weights (default: fp16).")
@click.option("--force", is_flag=True)
def export(run, out_file, full_precision, force):
    """Copy a run's checkpoint (fp16 by default), e.g. into src/mung/music/weights/."""
    from mung.music.model_io import export as run_export

    click.echo(f"wrote {run_export(run, out_file, not full_precision, force)}")


@music.command()
@click.argument("checkpoints", nargs=-1, type=click.Path())
@click.option("--data", required=True, type=click.Path())
@click.option("--split", default="val", show_default=True, help="train, val, or all.")
@click.option("--out", "out_dir", type=click.Path(), help="Folder for metrics.json and confusion.png.")
@click.option("--weights", default=None, help="Comma-separated ensemble weights.")
@click.option("--threshold", type=float, default=None, help="Mood threshold for the tuned micro-F1.")
@click.option("--force", is_flag=True)
def evaluate(checkpoints, data, split, out_dir, weights, threshold, force):
    """Score CHECKPOINT... (ensemble; none = shipped model) on a labelled split."""
    from mung.music.evaluate import evaluate as run

    metrics = run(list(checkpoints), data, split, out_dir, _weights(weights), threshold, force)
    click.echo(json.dumps(metrics, indent=2))
