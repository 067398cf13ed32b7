"""Speaker verification benchmark: EER / minDCF at full, 3 s and 1 s test durations for the
shipped encoder (resemblyzer), ResNetSE34L trained here, and ResNetSE34L with segment
aggregation (mean at inference, and trained with the aggregation losses); and the
split-utterance protocol (enrol on the first half of each speaker's utterance, test on a 1-s and
a 3-s centre crop of the second half, all against all) for the ways of embedding a span with the
shipped encoder, anchored by resemblyzer's own ``VoiceEncoder.embed_utterance``.

    .venv/bin/python benchmarks/speaker.py                      # split the librispeech folder
    .venv/bin/python benchmarks/speaker.py --heldout DIR        # train on --data, test on DIR
    .venv/bin/python benchmarks/speaker.py --protocol split     # split-utterance table only

Trains two small models on CPU (``--epochs``), writes the tables to
``benchmarks/results/speaker.md`` / ``speaker-split.md`` and prints them.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from report import publish, run

from mung import audio
from mung.audio import SAMPLE_RATE
from mung.diarization.naming import utterance_embedder
from mung.outputs import write_text
from mung.speaker.embedding import embed_wav
from mung.speaker.encoders import load_encoder
from mung.speaker.evaluate import DurationResult, evaluate_trials
from mung.speaker.halves import split_scores, threshold_at
from mung.speaker.lists import make_lists, read_trials
from mung.speaker.metrics import eer
from mung.speaker.train import SpeakerTrainConfig, train
from mung.speaker.utterance import UtteranceConfig, UtteranceEmbedder

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "speech" / "librispeech-train-clean-100"


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="speaker folders for training (and trials)")
    ap.add_argument("--heldout", type=Path, default=None, help="speaker folders used only for trials")
    ap.add_argument("--trial-speakers", type=int, default=50, help="held out of --data without --heldout")
    ap.add_argument("--work", type=Path, default=ROOT / "bench-out" / "speaker")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--crop-seconds", type=float, default=2.0)
    ap.add_argument("--resnet", default=None, help="skip training: plain ResNetSE34L checkpoint")
    ap.add_argument("--resnet-sa", default=None, help="skip training: aggregation-trained checkpoint")
    ap.add_argument("--crops", type=int, default=3, help="evenly spaced 3 s / 1 s crops per test file")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "speaker.md")
    ap.add_argument("--protocol", choices=["trials", "split", "both"], default="both")
    ap.add_argument("--split-data", type=Path, default=DATA, help="one utterance per speaker folder")
    ap.add_argument("--split-out", type=Path, default=ROOT / "benchmarks" / "results" / "speaker-split.md")
    return ap.parse_args()


def _package_usage(ws: list[np.ndarray]) -> np.ndarray:
    """resemblyzer as its README shows: ``preprocess_wav`` then ``embed_utterance``, one by one."""
    from resemblyzer import preprocess_wav

    model = load_encoder().model
    return np.stack([model.embed_utterance(preprocess_wav(w)) for w in ws])


def _whole_span(ws: list[np.ndarray]) -> np.ndarray:
    """mung before utterance embedding: the network run once over each span (30-s chunks averaged)."""
    enc = load_encoder()
    return np.stack([embed_wav(enc, w) for w in ws])


def split_protocol(args: argparse.Namespace) -> str:
    """The split-utterance EER table (markdown)."""
    files = sorted(audio.find_audio([args.split_data]))
    wavs = [audio.load(f) for f in files]
    minutes = sum(len(w) for w in wavs) / SAMPLE_RATE / 60
    trimmed = utterance_embedder()
    rows: list[tuple[str, object]] = [
        ("resemblyzer `embed_utterance` (the package's own usage; anchor)", _package_usage),
        ("mung before: network over the whole span", _whole_span),
        ("mung: 1.6-s windows, 50 % overlap, speech only (default)",
         lambda ws: trimmed.embed_waveforms(ws).embeddings),
    ]
    campplus = utterance_embedder("campplus")
    rows.append(("CAM++ (`--model campplus`) on those windows (default)",
                 lambda ws: campplus.embed_waveforms(ws).embeddings))
    for label, config in [
        ("… no silence trimming", UtteranceConfig(trim_silence=False)),
        ("… 75 % overlap", UtteranceConfig(overlap=0.75)),
        ("… short spans tiled to 1.6 s", UtteranceConfig(short="tile")),
        ("… every window levelled to -30 dBFS instead of the span", UtteranceConfig(loudness="window")),
    ]:
        variant = UtteranceEmbedder(load_encoder(), trimmed.speech, config)
        rows.append((label, lambda ws, v=variant: v.embed_waveforms(ws).embeddings))
    lines = ["| embedding | EER test 1 s | EER test 3 s | s per min of audio |", "|---|---|---|---|"]
    calibration = ""
    for label, fn in rows:
        t0 = time.time()
        res = split_scores(wavs, fn)
        secs = (time.time() - t0) / minutes
        e1, e3 = (100 * eer(*res[d]) for d in (1.0, 3.0))
        lines.append(f"| {label} | {e1:.2f} % | {e3:.2f} % | {secs:.2f} |")
        print(lines[-1], flush=True)
        if "(default)" in label:
            calibration += f" {label.split(',')[0]}: cosine threshold at 1 % false acceptance " + ", ".join(
                f"{threshold_at(*res[d], 0.01):.3f} ({d:g}-s tests)" for d in res) + "."
    setup = (f"{len(wavs)} speakers of `{args.split_data.name}` (one utterance each, {minutes:.0f} min): "
             "enrolment on the first half of each utterance, test on the 1-s / 3-s centre crop of the "
             f"second half, every enrolment against every test ({len(wavs)}² trials, {len(wavs)} target), "
             f"cosine. Time: embedding all halves and crops on CPU, 1 thread, {platform.machine()}, "
             "a shared machine (compare rows, not machines)." + calibration)
    return "\n".join(lines) + "\n\n" + setup


def build_lists(args: argparse.Namespace) -> tuple[Path, Path, Path, Path]:
    """(train_list, train_root, trials, trial_root)."""
    lists = args.work / "lists"
    if args.heldout is None:
        make_lists(args.data, lists, args.trial_speakers, nontargets_per_target=20, force=True)
        return lists / "train_list.txt", lists / "audio", lists / "trials.txt", lists / "audio"
    make_lists(args.data, lists / "train", trial_speakers=0, force=True)
    make_lists(args.heldout, lists / "heldout", None, nontargets_per_target=20, force=True)
    return (
        lists / "train" / "train_list.txt",
        lists / "train" / "audio",
        lists / "heldout" / "trials.txt",
        lists / "heldout" / "audio",
    )


def train_model(args: argparse.Namespace, train_list: Path, root: Path, name: str, sa: bool) -> Path:
    cfg = SpeakerTrainConfig(
        str(train_list),
        str(root),
        str(args.work / name),
        epochs=args.epochs,
        crop_seconds=args.crop_seconds,
        segment_aggregation=sa,
        device="cpu",
    )
    t0 = time.time()
    final = train(cfg, force=True)
    print(f"{name}: trained {args.epochs} epochs in {time.time() - t0:.0f} s, final {final}", flush=True)
    return args.work / name / "model.pt"


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    if args.protocol in ("split", "both"):
        text = split_protocol(args)
        print("\n" + text)
        write_text(args.split_out, f"# Split-utterance speaker verification\n\n{text}\n", force=True)
        if args.protocol == "split":
            return
    if not args.data.is_dir():
        sys.exit(f"data folder {args.data} not found")
    train_list, train_root, trials_path, trial_root = build_lists(args)
    trials = read_trials(trials_path, trial_root)
    n_target = sum(t.label for t in trials)
    resnet = args.resnet or train_model(args, train_list, train_root, "resnetse34l", sa=False)
    resnet_sa = args.resnet_sa or train_model(args, train_list, train_root, "resnetse34l-sa", sa=True)
    rows = [
        ("resemblyzer (shipped default)", "default", False),
        ("ResNetSE34L trained here", f"resnetse34l:{resnet}", False),
        ("ResNetSE34L + mean segment aggregation", f"resnetse34l:{resnet}", True),
        ("ResNetSE34L-SA trained here, plain", f"resnetse34l:{resnet_sa}", False),
        ("ResNetSE34L-SA + learned segment aggregation", f"resnetse34l:{resnet_sa}", True),
    ]
    table: list[tuple[str, list[DurationResult], float]] = []
    for label, spec, sa in rows:
        t0 = time.time()
        enc = load_encoder(spec, segment_aggregation=sa)
        res = evaluate_trials(enc, trials, trial_root, crops=args.crops)
        table.append((label, res, time.time() - t0))
        print(f"{label}: " + ", ".join(f"{r.duration} {r.eer:.2f}%" for r in res), flush=True)
    head = "| model | EER full | EER 3 s | EER 1 s | minDCF full | minDCF 3 s | minDCF 1 s | eval s |"
    lines = [head, "|" + "---|" * 8]
    for label, res, secs in table:
        eers = " | ".join(f"{r.eer:.1f} % ({r.eer_ci[0]:.1f}–{r.eer_ci[1]:.1f})" for r in res)
        dcfs = " | ".join(f"{r.min_dcf:.3f}" for r in res)
        lines.append(f"| {label} | {eers} | {dcfs} | {secs:.0f} |")
    setup = (
        f"Trials: {len(trials)} ({n_target} target) from `{trials_path.relative_to(args.work)}`; "
        f"enrollment side full, test side full or cut into {args.crops} evenly spaced 3 s / 1 s crops, "
        f"each scored as a trial ({args.crops}× the trials); EER with bootstrap 95 % "
        f"interval. Training: `{args.data.name}`"
        f"{' (trial speakers disjoint)' if args.heldout is None else ''}, {args.epochs} epochs, "
        f"{args.crop_seconds:g} s crops, 32 speakers × 2 utterances per batch, angular prototypical "
        f"loss, CPU with {args.threads} thread(s). Segment aggregation: 0.5 s segments, 0.25 s hop. "
        f"Machine: {platform.machine()}, torch {torch.__version__}."
    )
    publish("Speaker verification benchmark", "\n".join(lines), setup, args.out)


if __name__ == "__main__":
    run(main)
