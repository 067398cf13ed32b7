"""Make the CAM++ embedding mean that ships in ``src/mung/speaker/weights/campplus-mean.safetensors``:
the mean raw CAM++ embedding of 1.5-s windows (0.75-s shift) of the LibriSpeech training
utterances (``../shared/data/speech``; no diarization evaluation audio). About 1 min on 2 cores.

    python benchmarks/campplus_mean.py [--speech DIR] [--out FILE] [--force]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mung import checkpoint
from mung.speaker.encoders.campplus import MEAN_FILE, embedding_mean

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT.parent / "shared" / "data" / "speech" / "librispeech-train-clean-100"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speech", type=Path, default=SPEECH, help="folder of SPEAKER/*.ogg utterances")
    ap.add_argument("--out", type=Path, default=MEAN_FILE)
    ap.add_argument("--force", action="store_true", help="overwrite --out")
    args = ap.parse_args()
    files = sorted(args.speech.glob("*/*.ogg"))
    mean = embedding_mean(files)
    meta = {"kind": "campplus-mean", "dim": int(mean.shape[0]), "files": len(files),
            "windows": "1.5 s every 0.75 s", "source": str(args.speech.name)}
    checkpoint.save(args.out, {"mean": torch.from_numpy(mean).float()}, meta, force=args.force)
    print(f"{args.out}: mean of {len(files)} files, norm {float((mean ** 2).sum() ** 0.5):.3f}")


if __name__ == "__main__":
    main()
