"""`mung music` commands: featurize, train, tag, evaluate, ablate. Parsing only; the work lives in
:mod:`mung.music` under the same names."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mung.errors import MungError


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
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Folder for <stem>.npy files.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def featurize(audio: tuple[str, ...], out_dir: str, force: bool) -> None:
    """Write competition-format mel files [1, 128, T] (16 kHz, 32 ms hop, raw power mel)."""
    from mung.music.features import featurize as run

    written = run(list(audio), out_dir, force=force)
    click.echo(f"wrote {len(written)} mel file(s) to {out_dir}")


@music.command()
@click.option("--task", type=click.Choice(["station", "mood", "multi"]), default="station", show_default=True)
@click.option("--model", "model_name", default="crnn", show_default=True,
              help="speakernet, speakernet1d, crnn, rexnet, resnext50, melstats, attention.")
@click.option("--model-args", default=None, help='JSON settings, e.g. \'{"aggregation": "gru"}\'.')
@click.option("--aux", type=click.Path(), help="Frozen checkpoint of the other task (attention model).")
@click.option("--data", required=True, type=click.Path(),
              help="labels CSV, folder with labels.csv, or competition root.")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Run folder.")
@click.option("--epochs", default=30, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--lr", default=1e-3, show_default=True)
@click.option("--weight-decay", default=1e-4, show_default=True)
@click.option("--crop-frames", default=256, show_default=True, help="Training crop (32 ms frames).")
@click.option("--loss", type=click.Choice(["ce", "focal"]), default="ce", show_default=True,
              help="Station loss (mood always BCE).")
@click.option("--mixup", default=0.0, show_default=True, help="Mixup Beta(α, α); 0 = off.")
@click.option("--freq-mask", default=0, show_default=True, help="Max frequency-mask width; 0 = off.")
@click.option("--patience", default=8, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--normalisation", type=click.Choice(["log10", "log", "none"]), default="log10",
              show_default=True)
@click.option("--cache", "cache_dir", type=click.Path(), help="Folder to keep computed mel features.")
@click.option("--force", is_flag=True, help="Overwrite an existing run folder's outputs.")
def train(task, model_name, model_args, aux, data, out_dir, epochs, batch_size, lr, weight_decay,
          crop_frames, loss, mixup, freq_mask, patience, seed, device, normalisation, cache_dir, force):
    """Train a station / mood / multi-task model (early stopping on the val split)."""
    from mung.music.features import MelConfig
    from mung.music.train import TrainConfig
    from mung.music.train import train as run

    cfg = TrainConfig(task=task, model=model_name, model_kwargs=_json_option(model_args, "--model-args"),
                      aux=aux, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                      crop_frames=crop_frames, loss=loss, mixup=mixup, freq_mask=freq_mask,
                      patience=patience, seed=seed, device=device,
                      mel=MelConfig(normalisation=normalisation), cache_dir=cache_dir)
    result = run(cfg, data, out_dir, force=force)
    shown = {k: round(v, 4) for k, v in result.metrics.items() if isinstance(v, float)}
    click.echo(f"best epoch {result.best_epoch}: {shown}")
    click.echo(f"checkpoint {result.checkpoint}")


@music.command()
@click.argument("items", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv", "competition"]), default="text",
              show_default=True)
@click.option("--weights", default=None, help="Comma-separated ensemble weights, one per checkpoint.")
@click.option("--threshold", type=float, default=None, help="Mood threshold (default: the tuned one).")
@click.option("--top", default=5, show_default=True, help="Moods shown in text format.")
@click.option("--out", "out_file", type=click.Path(), help="Write to a file instead of stdout.")
@click.option("--force", is_flag=True, help="Overwrite --out.")
@click.option("--html", "html_dir", type=click.Path(), help="Also write a results page DIR/index.html.")
@click.option("--labels", type=click.Path(), help="Labels CSV shown beside the predictions (--html).")
def tag(items, fmt, weights, threshold, top, out_file, force, html_dir, labels):
    """Tag [CHECKPOINT...] AUDIO_OR_NPY...: station and moods (no checkpoint = shipped model;
    several = weighted ensemble)."""
    from mung.io import write_text
    from mung.music.inference import format_rows
    from mung.music.inference import tag as run

    ckpts = [i for i in items if _is_checkpoint(i)]
    inputs = [i for i in items if not _is_checkpoint(i)]
    if not inputs:
        raise MungError("no audio or .npy input given")
    w = _weights(weights)
    rows = run(ckpts, inputs, w, threshold, top=None, progress=False)
    text = format_rows(rows, fmt, top)
    if out_file:
        write_text(out_file, text + "\n", force)
        click.echo(f"wrote {out_file}")
    else:
        click.echo(text)
    if html_dir:
        from mung.view import write_music_page

        write_music_page(html_dir, rows, labels=labels, force=force)
        click.echo(f"page written to {Path(html_dir) / 'index.html'} (or: mung view {html_dir})", err=True)


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
    from mung.music.inference import export as run_export

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
