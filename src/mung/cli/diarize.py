"""`mung diarize`: who spoke when, for one or many recordings."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mung.cli.catalogue import catalogue_options, run_dataset_job, wants_dataset
from mung.cli.common import finish_batch
from mung.cli.groups import DefaultGroup
from mung.cli.options import LazyChoice, config_options, resolve_config, typed_options

EMBEDDING_HELP = "campplus (CAM++, the default) | resemblyzer (GE2E; alias: default) | resnetse34l:CKPT"


@click.group(cls=DefaultGroup, name="diarize")
def diarize_group() -> None:
    """Who spoke when: `mung diarize AUDIO... [--out DIR]` (see `mung diarize run --help`)."""


def _overrides(opts: dict) -> dict:
    keys = {
        "vad": "vad.method", "vad_mode": "vad.mode", "vad_threshold": "vad.threshold",
        "frame_ms": "vad.frame_ms",
        "padding_ms": "vad.padding_ms", "window": "windows.window", "shift": "windows.shift",
        "embedding": "embedding.model", "device": "embedding.device",
        "linkage": "clustering.linkage", "dereverb": "dereverb.method",
        "threshold": "clustering.threshold", "merge_threshold": "clustering.merge_threshold",
        "num_speakers": "clustering.num_speakers",
        "min_speakers": "clustering.min_speakers", "max_speakers": "clustering.max_speakers",
        "min_duration": "resegment.min_duration", "segmentation": "segmentation.model",
        "segmentation_mode": "segmentation.mode", "overlap_threshold": "segmentation.overlap_threshold",
        "overlap_step": "segmentation.overlap_step",
        "speakers": "naming.speakers", "naming_threshold": "naming.threshold",
    }
    out = {dotted: opts[name] for name, dotted in keys.items()}
    if opts["clustering"]:
        method, _, model = opts["clustering"].partition(":")
        out["clustering.method"], out["clustering.model"] = method, model or None
        if method != "uisrnn":
            out["segmentation.clustering"] = method
    if opts["threshold"] is not None:
        out["segmentation.threshold"] = opts["threshold"]
    if opts["exclusive"]:
        out["segmentation.exclusive"] = True
    if opts["segment_aggregation"]:
        out["embedding.segment_aggregation"] = True
    return out


def _clustering_spec(value: str | None) -> str | None:
    from mung.diarization.pipeline import Diarizer  # noqa: F401 - registers every clustering method
    from mung.errors import MungError
    from mung.registry import names

    if value is None:
        return None
    method, _, model = value.partition(":")
    if method not in names("clustering") or (method == "uisrnn") != bool(model):
        raise MungError(f"--clustering: one of ahc+spectral, ahc, spectral, uisrnn:MODEL; got {value!r}")
    return value


def _save_config(path: Path, text: str, force: bool) -> None:
    """The resolved config beside the outputs (an identical existing file is left alone)."""
    from mung import outputs

    if not path.exists() or path.read_text() != text:
        outputs.write_text(path, text, force=force)


def _choices(section: str, name: str) -> LazyChoice:
    """Allowed values of ``DiarizationConfig.<section>.<name>``, from its constraints."""

    def load() -> list[str]:
        import dataclasses

        from mung.config import choices
        from mung.diarization.pipeline import DiarizationConfig

        field = next(f for f in dataclasses.fields(DiarizationConfig) if f.name == section)
        return choices(field.default_factory, name)

    return LazyChoice(load)


@diarize_group.command(name="run")
@click.argument("audio", nargs=-1)
@click.option("--out", "-o", help="Output directory (DIR/<stem>.rttm); '-' prints RTTM to stdout.")
@click.option("--config", "config_file", type=click.Path(), help="YAML config (see --show-config).")
@click.option("--segmentation", help="Segmentation model: default (= pyannote: segmentation-3.0) | "
              "mung (the model trained here) | MODEL (a file) | none (window pipeline alone).")
@click.option("--segmentation-mode", type=_choices("segmentation", "mode"),
              help="overlap: window pipeline + a second speaker where the model hears overlap (default); "
                   "local: the model's local speakers are clustered.")
@click.option("--overlap-threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Overlap probability for a second speaker (default: the model's own value).")
@click.option("--overlap-step", type=float,
              help="Seconds between the overlap model's chunks (default 2; 5 is 2.5x cheaper).")
@click.option("--exclusive", is_flag=True, help="One speaker per frame (no overlapping turns), for ASR.")
@click.option("--vad", type=_choices("vad", "method"), help="Speech detector (not used by local mode).")
@click.option("--vad-mode", type=click.IntRange(0, 3), help="webrtcvad aggressiveness.")
@click.option("--vad-threshold", type=click.FloatRange(0, 1), help="silero speech probability threshold.")
@click.option("--frame-ms", type=_choices("vad", "frame_ms"), callback=lambda c, p, v: v and int(v))
@click.option("--padding-ms", type=int, help="webrtcvad end-point padding window (ms).")
@click.option("--window", type=float, help="Embedding window (s).")
@click.option("--shift", type=float, help="Window shift (s).")
@click.option("--embedding", help=EMBEDDING_HELP)
@click.option("--segment-aggregation", is_flag=True, help="Segment aggregation (resnetse34l).")
@click.option("--device", help="cpu | cuda")
@click.option(
    "--clustering", callback=lambda c, p, v: _clustering_spec(v),
    help="ahc+spectral (default) | ahc | spectral | uisrnn:MODEL",
)
@click.option("--dereverb", type=_choices("dereverb", "method"), help="WPE dereverberation before detection.")
@click.option("--linkage", type=_choices("clustering", "linkage"))
@click.option("--threshold", type=float,
              help="AHC cosine-distance threshold (default: the encoder's own, CAM++ 0.6, GE2E 0.7).")
@click.option("--merge-threshold", type=float,
              help="Merge clusters whose mean voices are closer (cosine distance; 0: never; "
                   "telephone-band speech never). Default: the encoder's own, CAM++ 0.4, GE2E 0.")
@click.option("--num-speakers", type=int, help="Known number of speakers.")
@click.option("--min-speakers", type=int)
@click.option("--max-speakers", type=int)
@click.option("--min-duration", type=float, help="Absorb turns shorter than this (s).")
@click.option("--speakers", type=click.Path(), help="Voiceprint database: name enrolled speakers.")
@click.option("--naming-threshold", type=float, help="Cosine score a cluster needs to get a name.")
@click.option("--json", is_flag=True, help="Also write DIR/<stem>.json.")
@click.option("--plot", is_flag=True, help="Also write a timeline DIR/<stem>.png.")
@click.option("--print", "print_", is_flag=True, help="Print who spoke when.")
@click.option("--html", is_flag=True, help="Also write a results page DIR/index.html (see mung view).")
@click.option("--ref", type=click.Path(), help="Reference RTTM for the --html page (errors, DER).")
@click.option("--jobs", "-j", type=click.IntRange(1), default=1, help="Worker processes.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--show-config", is_flag=True, help="Print the resolved config as YAML and exit.")
@catalogue_options
def diarize_cmd(audio: tuple[str, ...], out: str | None, config_file: str | None, **opts) -> None:
    """Diarize AUDIO files or directories; write DIR/<uri>.rttm for each (uri = file stem with
    whitespace replaced by '_'). Finished files are kept on Ctrl-C; a re-run skips them."""
    import yaml

    from mung.batch import check_batch, items_from_paths, run_batch
    from mung.config import load_yaml, merge, to_dict
    from mung.diarization.pipeline import DiarizationConfig, with_encoder_defaults
    from mung.diarization.task import DiarizeTask
    from mung.errors import MungError

    config = merge(load_yaml(DiarizationConfig, config_file) if config_file else DiarizationConfig(),
                   _overrides(opts))
    config.validate()
    if opts["show_config"]:
        click.echo(yaml.safe_dump(to_dict(config), sort_keys=False), nl=False)
        return
    if not audio:
        raise MungError("no AUDIO given: mung diarize FILE_OR_DIR... [--out DIR]")
    if wants_dataset(opts["engine"], opts["address"], opts["dataset"]):  # turns + DATASET/rttm/
        from mung.diarization.catalogue import DiarizeTable

        task = DiarizeTable(config, Path(opts["dataset"]))
        run_dataset_job(task, audio, opts["dataset"], opts["engine"], opts["address"], opts["jobs"],
                        opts["force"])
        return
    if config.naming.speakers:
        from mung.speaker.voiceprints import VoiceprintDB

        if not len(VoiceprintDB(config.naming.speakers, must_exist=True)):
            click.echo(f"warning: {config.naming.speakers}: no speaker enrolled; clusters keep spkNN labels",
                       err=True)
    out_dir = None if out in (None, "-") else Path(out)
    if out_dir is None and (opts["json"] or opts["plot"]):
        raise MungError("--json and --plot write files: give --out DIR")
    items = items_from_paths(list(audio))
    if out_dir is None and len(items) > 1:
        raise MungError("several inputs need --out DIR")
    if opts["html"] and out_dir is None:
        raise MungError("--html needs --out DIR (the page is written to DIR/index.html)")
    task = DiarizeTask(config, out_dir, opts["json"], opts["plot"], opts["print_"])
    if out_dir is not None:
        check_batch(task, items, opts["force"])  # refuse bad inputs before the config is saved
        resolved = to_dict(with_encoder_defaults(config))  # the encoder's own thresholds, spelled out
        _save_config(out_dir / "config.yaml", yaml.safe_dump(resolved, sort_keys=False), opts["force"])
    report = run_batch(task, items, jobs=opts["jobs"], force=opts["force"], engine=opts["engine"],
                       address=opts["address"])
    if opts["html"]:
        _write_page(out_dir, [it for it in items if it.uri in {*report.done, *report.skipped}], opts)
    finish_batch(report)


def _write_page(out_dir: Path, items: list, opts: dict) -> None:
    """The results page of every finished recording (this run's and earlier runs', read back)."""
    from mung.diarization.rttm import Diarization, read_rttm
    from mung.view import write_diarization_page

    results = [read_rttm(out_dir / f"{it.uri}.rttm").get(it.uri, Diarization(it.uri)) for it in items]
    paths = {it.uri: it.path for it in items}
    write_diarization_page(out_dir, results, paths, ref=opts["ref"], force=opts["force"])
    click.echo(f"page written to {out_dir / 'index.html'} (or run: mung view {out_dir})", err=True)


def _range(text: str) -> tuple[float, float]:
    """'A,B' or 'A' → (A, B)."""
    from mung.errors import MungError

    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        raise MungError(f"expected a number or a range LOW,HIGH, got {text!r}") from None
    if len(parts) not in (1, 2):
        raise MungError(f"expected a number or a range LOW,HIGH, got {text!r}")
    return parts[0], parts[-1]


@diarize_group.command(name="simulate")
@click.option("--speech", required=True, type=click.Path(), help="Single-speaker utterances (SPEAKER/*.ogg).")
@click.option("--out", "-o", required=True, type=click.Path(), help="Output directory.")
@click.option("--n", "n", type=int, default=20, show_default=True, help="Number of recordings.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--name", default="sim", show_default=True, help="Prefix of uris and set files.")
@click.option("--min-speakers", type=int, default=2, show_default=True)
@click.option("--max-speakers", type=int, default=4, show_default=True)
@click.option("--duration", default="60,120", show_default=True, help="Recording length range (s).")
@click.option("--overlap-prob", type=float, default=0.4, show_default=True, help="P(turn overlaps).")
@click.option("--overlap", default="0.3,1.5", show_default=True, help="Overlap length range (s).")
@click.option("--pause", default="0.2,1.5", show_default=True, help="Pause range between turns (s).")
@click.option("--backchannel-prob", type=float, default=0.0, show_default=True, help="P(interjection).")
@click.option("--snr", default="20,30", show_default=True, help="White-noise SNR range (dB).")
@click.option("--gain", default="-6,0", show_default=True, help="Per-speaker gain range (dB).")
@click.option("--rt60", help="Reverberation time range LOW,HIGH (s); default: no room.")
@click.option("--drr", default="-2,4", show_default=True, help="Direct-to-reverberant ratio range (dB).")
@click.option("--format", "audio_format", type=click.Choice(["flac", "wav"]), default="flac")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
def simulate_cmd(speech: str, out: str, n: int, seed: int, name: str, audio_format: str, force: bool,
                 **opts) -> None:
    """Simulated conversations with exact OUT/NAME.rttm, .uem and .meta.jsonl (deterministic by seed)."""
    from tqdm import tqdm

    from mung.diarization.simulate import SimulationConfig, simulate, write_simulation

    config = SimulationConfig(
        min_speakers=opts["min_speakers"], max_speakers=opts["max_speakers"],
        duration=_range(opts["duration"]), pause=_range(opts["pause"]), overlap=_range(opts["overlap"]),
        overlap_prob=opts["overlap_prob"], backchannel_prob=opts["backchannel_prob"],
        snr_db=_range(opts["snr"]), speaker_gain_db=_range(opts["gain"]),
        rt60=_range(opts["rt60"]) if opts["rt60"] else None, drr_db=_range(opts["drr"]),
    )
    recs = tqdm(simulate(speech, n, seed, config, prefix=name), total=n, unit="rec", file=sys.stderr)
    paths = write_simulation(recs, out, name, audio_format, force)
    click.echo(f"{len(paths)} recordings, {name}.rttm, {name}.uem, {name}.meta.jsonl written to {out}")


@diarize_group.command(name="train-clustering")
@click.option("--method", type=click.Choice(["uisrnn"]), help="Supervised clustering method (uisrnn).")
@click.option("--audio-dir", required=True, type=click.Path(), help="Recordings (uri = file stem).")
@click.option("--ref", "ref", required=True, type=click.Path(), help="RTTM with their speaker turns.")
@click.option("--out", "-o", required=True, type=click.Path(), help="Model file to write.")
@click.option("--config", "config_file", type=click.Path(),
              help="YAML with `pipeline:` (front-end) and `uisrnn:` (training) sections; see --show-config.")
@click.option("--embedding", help=EMBEDDING_HELP)
@click.option("--cache", type=click.Path(), help="Read/write the window embeddings here (.npz).")
@click.option("--steps", type=int, help="Training steps (default 2000).")
@click.option("--hidden", type=int, help="GRU size (default 128).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--force", is_flag=True, help="Overwrite an existing model.")
@click.option("--show-config", is_flag=True, help="Print the resolved config as YAML and exit.")
def train_clustering_cmd(audio_dir: str, ref: str, out: str, config_file: str | None, cache: str | None,
                         force: bool, show_config: bool, **opts) -> None:
    """Train supervised clustering on RTTM-labelled recordings (the pipeline's front-end embeds them)."""
    from tqdm import tqdm

    from mung.config import dump, load
    from mung.diarization.train_clustering import ClusteringTrainConfig, train_clustering

    keys = {"method": "method", "embedding": "pipeline.embedding.model", "steps": "uisrnn.steps",
            "hidden": "uisrnn.hidden", "seed": "uisrnn.seed"}
    config = load(ClusteringTrainConfig, config_file, {keys[k]: v for k, v in opts.items()})
    if show_config:
        click.echo(dump(config), nl=False)
        return
    result = train_clustering(audio_dir, ref, out, config, cache, force,
                              progress=lambda it, desc: tqdm(it, desc=desc, unit="step", file=sys.stderr))
    m = result.model
    click.echo(f"{config.method} model ({m.dim}-d {result.meta['encoder']} embeddings, {result.recordings} "
               f"recordings, p_change {m.p_change:.3f}, crp_alpha {m.crp_alpha:.2f}, "
               f"final NLL {result.curve[-1]:.1f}) → {out}")


@diarize_group.command(name="train-segmentation")
@click.option("--speech", required=True, type=click.Path(), help="Single-speaker utterances (SPEAKER/*.ogg).")
@click.option("--out", "-o", required=True, type=click.Path(), help="Model file to write (.safetensors).")
@click.option("--noise", type=click.Path(), help="Audio used as background music/noise.")
@click.option("--audio-dir", type=click.Path(), help="Real recordings to mix in (uri = file stem).")
@click.option("--ref", type=click.Path(), help="RTTM of the --audio-dir recordings.")
@click.option("--init", type=click.Path(),
              help="Start from this model (fine-tune): a file, or 'mung' for the one trained here "
              "(pyannote's, the default segmentation model, cannot be fine-tuned by mung).")
@typed_options({
    "minutes": (float, "Wall-clock training budget (default 60)."),
    "lr": (float, "Peak learning rate, AdamW (default 2e-3)."),
    "batch-size": (int, "Chunks per step (default 32)."),
    "threads": (int, "Torch threads (default 1)."),
    "workers": (int, "Processes simulating batches (default 0: one thread; use several with a GPU)."),
    "device": (str, "auto (a GPU when one is visible), cpu, cuda, cuda:N or mps (default auto)."),
    "seed": (int, "Default 0."),
    "objective": (click.Choice(["powerset", "count"]),
                  "powerset: local speakers, for both pipelines (default); count: speakers per frame only "
                  "(overlap detection, for --segmentation-mode overlap). A fine-tune keeps --init's."),
    "speed-perturb": (float, "Training speakers play at a speed drawn from 1 ± this (default 0: off)."),
})
@click.option("--force", is_flag=True, help="Overwrite an existing model.")
@config_options
def train_segmentation_cmd(speech: str, out: str, noise: str | None, audio_dir: str | None, ref: str | None,
                           init: str | None, force: bool, config_file: str | None, show_config: bool,
                           **opts) -> None:
    """Train the local speaker-segmentation model (or a speaker-count model) on simulated meetings
    (+ optional real RTTM data)."""
    from tqdm import tqdm

    from mung.diarization.train_segmentation import SegmentationTrainConfig, train_segmentation

    config = resolve_config(SegmentationTrainConfig, config_file, opts, show_config)
    if config is None:
        return
    m = train_segmentation(speech, out, noise, audio_dir, ref, config, init, force,
                           log=lambda s: click.echo(s, err=True),
                           progress=lambda **kw: tqdm(file=sys.stderr, **kw))
    click.echo(f"segmentation model → {out} ({m['steps']} steps; best validation loss {m['best_loss']:.4f}; "
               f"last: overlap P/R {m['overlap_precision']}/{m['overlap_recall']} %)")
