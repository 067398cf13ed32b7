"""`mung speaker enroll | list | remove | identify` — known speakers; the work is in
mung.speaker.voiceprints (database, identification) and mung.diarization.naming (embedder)."""

from __future__ import annotations

from pathlib import Path

import click

db_option = click.option("--db", "db", required=True, type=click.Path(path_type=Path),
                         help="Voiceprint database folder (one NAME.json per speaker).")


def _embedder_options(f):
    f = click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1…")(f)
    return click.option("--model", default="default", show_default=True,
                        help="Encoder: default (resemblyzer), campplus or resnetse34l:CKPT.")(f)


@click.command()
@click.argument("name")
@click.argument("audio", nargs=-1, required=True)
@db_option
@_embedder_options
@click.option("--force", is_flag=True, help="Replace a speaker enrolled under NAME.")
def enroll(name: str, audio: tuple[str, ...], db: Path, model: str, device: str, force: bool) -> None:
    """Enrol NAME from AUDIO files (or folders) of them speaking alone."""
    from mung.diarization.naming import utterance_embedder
    from mung.speaker.voiceprints import VoiceprintDB
    from mung.speaker.voiceprints import enroll as run

    database = VoiceprintDB(db)
    database.check_new(name, force)  # before the encoder loads
    vp = run(name, list(audio), database, utterance_embedder(model, device), force=force)
    click.echo(f"enrolled {vp.name}: {vp.seconds:.1f} s of speech from {len(vp.sources)} file(s) → "
               f"{database.file(vp.name)}")


@click.command("list")
@db_option
def list_cmd(db: Path) -> None:
    """List enrolled speakers (name, seconds of speech, encoder, files)."""
    from mung.speaker.voiceprints import list_speakers

    prints = list_speakers(db)
    if not prints:
        click.echo(f"{db}: no speaker enrolled")
    for vp in prints:
        click.echo(f"{vp.name}\t{vp.seconds:.1f} s\t{vp.encoder} ({vp.dim}-d)\t{len(vp.sources)} file(s)")


@click.command("remove")
@click.argument("name")
@db_option
def remove_cmd(name: str, db: Path) -> None:
    """Remove the speaker NAME from the database."""
    from mung.speaker.voiceprints import remove

    remove(name, db)
    click.echo(f"removed {name} from {db}")


@click.command()
@click.argument("audio", nargs=-1, required=True)
@db_option
@_embedder_options
@click.option("--top", default=3, show_default=True, type=click.IntRange(min=1), help="Names shown.")
@click.option("--threshold", type=float, default=None,
              help="Cosine score needed to name a recording (default: the calibrated value).")
def identify(audio: tuple[str, ...], db: Path, model: str, device: str, top: int,
             threshold: float | None) -> None:
    """Who is speaking in each AUDIO file: the closest enrolled names with scores, or unknown."""
    from mung.diarization.naming import utterance_embedder
    from mung.speaker.voiceprints import VoiceprintDB
    from mung.speaker.voiceprints import identify as run

    database = VoiceprintDB(db)
    for r in run(list(audio), database, utterance_embedder(model, device), top, threshold):
        scores = "  ".join(f"{n} {s:.3f}" for n, s in r.matches)
        click.echo(f"{r.source}\t{r.name}\t{scores}")


COMMANDS = (enroll, list_cmd, remove_cmd, identify)
