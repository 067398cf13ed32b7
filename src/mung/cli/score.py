"""`mung score` (DER / JER against a reference) and `mung tune` (grid search on a dev set)."""

from __future__ import annotations

from pathlib import Path

import click


def _table(rows, total) -> str:
    head = (f"{'uri':<28} {'DER%':>6} {'miss%':>6} {'FA%':>6} {'conf%':>6} {'JER%':>6} {'(D+J)/2':>8} "
            f"{'spk ref/hyp':>11}")
    lines = [head, "-" * len(head)]
    for r in [*rows, total]:
        lines.append(
            f"{r.uri:<28} {100 * r.der:6.2f} {100 * r.miss:6.2f} {100 * r.false_alarm:6.2f} "
            f"{100 * r.confusion:6.2f} {100 * r.jer:6.2f} {100 * r.combined:8.2f} "
            f"{r.ref_speakers:>5}/{r.hyp_speakers:<5}"
        )
    return "\n".join(lines)


def _scored(refs, hyps, uems, collar: float, skip_overlap: bool):
    """``score()`` with its one-sided-uri warnings printed as ``warning:`` lines."""
    import warnings

    from mung.diarization.scoring import UnscoredWarning
    from mung.diarization.scoring import score as score_fn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnscoredWarning)
        result = score_fn(refs, hyps, uems, collar=collar, skip_overlap=skip_overlap)
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)
    return result


@click.command()
@click.option("--ref", required=True, type=click.Path(), help="Reference RTTM.")
@click.option("--hyp", required=True, type=click.Path(), help="Hypothesis RTTM or a directory of them.")
@click.option("--uem", type=click.Path(), help="UEM of the scored regions.")
@click.option("--collar", type=click.FloatRange(0), default=0.25, show_default=True,
              help="Seconds ignored on each side of reference boundaries, for DER (JER never uses one).")
@click.option("--skip-overlap", is_flag=True, help="Do not score overlapped reference speech.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def score(ref: str, hyp: str, uem: str | None, collar: float, skip_overlap: bool, as_json: bool) -> None:
    """Per-file and overall DER (miss / false alarm / confusion), JER and (DER + JER) / 2, as dscore
    (md-eval) reports them; uris on one side only are warned about."""
    import json

    from mung.diarization.rttm import read_rttm, read_rttms, read_uem

    uems = read_uem(uem) if uem else None
    rows, total = _scored(read_rttm(ref), read_rttms(hyp), uems, collar, skip_overlap)
    if as_json:
        click.echo(json.dumps({"files": [r.as_dict() for r in rows], "total": total.as_dict()}, indent=2))
    else:
        click.echo(_table(rows, total))


@click.command()
@click.option("--audio-dir", required=True, multiple=True, type=click.Path(), help="Dev audio (repeatable).")
@click.option("--ref", required=True, multiple=True, type=click.Path(), help="Reference RTTM (repeatable).")
@click.option("--uem", multiple=True, type=click.Path(), help="UEM (repeatable).")
@click.option("--config", "config_file", type=click.Path(), help="Base YAML config.")
@click.option("--objective", type=click.Choice(["der", "combined"]), default="der", show_default=True)
@click.option("--collar", type=click.FloatRange(0), default=0.25, show_default=True)
@click.option("--out", "-o", required=True, type=click.Path(), help="Where to write the best config (YAML).")
@click.option("--force", is_flag=True)
def tune(audio_dir, ref, uem, config_file, objective, collar, out, force) -> None:
    """Grid-search VAD, window and clustering settings on a dev set; write the best config."""
    import yaml
    from tqdm import tqdm

    from mung import outputs
    from mung.audio import find_audio
    from mung.config import load_yaml, merge, to_dict
    from mung.diarization.pipeline import DiarizationConfig
    from mung.diarization.rttm import read_rttm, read_uem
    from mung.diarization.tune import TuneGrid
    from mung.diarization.tune import tune as tune_fn

    outputs.check_writable(Path(out), force)
    refs, uems = {}, {}
    for r in ref:
        refs.update(read_rttm(r))
    for u in uem:
        uems.update(read_uem(u))
    files = find_audio(list(audio_dir))
    base = load_yaml(DiarizationConfig, config_file) if config_file else DiarizationConfig()
    trials = tune_fn(files, refs, uems or None, base, TuneGrid(), objective, collar, progress=tqdm)
    for t in trials[:10]:
        click.echo(f"DER {100 * t.total.der:6.2f}  (D+J)/2 {100 * t.total.combined:6.2f}  {t.settings}")
    best = merge(base, trials[0].settings)
    outputs.write_text(out, yaml.safe_dump(to_dict(best), sort_keys=False), force=force)
    click.echo(f"best config written to {out}")
