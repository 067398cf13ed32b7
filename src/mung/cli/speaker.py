"""`mung speaker make-lists | train | embed | evaluate` — parsing only; the work is in mung.speaker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from mung.cli.catalogue import catalogue_options, run_dataset_job, wants_dataset
from mung.cli.groups import hidden_alias
from mung.cli.options import LazyChoice, config_options, resolve_config, typed_options


def _model_spec(model: str) -> str:
    """``default``/``resemblyzer``, ``kind:arg``, or a bare checkpoint path (→ ``resnetse34l:PATH``)."""
    from mung.speaker.encoders import encoder_kinds

    kind = model.partition(":")[0].lower()
    if model in ("default", "resemblyzer") or kind in encoder_kinds():
        return model
    return f"resnetse34l:{model}"


def _durations(text: str) -> tuple[float | None, ...]:
    from mung.errors import MungError

    out: list[float | None] = []
    for part in text.split(","):
        part = part.strip().lower().rstrip("s")
        if part == "full":
            out.append(None)
            continue
        try:
            out.append(float(part))
        except ValueError:
            raise MungError(f"--durations: {part!r} is not 'full' or a number of seconds") from None
    return tuple(out)


def encoder_options(f: Callable) -> Callable:
    """``--model``, ``--segment-aggregation`` and ``--device`` (embed and eval)."""
    f = click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1…")(f)
    f = click.option("--segment-aggregation", is_flag=True, help="Aggregate short segments (ResNetSE34L).")(f)
    return click.option(
        "--model",
        default="default",
        show_default=True,
        help="default (resemblyzer), a ResNetSE34L checkpoint, or kind:ARG.",
    )(f)


@click.group()
def speaker() -> None:
    """Speaker embeddings: build lists, train ResNetSE34L, embed files, evaluate trials."""


@speaker.command("make-lists")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option(
    "--trial-speakers",
    default="50",
    show_default=True,
    help="Speakers held out for trials ('all' or a number; 0 = training list only).",
)
@click.option("--train-part-seconds", default=3.0, show_default=True, help="Length of training parts.")
@click.option("--trial-parts", default=2, show_default=True, help="Parts per trial speaker.")
@click.option("--nontargets", default=5, show_default=True, help="Non-target trials per target.")
@click.option("--seed", default=0, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite existing lists.")
def make_lists_cmd(
    source: Path,
    out_dir: Path,
    trial_speakers: str,
    train_part_seconds: float,
    trial_parts: int,
    nontargets: int,
    seed: int,
    force: bool,
) -> None:
    """Cut SOURCE (one folder per speaker) into parts; write train_list.txt, trials.txt, audio/."""
    from mung.errors import MungError
    from mung.speaker.lists import make_lists

    if trial_speakers != "all" and not trial_speakers.isdigit():
        raise MungError("--trial-speakers must be 'all' or a number")
    n = None if trial_speakers == "all" else int(trial_speakers)
    stats = make_lists(
        source, out_dir, n, train_part_seconds, trial_parts, nontargets, seed=seed, force=force
    )
    click.echo(" ".join(f"{k}={v}" for k, v in stats.items()))
    click.echo(f"lists written to {out_dir}/ (audio root: {out_dir / 'audio'})")


def _train_choices(name: str) -> LazyChoice:
    """The allowed values of ``SpeakerTrainConfig.name`` (its constraints, read when needed)."""

    def load() -> list[str]:
        from mung.config import choices
        from mung.speaker.train import SpeakerTrainConfig

        return choices(SpeakerTrainConfig, name)

    return LazyChoice(load)


@speaker.command()
@click.option("--train-list", help="Lines 'speaker_id relative/path'.")
@click.option("--audio-root", help="Folder the list's paths are relative to.")
@click.option("--out", help="Run folder (checkpoints, curve, history).")
@typed_options({
    "loss": (_train_choices("loss"), "Training loss (default angleproto)."), "epochs": (int, "Default 20."),
    "speakers-per-batch": (int, "N speakers per batch (default 32)."),
    "utts-per-speaker": (int, "M utterances per speaker (default 2)."),
    "crop-seconds": (float, "Random training crop length (default 2.0)."), "lr": (float, "Default 1e-3."),
    "schedule": (_train_choices("schedule"), "Default cosine."),
})
@click.option("--segment-aggregation/--no-segment-aggregation", default=None,
              help="Train with segment aggregation (Jung et al. 2020).")
@click.option("--segment-seconds", type=float, help="Default 0.5.")
@click.option("--segment-hop", type=float, help="Default 0.25.")
@click.option("--noise-dir", help="Folder of noise audio for additive augmentation.")
@click.option("--rir-dir", help="Folder of room impulse responses for reverberation.")
@click.option("--val-trials", help="Trial list scored after every epoch.")
@click.option("--val-audio-root")
@click.option("--init", help="Start from a checkpoint (ours or voxceleb_trainer).")
@click.option("--device", help="auto (default), cpu, cuda, cuda:1…")
@click.option("--workers", type=int, help="Data-loading processes (default 0).")
@click.option("--threads", default=0, help="torch CPU threads (0 = torch default).")
@click.option("--seed", type=int, help="Default 0.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--force", is_flag=True, help="Overwrite an existing run in --out.")
@click.option("--nproc", default=1, show_default=True, type=click.IntRange(min=1),
              help="Data-parallel processes (DDP; global batch and lr unchanged). Or run under torchrun.")
@config_options
def train(threads: int, resume: bool, force: bool, config_file: str | None, show_config: bool,
          nproc: int, **opts) -> None:
    """Train ResNetSE34L on a voxceleb_trainer-style list."""
    import torch

    from mung.distributed import is_main
    from mung.speaker.train import SpeakerTrainConfig
    from mung.speaker.train import train_processes as run

    cfg = resolve_config(SpeakerTrainConfig, config_file, opts, show_config)
    if cfg is None:
        return
    if threads:
        torch.set_num_threads(threads)
    final = run(cfg, resume=resume, force=force, nproc=nproc)
    if not is_main():
        return
    click.echo(f"final: {final}")
    click.echo(f"model: {Path(cfg.out) / 'model.pt'}")


@speaker.command()
@click.argument("audio", nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Folder for <uri>.npy files.")
@encoder_options
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, help="Workers (processes or Ray actors).")
@click.option("--force", is_flag=True, help="Overwrite existing .npy files (with --dataset: start it over).")
@catalogue_options
def embed(
    audio: tuple[str, ...], out_dir: Path | None, model: str, segment_aggregation: bool, device: str,
    jobs: int, force: bool, engine: str, address: str | None, dataset: str | None,
) -> None:
    """Write OUT/<uri>.npy, one embedding per audio file (folders expand to their files; uri = file
    stem with whitespace replaced by '_'). Silent files are refused; a re-run skips finished files."""
    from mung.cli.common import finish_batch
    from mung.errors import MungError
    from mung.speaker.embedding import embed_files

    if wants_dataset(engine, address, dataset):
        from mung.speaker.catalogue import EmbedTable

        task = EmbedTable(_model_spec(model), segment_aggregation, device)
        run_dataset_job(task, audio, dataset, engine, address, jobs, force)
        return
    if out_dir is None:
        raise MungError("give --out DIR (or --dataset DIR)")
    report = embed_files(list(audio), out_dir, _model_spec(model), segment_aggregation, device, force, jobs,
                         engine=engine, address=address)
    click.echo(f"{len(report.done)} embeddings written to {out_dir}/")
    finish_batch(report)


@speaker.command("evaluate")
@click.option("--trials", required=True, help="Lines 'label path1 path2' (VoxCeleb format).")
@click.option("--audio-root", required=True)
@encoder_options
@click.option("--durations", default="full,3,1", show_default=True, help="Test-side crops (seconds).")
@click.option("--crops", default=1, show_default=True, type=click.IntRange(min=1),
              help="Evenly spaced crops per test file (1 = centre).")
@click.option("--out", "out_path", default=None, type=click.Path(path_type=Path), help="Results JSON.")
@click.option("--force", is_flag=True)
def eval_cmd(
    trials: str,
    audio_root: str,
    model: str,
    segment_aggregation: bool,
    durations: str,
    crops: int,
    device: str,
    out_path: Path | None,
    force: bool,
) -> None:
    """EER and minDCF (p_target 0.01) in full and with the test side cropped to short durations."""
    from dataclasses import asdict

    from mung.outputs import check_writable, write_json
    from mung.speaker.encoders import load_encoder
    from mung.speaker.evaluate import evaluate_trials, format_results
    from mung.speaker.lists import read_trials

    if out_path:
        check_writable(out_path, force)
    trial_list = read_trials(trials, audio_root)
    encoder = load_encoder(_model_spec(model), device, segment_aggregation=segment_aggregation)
    results = evaluate_trials(encoder, trial_list, audio_root, _durations(durations), crops=crops)
    click.echo(format_results(results))
    if out_path:
        write_json(
            out_path,
            {
                "model": model,
                "segment_aggregation": segment_aggregation,
                "results": [asdict(r) for r in results],
            },
            force,
        )


speaker.add_command(hidden_alias(eval_cmd, "eval"))  # the earlier spelling
