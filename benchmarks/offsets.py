"""How much a DER figure moves when the recording starts a little later.

Each recording is diarized again with ``OFFSET`` seconds of silence put before it (the turns
are shifted back before scoring), so the windows, chunks and clusters fall differently on the
same speech. A short set's DER is one draw from this spread: ami-excerpts' 8 × 30 s move by
several points. The table gives each offset's DER and the mean ± standard deviation.

    python benchmarks/offsets.py [--offsets 0,0.2,0.4,0.6] [--set ami-excerpts] [--system NAME]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from diarization import DATA, DEFAULT, SETS, SYSTEMS, save_table

ROOT = Path(__file__).resolve().parents[1]


def shifted(diarizer, wav: np.ndarray, uri: str, offset: float):
    """The diarization of ``wav`` heard ``offset`` seconds late, in ``wav``'s own time."""
    from mung.audio import SAMPLE_RATE
    from mung.diarization.rttm import Diarization, Turn

    pad = np.zeros(int(round(offset * SAMPLE_RATE)), np.float32)
    result = diarizer(np.concatenate([pad, wav]), uri)
    turns = [Turn(max(0.0, t.start - offset), t.end - offset, t.speaker) for t in result.turns
             if t.end > offset]
    return Diarization(uri, turns, len(wav) / SAMPLE_RATE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offsets", default="0,0.2,0.4,0.6", help="seconds of silence put first")
    ap.add_argument("--set", action="append", choices=SETS, help="sets (default: all three)")
    ap.add_argument("--system", action="append", choices=list(SYSTEMS), help=f"default: {DEFAULT}")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "offsets.md")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"data not found: {DATA}")
    from mung import audio
    from mung.config import merge
    from mung.diarization.pipeline import DiarizationConfig, Diarizer
    from mung.diarization.rttm import read_rttm, read_uem
    from mung.diarization.scoring import score

    offsets = [float(x) for x in args.offsets.split(",")]
    head = " | ".join(f"+{o:g} s" for o in offsets)
    lines = [f"| set | system | DER % at {head} | mean ± sd | mean abs spk-count err |",
             "|---|---|" + "---|" * len(offsets) + "---|---|"]
    print("\n".join(lines), flush=True)
    for name in args.system or [DEFAULT]:
        diarizer = Diarizer(merge(DiarizationConfig(), SYSTEMS[name]))
        for set_name in args.set or SETS:
            folder = DATA / set_name
            refs, uem = read_rttm(folder / f"{set_name}.rttm"), read_uem(folder / f"{set_name}.uem")
            wavs = {p.stem: audio.load(p) for p in sorted(folder.iterdir())
                    if p.suffix in (".ogg", ".flac", ".wav")}
            ders, counts = [], []
            for offset in offsets:
                hyps = {u: shifted(diarizer, w, u, offset) for u, w in wavs.items()}
                rows, total = score(refs, hyps, uem)
                ders.append(100 * total.der)
                counts.append(np.mean([abs(r.ref_speakers - r.hyp_speakers) for r in rows]))
            cells = " | ".join(f"{d:.2f}" for d in ders)
            lines.append(f"| {set_name} | {name} | {cells} | {np.mean(ders):.2f} ± {np.std(ders):.2f} "
                         f"| {np.mean(counts):.2f} |")
            print(lines[-1], flush=True)
    save_table(lines, args.out)


if __name__ == "__main__":
    main()
