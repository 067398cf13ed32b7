"""Does the diarization invent a second speaker when one person talks alone?

Every speaker of a set with at least ``--min-seconds`` of speech that no one else talks over is
cut out of the recording (their reference turns, other speakers' turns removed, joined) and
diarized alone; the recordings themselves are diarized too. For each, the table counts how many
speakers were found, how close the two closest clusters' mean voices are (cosine distance,
:func:`mung.diarization.clustering.closest_clusters`) and whether the result carries the "sound
alike" note. ``--telephone`` first band-limits every recording to a telephone channel (8 kHz,
300-3400 Hz, 8-bit mu-law), e.g. for simulated conversations:

    mung diarize simulate --speech ../shared/data/speech/librispeech-train-clean-100 --out tel/ \\
        --n 16 --seed 91 --min-speakers 2 --max-speakers 2 --snr 15,30 --overlap-prob 0.2
    python benchmarks/monologues.py --extra-set tel/ --telephone
    python benchmarks/monologues.py [--set ami-excerpts] [--system NAME] [--extra-set DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from diarization import DATA, DEFAULT, SETS, SYSTEMS, save_table

ROOT = Path(__file__).resolve().parents[1]
GE2E = "windows + pyannote overlap, GE2E (--embedding resemblyzer)"
NO_MERGE = "CAM++ default without merging close clusters (--merge-threshold 0)"
SYSTEMS = {**SYSTEMS, NO_MERGE: {**SYSTEMS[DEFAULT], "clustering.merge_threshold": 0.0}}
AUDIO = (".ogg", ".flac", ".wav")


def telephone(wav: np.ndarray) -> np.ndarray:
    """``wav`` (16 kHz) through an 8-kHz, 300-3400 Hz channel with 8-bit mu-law companding."""
    from scipy.signal import butter, resample_poly, sosfilt

    narrow = sosfilt(butter(6, [300, 3400], "bandpass", fs=8000, output="sos"), resample_poly(wav, 1, 2))
    mu = 255.0
    code = np.sign(narrow) * np.log1p(mu * np.abs(np.clip(narrow, -1, 1))) / np.log1p(mu)
    code = np.round(code * 127) / 127
    narrow = np.sign(code) * ((1 + mu) ** np.abs(code) - 1) / mu
    return resample_poly(narrow, 2, 1).astype(np.float32)


def monologues(wav: np.ndarray, turns: list, min_seconds: float) -> dict[str, np.ndarray]:
    """Each speaker's speech that no other speaker overlaps, joined, if at least ``min_seconds``."""
    out = {}
    for speaker in sorted({t.speaker for t in turns}):
        own, other = np.zeros(len(wav), bool), np.zeros(len(wav), bool)
        for t in turns:
            (own if t.speaker == speaker else other)[int(t.start * 16000) : int(t.end * 16000)] = True
        alone = wav[own & ~other]
        if len(alone) >= min_seconds * 16000:
            out[speaker] = alone
    return out


def judge(diarizer, wav: np.ndarray, uri: str) -> tuple[int, float | None, bool]:
    """Speakers found, the closest pair's distance, and whether the "sound alike" note fired."""
    from mung.diarization.clustering import closest_clusters
    from mung.diarization.pipeline import centred, count_notes

    embedded = diarizer.embed(wav, uri)
    result, labels = diarizer.assign_with_labels(embedded)
    pair = closest_clusters(centred(embedded.embeddings, diarizer.config), labels)
    notes = count_notes(result, embedded, diarizer.config, labels, diarizer.encoder.similar_voices)
    return len(result.speakers), None if pair is None else pair[0], any("sound alike" in n for n in notes)


def summary(rows: list[tuple[int, float | None, bool]], split: int) -> str:
    """``n | found >= split | flagged | distance range`` of the rows found with ``split`` or more."""
    hit = [r for r in rows if r[0] >= split]
    dist = [r[1] for r in hit if r[1] is not None]
    span = f"{min(dist):.2f}-{max(dist):.2f}" if dist else "-"
    return f"{len(rows)} | {len(hit)} | {sum(r[2] for r in rows)} | {span}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", choices=SETS, help="shared sets (default: all three)")
    ap.add_argument("--extra-set", action="append", type=Path, default=[],
                    help="a folder with audio and one .rttm (alone unless --set is given too)")
    ap.add_argument("--system", action="append", choices=list(SYSTEMS),
                    help=f"default: {DEFAULT}, {NO_MERGE}, GE2E")
    ap.add_argument("--min-seconds", type=float, default=10.0, help="shortest monologue kept")
    ap.add_argument("--telephone", action="store_true", help="band-limit every recording first")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "monologues.md")
    args = ap.parse_args()
    from mung import audio
    from mung.config import merge
    from mung.diarization.pipeline import DiarizationConfig, Diarizer
    from mung.diarization.rttm import read_rttm

    folders = [DATA / s for s in (args.set or ([] if args.extra_set else SETS))] + args.extra_set
    if not all(f.is_dir() for f in folders):
        sys.exit(f"data not found: {', '.join(str(f) for f in folders if not f.is_dir())}")
    lines = ["| set | system | recordings | with ≥ 2 speakers | flagged | closest pair (those) "
             "| monologues | split in ≥ 2 | flagged | closest pair (split ones) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name in args.system or [DEFAULT, NO_MERGE, GE2E]:
        diarizer = Diarizer(merge(DiarizationConfig(), SYSTEMS[name]))
        for folder in folders:
            refs = read_rttm(next(folder.glob("*.rttm")))
            whole, alone = [], []
            for path in sorted(p for p in folder.iterdir() if p.suffix in AUDIO):
                wav = audio.load(path)
                wav = telephone(wav) if args.telephone else wav
                whole.append(judge(diarizer, wav, path.stem))
                for speaker, speech in monologues(wav, refs[path.stem].turns, args.min_seconds).items():
                    alone.append(judge(diarizer, speech, f"{path.stem}-{speaker}"))
            label = folder.name + (" (telephone)" if args.telephone else "")
            lines.append(f"| {label} | {name} | {summary(whole, 2)} | {summary(alone, 2)} |")
            print(lines[-1], flush=True)
    save_table(lines, args.out)


if __name__ == "__main__":
    main()
