"""What a little real meeting audio buys the segmentation model: two-fold cross-validation on
ami-excerpts (evaluation only; the shipped model never sees these files).

The shipped model is fine-tuned (``mung diarize train-segmentation --init mung --audio-dir
--ref``: half of every batch from the real recordings, half simulated) on the excerpts of four
meetings and scored on the other four, then the other way round; the folds share no speaker
(EN2001a and EN2001e are one meeting series, EN2005a and EN2009b share a participant). The two
held-out halves are pooled, so every row scores all eight excerpts, each by a model that never
heard it. Rows: frame-level overlap detection as in ``benchmarks/segmentation.py`` and DER of
the diarization default with the shipped or the fine-tuned model (± 0.25 s collar and none).

    python benchmarks/segmentation_finetune.py [--minutes 12] [--lr 5e-4] [--models bench-out/finetune]

Models already in ``--models`` are reused (delete them to retrain); about ``2 x minutes`` of CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from mung import audio
from mung.config import merge
from mung.diarization.pipeline import DiarizationConfig, Diarizer
from mung.diarization.rttm import read_rttm, read_uem
from mung.diarization.scoring import score
from mung.diarization.segmentation import SegmentationModel
from mung.diarization.train_segmentation import SegmentationTrainConfig, train_segmentation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segmentation import DATA, Frames, collect, print_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech" / "librispeech-train-clean-100"
MUSIC = ROOT.parent / "shared" / "data" / "music-4q" / "audio"
SET = "ami-excerpts"
FOLDS = [["ES2003a", "EN2001a", "EN2001e", "EN2003a"], ["EN2004a", "EN2005a", "EN2006a", "EN2009b"]]


def meeting(uri: str) -> str:
    """The AMI meeting of an excerpt's uri (``EN2001a_0000-0030`` → ``EN2001a``)."""
    return uri.split("_")[0]


def fine_tune(files: list[Path], out: Path, minutes: float, lr: float, seed: int) -> None:
    """Fine-tune the shipped model on the excerpts ``files`` (symlinked into a temporary folder)
    and write the final step's model to ``out`` (simulated validation only at the end: it would
    otherwise keep the checkpoint that fits the simulator best)."""
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            (Path(tmp) / path.name).symlink_to(path)
        config = SegmentationTrainConfig(minutes=minutes, lr=lr, val_every=minutes + 1, seed=seed)
        train_segmentation(SPEECH, out, MUSIC, tmp, DATA / SET / f"{SET}.rttm", config, init="mung",
                           force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="fine-tuning budget per fold")
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", type=Path, default=ROOT / "bench-out" / "finetune")
    args = parser.parse_args()
    args.models.mkdir(parents=True, exist_ok=True)
    refs = read_rttm(DATA / SET / f"{SET}.rttm")
    uem = read_uem(DATA / SET / f"{SET}.uem")
    files = [p for p in audio.find_audio([DATA / SET]) if p.stem in refs]
    shipped = (SegmentationModel.load("mung"),  # mung's shipped model, the one fine-tuned
               Diarizer(merge(DiarizationConfig(), {"segmentation.model": "mung"})))
    frames = {"shipped": Frames(), "fine-tuned": Frames()}
    hyps: dict[str, dict] = {"shipped": {}, "fine-tuned": {}}
    for k, held_out in enumerate(FOLDS):
        path = args.models / f"fold{k}.safetensors"
        if not path.exists():
            fine_tune([p for p in files if meeting(p.stem) not in held_out], path, args.minutes, args.lr,
                      args.seed)
        torch.set_num_threads(1)
        tuned = (SegmentationModel.load(path),
                 Diarizer(merge(DiarizationConfig(), {"segmentation.model": str(path)})))
        test = [p for p in files if meeting(p.stem) in held_out]
        for name, (model, diarizer) in (("shipped", shipped), ("fine-tuned", tuned)):
            frames[name] = frames[name] + collect(model, SET, {p.stem for p in test})
            hyps[name].update({d.uri: d for d in map(diarizer, test)})
    rows = {}
    for name in frames:
        row = frames[name].row()
        del row["CPU RTF"], row["ref overlap %"]
        _, with_collar = score(refs, hyps[name], uem, collar=0.25)
        _, no_collar = score(refs, hyps[name], uem, collar=0.0)
        rows[name] = {**row, "DER %": 100 * with_collar.der, "DER % no collar": 100 * no_collar.der,
                      "miss %": 100 * with_collar.miss, "confusion %": 100 * with_collar.confusion,
                      "false alarm %": 100 * with_collar.false_alarm}
    print(f"two-fold cross-validation on {SET}: {args.minutes:g} min of fine-tuning per fold, lr {args.lr:g}")
    print_table(rows, "segmentation model")


if __name__ == "__main__":
    main()
