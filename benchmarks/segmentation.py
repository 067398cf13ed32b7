"""Segmentation model alone on ../shared/data/diarization (evaluation only; pyannote's model was trained on
AMI's training meetings, most excerpts' source): frame-level speech and overlapped-speech detection
against the reference RTTMs.

Each file is cut into consecutive chunks (5 s for mung's model, 10 s for pyannote's; the last one
zero-padded); a frame counts as speech when the most likely class (powerset, or speaker count) has
one or two speakers, as overlap when it has two. The overlap columns "AP" and "@thr" score what the
diarization's overlap mode uses: the overlap probability from chunks every 2 s, averaged per frame
(average precision over all thresholds; precision / recall at the model's own threshold). The
reference at a frame (the model's step, centre time) is the number of reference speakers talking
there, inside the UEM. No collar. Local speaker identities are not scored here (they are linked
across chunks by the diarization pipeline). CPU RTF: process CPU time of the model (one torch
thread) per second of audio, one pass of non-overlapping chunks (CPU time, not wall time: the
machine is shared).

    python benchmarks/segmentation.py [--model default|pyannote|mung|FILE] [--sets ami-excerpts,sim-dev]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from mung import audio
from mung.diarization.models import load_segmentation
from mung.diarization.overlapped import detect_overlap
from mung.diarization.rttm import read_rttm, read_uem
from mung.diarization.segmentation import SegmentationModel

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "diarization"
SETS = ["ami-excerpts", "real-conversations", "sim-dev"]


def hard_counts(model: SegmentationModel, wav: np.ndarray) -> np.ndarray:
    """Active local speakers per output frame over the whole file (consecutive chunks; each
    frame of a chunk goes to the nearest frame of the file's grid, so models whose frames do
    not tile a chunk exactly, like pyannote's 589 per 10 s, do not drift)."""
    n = model.chunk_samples
    chunks = np.zeros((max(1, -(-len(wav) // n)), n), np.float32)
    chunks.reshape(-1)[: len(wav)] = wav
    counts = model.infer_count(chunks)
    frames = int(np.ceil(len(wav) / (model.frame_step * model.sample_rate)))
    out = np.zeros(frames, np.int64)
    for i, chunk in enumerate(counts):
        idx = np.round((i * n / model.sample_rate + model.frame_times()) / model.frame_step).astype(int)
        keep = idx < frames
        out[idx[keep]] = chunk[keep]
    return out


def reference_counts(turns, times: np.ndarray) -> np.ndarray:
    out = np.zeros(len(times), int)
    for t in turns:
        out += (times >= t.start) & (times < t.end)
    return out


@dataclass
class Frames:
    """Frame counts and overlap scores of one model on some files (:func:`collect`); ``+``
    pools two (e.g. the held-out folds of a cross-validation, each scored by its own model)."""

    tp: dict[str, int] = field(default_factory=lambda: {"speech": 0, "overlap": 0})
    fp: dict[str, int] = field(default_factory=lambda: {"speech": 0, "overlap": 0})
    fn: dict[str, int] = field(default_factory=lambda: {"speech": 0, "overlap": 0})
    scores: list[np.ndarray] = field(default_factory=list)  # overlap probability per frame
    found: list[np.ndarray] = field(default_factory=list)  # above the model's threshold
    truth: list[np.ndarray] = field(default_factory=list)  # two or more reference speakers
    seconds: float = 0.0
    elapsed: float = 0.0

    def __add__(self, other: Frames) -> Frames:
        def add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
            return {k: a[k] + b[k] for k in a}

        return Frames(add(self.tp, other.tp), add(self.fp, other.fp), add(self.fn, other.fn),
                      self.scores + other.scores, self.found + other.found, self.truth + other.truth,
                      self.seconds + other.seconds, self.elapsed + other.elapsed)

    def row(self) -> dict[str, float]:
        """The table's columns."""

        def pct(a: int, b: int) -> float:
            return 100.0 * a / b if b else float("nan")

        tp, fp, fn = self.tp, self.fp, self.fn
        out = {}
        for kind in ("speech", "overlap"):
            out[f"{kind} P"] = pct(tp[kind], tp[kind] + fp[kind])
            out[f"{kind} R"] = pct(tp[kind], tp[kind] + fn[kind])
        p, t, found = (np.concatenate(x) for x in (self.scores, self.truth, self.found))
        out["overlap AP"] = 100.0 * average_precision_score(t, p)
        out["overlap P @thr"] = pct(int((found & t).sum()), int(found.sum()))
        out["overlap R @thr"] = pct(int((found & t).sum()), int(t.sum()))
        out["ref overlap %"] = pct(tp["overlap"] + fn["overlap"], tp["speech"] + fn["speech"])
        out["CPU RTF"] = self.elapsed / self.seconds
        return out


def collect(model: SegmentationModel, name: str, uris: Collection[str] | None = None) -> Frames:
    """Score ``model`` on the files of the set ``name`` (only ``uris`` when given)."""
    folder = DATA / name
    refs = read_rttm(folder / f"{name}.rttm")
    uems = read_uem(folder / f"{name}.uem")
    out = Frames()
    for path in audio.find_audio([folder]):
        if path.stem not in refs or (uris is not None and path.stem not in uris):
            continue
        wav = audio.load(path)
        t0 = time.process_time()
        hyp = hard_counts(model, wav)
        out.elapsed += time.process_time() - t0
        out.seconds += len(wav) / model.sample_rate
        times = np.arange(len(hyp)) * model.frame_step
        ref = reference_counts(refs[path.stem].turns, times)
        keep = np.zeros(len(times), bool)
        for a, b in uems.get(path.stem, [(0.0, times[-1] + 1)]):
            keep |= (times >= a) & (times < b)
        for kind, k in (("speech", 1), ("overlap", 2)):
            r, h = (ref >= k)[keep], (hyp >= k)[keep]
            out.tp[kind] += int((r & h).sum())
            out.fp[kind] += int((~r & h).sum())
            out.fn[kind] += int((r & ~h).sum())
        p = detect_overlap(model, wav)[: len(times)]
        out.scores.append(p[keep[: len(p)]])
        out.found.append(out.scores[-1] > model.overlap_threshold)
        out.truth.append((ref >= 2)[: len(p)][keep[: len(p)]])
    return out


def score_set(model: SegmentationModel, name: str, uris: Collection[str] | None = None) -> dict[str, float]:
    return collect(model, name, uris).row()


def print_table(rows: dict[str, dict[str, float]], first: str = "set") -> None:
    cols = list(next(iter(rows.values())))
    print(f"| {first} | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, row in rows.items():
        cells = [f"{row[c]:.4f}" if c == "CPU RTF" else f"{row[c]:.1f}" for c in cols]
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--sets", default=",".join(SETS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_segmentation(args.model)
    print_table({name: score_set(model, name) for name in args.sets.split(",")})


if __name__ == "__main__":
    main()
