"""Speaker verification benchmark: EER / minDCF at full, 3 s and 1 s test durations for the
shipped encoder (resemblyzer), ResNetSE34L trained here, and ResNetSE34L with segment
aggregation (mean at inference, and trained with the aggregation losses).

    .venv/bin/python benchmarks/speaker.py                      # split the librispeech folder
    .venv/bin/python benchmarks/speaker.py --heldout DIR        # train on --data, test on DIR

Trains two small models on CPU (``--epochs``), writes the table to
``benchmarks/results/speaker.md`` and prints it.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from mung.errors import MungError
from mung.outputs import write_text
from mung.speaker.encoders import load_encoder
from mung.speaker.evaluate import DurationResult, evaluate_trials
from mung.speaker.lists import make_lists, read_trials
from mung.speaker.train import SpeakerTrainConfig, train

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
    return ap.parse_args()


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
    text = "\n".join(lines)
    print("\n" + text + "\n\n" + setup)
    write_text(args.out, f"# Speaker verification benchmark\n\n{text}\n\n{setup}\n", force=True)


if __name__ == "__main__":
    try:
        main()
    except MungError as exc:
        sys.exit(f"error: {exc}")
