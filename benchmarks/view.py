"""Results-page load times in headless Chromium for large outputs: 1,000 recordings (real AMI
audio for the envelopes, hypotheses made from the reference so the DER is computed), one long
recording with thousands of turns, and 10,000 tagged tracks with labels.

    .venv/bin/python benchmarks/view.py [--recordings 1000] [--tracks 10000]

Load = navigation start to the page's ready mark (index parsed, list or table rendered, first
recording's details fetched and drawn), median of ``--repeats`` fresh tabs. Sort / filter = one
click's synchronous re-render. Writes ``benchmarks/results/view.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from mung.diarization.rttm import Diarization, Turn, read_rttm
from mung.outputs import write_text
from mung.view import write_diarization_page, write_music_page

ROOT = Path(__file__).resolve().parents[1]
AMI = ROOT.parent / "shared" / "data" / "diarization" / "ami-excerpts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def diarization_outputs(n: int) -> tuple[list[Diarization], dict, dict]:
    """``n`` recordings cycling over the AMI excerpts: reference = AMI turns under a new uri,
    hypothesis = the same turns shifted by 0.3 s with the last turn dropped."""
    refs = read_rttm(AMI / "ami-excerpts.rttm")
    base = sorted(refs)
    hyps, ref_out, audio = [], {}, {}
    for i in range(n):
        src = refs[base[i % len(base)]]
        uri = f"{src.uri}-{i:04d}"
        ref_out[uri] = Diarization(uri, list(src.turns), src.duration)
        turns = [Turn(t.start + 0.3, t.end, f"spk{t.speaker[-2:]}") for t in sorted(src.turns)[:-1]]
        hyps.append(Diarization(uri, turns, src.duration))
        audio[uri] = AMI / f"{src.uri}.ogg"
    return hyps, ref_out, audio


def long_recording(turns: int, seed: int = 0) -> tuple[Diarization, Diarization]:
    """A two-hour meeting of 6 speakers with ``turns`` turns (10 % overlapping), no audio."""
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(turns):
        d = rng.uniform(0.5, 4.0)
        out.append(Turn(round(t, 3), round(t + d, 3), f"S{rng.randrange(6)}"))
        t += d if rng.random() > 0.1 else d / 2
    ref = Diarization("meeting", out, t)
    confused = [Turn(x.start, x.end, x.speaker if rng.random() > 0.1 else "S0") for x in out]
    hyp = Diarization("meeting", confused, t)
    return hyp, ref


def music_outputs(n: int, folder: Path, seed: int = 0) -> tuple[list[dict], Path]:
    """``n`` tag rows over 4 stations and 50 moods, and a labels CSV for them."""
    rng = random.Random(seed)
    stations = ["Q1", "Q2", "Q3", "Q4"]
    moods = [f"mood{k:02d}" for k in range(50)]
    rows = []
    labels = folder / "labels.csv"
    with open(labels, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "station", "moods", "split"])
        for i in range(n):
            p = [rng.random() for _ in stations]
            p = [x / sum(p) for x in p]
            scores = {m: round(rng.random() ** 3, 4) for m in moods}
            best = stations[max(range(4), key=p.__getitem__)]
            rows.append({"file": f"audio/track{i:05d}.ogg", "station": best,
                         "station_probs": dict(zip(stations, p, strict=True)),
                         "moods": sorted((m for m in moods if scores[m] > 0.5), key=lambda m: -scores[m]),
                         "mood_scores": scores})
            truth = "|".join(rng.sample(moods, 3))
            w.writerow([f"audio/track{i:05d}.ogg", rng.choice(stations), truth, "val"])
    return rows, labels


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in (folder / "view-data").iterdir()) / 1e6


def measure(browser, folder: Path, repeats: int, action: str | None) -> tuple[float, float | None]:
    """(median load ms, median ms of ``action`` — JS returning its own duration)."""
    loads, acts = [], []
    for _ in range(repeats):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto((folder / "index.html").as_uri())
        page.wait_for_function("window.mungReady === true", timeout=60000)
        loads.append(page.evaluate("window.mungReadyMs"))
        if action:
            acts.append(page.evaluate(action))
        page.close()
    return statistics.median(loads), statistics.median(acts) if acts else None


SORT = ("(() => { const t = performance.now();"
        " document.querySelector('th button.sort[data-key=\"%s\"]').click();"
        " return performance.now() - t; })()")
FILTER = ("(() => { const s = document.getElementById('filter-station'); const t = performance.now();"
          " s.value = '1'; s.dispatchEvent(new Event('change')); return performance.now() - t; })()")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recordings", type=int, default=1000)
    ap.add_argument("--turns", type=int, default=3000, help="turns of the long recording")
    ap.add_argument("--tracks", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        tmp = Path(tmp)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        cases = []
        hyps, refs, audio = diarization_outputs(args.recordings)
        cases.append((f"diarization, {args.recordings} recordings + ref", tmp / "many",
                      lambda o: write_diarization_page(o, hyps, audio, ref=refs),
                      SORT % "der", "sort by DER"))
        hyp, ref = long_recording(args.turns)
        cases.append((f"diarization, 1 recording of {hyp.duration / 3600:.1f} h, {args.turns} turns + ref",
                      tmp / "long", lambda o: write_diarization_page(o, [hyp], ref={"meeting": ref}),
                      None, ""))
        tags, labels = music_outputs(args.tracks, tmp)
        cases.append((f"music, {args.tracks} tracks + labels", tmp / "music",
                      lambda o: write_music_page(o, tags, labels=labels), SORT % "p", "sort by probability"))
        cases.append((f"music, {args.tracks} tracks", tmp / "music", None, FILTER, "filter by station"))
        for name, folder, write, action, what in cases:
            t0 = time.perf_counter()
            if write is not None:
                write(folder)
            write_s = time.perf_counter() - t0
            load, act = measure(browser, folder, args.repeats, action)
            rows.append((name, f"{write_s:.1f}" if write else "–", f"{size_mb(folder):.1f}", f"{load:.0f}",
                         f"{what} {act:.0f} ms" if act is not None else "–"))
        version = browser.version
        browser.close()
    head = ("page", "write (s)", "data (MB)", "load (ms)", "interaction")
    lines = [f"Chromium {version} headless, {platform.processor() or platform.machine()}, "
             f"median of {args.repeats} loads", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    write_text(ROOT / "benchmarks" / "results" / "view.md", text, force=True)
    print(text, end="")


if __name__ == "__main__":
    main()
