"""Diarization benchmark on ../shared/data/diarization: prints (and saves) the tables.

For each set (ami-excerpts, real-conversations, sim-dev) and each system: DER with a ±0.25 s
collar and with none, its parts, JER, mean |speaker-count error|, overlapped-speech detection
precision / recall (frames with two or more reference speakers, no collar), real-time factor
(processing time / audio time, model loading excluded; wall clock, and in brackets the process's
CPU time, which other jobs on a shared machine do not inflate) and peak resident memory of the
process that ran it. Systems: the default (window pipeline + a second speaker where the shipped
segmentation model hears overlap), the local-speaker pipeline and its ``--exclusive`` output, the
window pipeline alone (``segmentation: none``), the organisers' baseline settings and the
one-speaker baseline (reference speech, one label); ``--all`` adds the window-pipeline variants,
``--oracle`` both model-based pipelines fed the reference instead of the model (overlapped frames;
local speaker turns): what the model costs. A second table compares speech detection (frames) of
the segmentation model and silero-vad. ``--long`` times one 1-hour file (all shared recordings
joined) with the three pipelines.

    python benchmarks/diarization.py [--long] [--all] [--oracle] [--out benchmarks/results/diarization.md]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "diarization"
SETS = ["ami-excerpts", "real-conversations", "sim-dev"]
SPEECH = ROOT.parent / "shared" / "data" / "speech" / "librispeech-train-clean-100"
# trained on simulated conversations from the same LibriSpeech speakers as sim-dev (see uisrnn_model)
UISRNN_MODEL = ROOT / "bench-out" / "uisrnn-sim.pt"

# name -> dotted config overrides on top of DiarizationConfig() (see `mung diarize --show-config`)
WINDOWS = {"segmentation.model": "none"}  # the window pipeline alone
OVERLAP = {"segmentation.model": "default", "segmentation.mode": "overlap"}  # + the model's overlap
LOCAL = {"segmentation.model": "default", "segmentation.mode": "local"}  # the local-speaker pipeline
GE2E = {"embedding.model": "resemblyzer"}  # the embedding of the previous default
DEFAULT = "windows + pyannote overlap, CAM++ (default)"
PREVIOUS = "previous default: windows + mung model overlap, CAM++ (--segmentation mung)"
LOCAL_NAME = "local-speaker pipeline, pyannote (--segmentation-mode local)"
WINDOWS_NAME = "window pipeline alone (--segmentation none; --exclusive gives the same)"
MUNG = {"segmentation.model": "mung"}
FAST = "fast: GE2E, pyannote overlap every 5 s (--embedding resemblyzer --overlap-step 5)"
SYSTEMS: dict[str, dict] = {
    DEFAULT: OVERLAP,
    PREVIOUS: {**OVERLAP, **MUNG},
    "windows + pyannote overlap, GE2E (--embedding resemblyzer)": {**OVERLAP, **GE2E},
    LOCAL_NAME: LOCAL,
    "local-speaker pipeline, pyannote, --exclusive": {**LOCAL, "segmentation.exclusive": True},
    "local-speaker pipeline, mung model (--segmentation mung --segmentation-mode local)": {**LOCAL, **MUNG},
    WINDOWS_NAME: WINDOWS,
    "organiser baseline": {
        **WINDOWS, **GE2E,
        "vad.frame_ms": 30, "vad.ratio": 0.9, "vad.method": "webrtc", "vad.max_gap": 0.0,
        "windows.window": 1.5, "windows.shift": 0.5, "embedding.center": 0.0,
        "clustering.method": "ahc", "clustering.linkage": "complete",
        "clustering.threshold": None,  # re-tuned below
        "clustering.min_cluster_fraction": 0.0, "clustering.refine_iterations": 0,
        "resegment.max_gap": 0.0,
    },
    "windows + pyannote overlap, chunks every 5 s (--overlap-step 5)": {
        **OVERLAP, "segmentation.overlap_step": 5.0},
    FAST: {**OVERLAP, **GE2E, "segmentation.overlap_step": 5.0},
    "windows, webrtc VAD (seed: mode 2, 20 ms, 400 ms)": {**WINDOWS, "vad.method": "webrtc"},
    "windows, AHC only (average, the encoder's threshold)": {**WINDOWS, "clustering.method": "ahc"},
    "windows, spectral clustering": {**WINDOWS, "clustering.method": "spectral"},
    "windows, WPE dereverb": {**WINDOWS, "dereverb.method": "wpe"},
    "windows, UIS-RNN (sim-trained, GE2E)": {**WINDOWS, **GE2E, "clustering.method": "uisrnn",
                                       "clustering.model": str(UISRNN_MODEL)},
}
ORACLE = "local-speaker pipeline with oracle segmentation (reference turns as the model's output)"
ORACLE_OVERLAP = "windows + oracle overlap (reference overlapped frames as the model's detection)"
# rows of the default table (`--all` runs every system above)
MAIN = list(SYSTEMS)[:8]


def uisrnn_model() -> None:
    """Create UISRNN_MODEL with the library calls behind `mung diarize simulate` and `mung diarize
    train-clustering` if it is missing (~5 min on 2 cores)."""
    if UISRNN_MODEL.exists():
        return
    from mung.config import merge
    from mung.diarization.pipeline import DiarizationConfig
    from mung.diarization.simulate import SimulationConfig, simulate, write_simulation
    from mung.diarization.train_clustering import ClusteringTrainConfig, train_clustering

    sim = UISRNN_MODEL.parent / "sim-train"
    recs = simulate(SPEECH, 160, 11, SimulationConfig(backchannel_prob=0.1), prefix="simtrain")
    write_simulation(recs, sim, "simtrain", force=True)
    config = ClusteringTrainConfig(pipeline=merge(DiarizationConfig(), GE2E))
    train_clustering(sim, sim / "simtrain.rttm", UISRNN_MODEL, config, cache=sim / "embeddings.npz")


def peak_mb() -> float:
    """This process's peak resident memory. Linux carries ``ru_maxrss`` across fork + exec, so a
    spawned worker would report its parent's peak (the benchmark itself holds the joined 1-hour
    recording while it writes it); ``VmHWM`` belongs to the process's own address space."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(args: tuple[dict, list[str]]) -> tuple[dict, float, float, float]:
    """In a fresh process: diarize ``files``; return RTTMs, audio seconds, processing seconds,
    peak RSS in MB (the process holds nothing else)."""
    overrides, files = args
    import torch

    from mung.config import merge
    from mung.diarization.pipeline import DiarizationConfig, Diarizer

    torch.set_num_threads(2)
    diarizer = Diarizer(merge(DiarizationConfig(), overrides))
    hyps, audio_s, busy, cpu = {}, 0.0, 0.0, 0.0
    for f in files:
        t0, c0 = time.perf_counter(), time.process_time()
        d = diarizer(f)
        busy += time.perf_counter() - t0
        cpu += time.process_time() - c0
        hyps[d.uri] = d.to_rttm()
        audio_s += d.duration
    return hyps, audio_s, (busy, cpu), peak_mb()


def oracle_segmentation(refs, files: list[Path]) -> dict:
    """Hypotheses of the overlap-aware pipeline fed the reference turns instead of the model's."""
    from mung.diarization.oracle import ReferenceSegmenter
    from mung.diarization.pipeline import Diarizer
    from mung.diarization.segmentation import SegmentationModel

    model = SegmentationModel.load("mung")  # mung's 5-s chunks: the oracle rows' frame grid
    seg = ReferenceSegmenter(model, model.num_frames)
    diarizer = Diarizer(segmenter=seg)
    out = {}
    for f in files:
        seg.start(refs[f.stem].turns, diarizer.local.step_frames * seg.frame_step)
        out[f.stem] = diarizer(f)
    return out


def oracle_overlap(refs, files: list[Path]) -> dict:
    """Hypotheses of the default pipeline with the reference's overlapped frames (two or more
    speakers) as the overlap detection: what a perfect overlap detector would give."""
    from mung.arrays import runs
    from mung.config import merge
    from mung.diarization.detection import FRAME, speakers_per_frame
    from mung.diarization.overlapped import add_second_speaker
    from mung.diarization.pipeline import DiarizationConfig, Diarizer
    from mung.diarization.rttm import Diarization

    diarizer = Diarizer(merge(DiarizationConfig(), WINDOWS))
    out = {}
    for f in files:
        d = diarizer(f)
        both = speakers_per_frame(refs[f.stem], 0.0, d.duration) >= 2
        regions = [(a * FRAME, b * FRAME) for a, b in zip(*runs(both), strict=True)]
        out[f.stem] = Diarization(d.uri, add_second_speaker(d.turns, regions, d.duration), d.duration)
    return out


def run_isolated(overrides: dict, files: list[Path]):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(_run, ((overrides, [str(f) for f in files]),))


def _parse(rttm_texts: dict[str, str]):
    from mung.diarization.rttm import read_rttm

    with tempfile.NamedTemporaryFile("w", suffix=".rttm", delete=False) as tmp:
        tmp.write("".join(rttm_texts.values()))
    hyps = read_rttm(tmp.name)
    Path(tmp.name).unlink()
    return hyps


def _one_speaker(refs):
    from mung.diarization.rttm import Diarization, Turn

    out = {}
    for uri, d in refs.items():
        merged: list[list[float]] = []
        for t in sorted(d.turns):
            if merged and t.start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], t.end)
            else:
                merged.append([t.start, t.end])
        out[uri] = Diarization(uri, [Turn(s, e, "one") for s, e in merged], d.duration)
    return out


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}"


def row(name: str, set_name: str, refs, uem, hyps, rtf: tuple[float, float] | None,
        peak: float | None) -> str:
    from mung.diarization.detection import detection
    from mung.diarization.scoring import score

    rows, with_collar = score(refs, hyps, uem, collar=0.25)
    _, no_collar = score(refs, hyps, uem, collar=0.0)
    count_err = np.mean([abs(r.ref_speakers - r.hyp_speakers) for r in rows])
    overlap = detection(refs, hyps, uem, min_speakers=2)
    fmt = lambda x: f"{100 * x:.2f}"  # noqa: E731
    return (
        f"| {set_name} | {name} | {fmt(with_collar.der)} | {fmt(no_collar.der)} | "
        f"{fmt(with_collar.confusion)} / {fmt(with_collar.miss)} / {fmt(with_collar.false_alarm)} | "
        f"{fmt(with_collar.jer)} | {count_err:.2f} | {_pct(overlap.precision)} / {_pct(overlap.recall)} | "
        f"{'-' if rtf is None else f'{rtf[0]:.4f} ({rtf[1]:.4f})'} | "
        f"{'-' if peak is None else f'{peak:.0f}'} |"
    )


HEADER = (
    "| set | system | DER % (±0.25 s) | DER % (no collar) | conf / miss / FA % (±0.25 s) | JER % | "
    "mean abs spk-count err | overlap P / R % | RTF wall (CPU) | peak MB |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def speech_rows(set_name: str, refs, uem, model_hyps, files: list[Path]) -> list[str]:
    """Speech detection (frames, no collar) of the segmentation model (the local-speaker
    pipeline's output) and of silero-vad with the window pipeline's settings (which the default
    keeps)."""
    from mung import audio
    from mung.diarization.detection import detection
    from mung.diarization.rttm import Diarization, Turn
    from mung.diarization.vad import VADConfig, detect_speech

    silero = {}
    for f in files:
        regions = detect_speech(audio.load(f), VADConfig())
        silero[f.stem] = Diarization(f.stem, [Turn(float(a), float(b), "speech") for a, b in regions])
    out = []
    detectors = (("segmentation model, pyannote (local-speaker pipeline)", model_hyps),
                 ("silero-vad (default and window pipeline)", silero))
    for name, hyps in detectors:
        d = detection(refs, hyps, uem, min_speakers=1)
        out.append(f"| {set_name} | {name} | {_pct(d.precision)} | {_pct(d.recall)} |")
    return out


SPEECH_HEADER = "| set | speech detector | precision % | recall % |\n|---|---|---|---|"


def long_recording(systems: list[str], seconds: float = 3600.0) -> list[str]:
    """RTF and peak memory on one ≥1 h file: every shared recording joined, repeated as needed."""
    import soundfile as sf

    from mung import audio

    wavs = [audio.load(f) for s in SETS for f in sorted((DATA / s).glob("*.ogg"))]
    once = sum(map(len, wavs)) / audio.SAMPLE_RATE
    parts = wavs * math.ceil(seconds / once)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "one-hour.flac"
        sf.write(path, np.concatenate(parts)[: int(seconds * audio.SAMPLE_RATE)], audio.SAMPLE_RATE)
        del parts, wavs
        for name in systems:
            _, audio_s, (busy, cpu), peak = run_isolated(SYSTEMS[name], [path])
            out.append(f"| 1-hour file (all shared sets joined) | {name} | {audio_s / 60:.1f} min | "
                       f"RTF {busy / audio_s:.4f} (CPU {cpu / audio_s:.4f}) | peak {peak:.0f} MB |")
    return out


def retune_threshold(overrides: dict, values: list[float]) -> float:
    """The AHC threshold minimising total DER over all three sets for the given settings."""
    from mung.config import merge
    from mung.diarization.pipeline import DiarizationConfig
    from mung.diarization.rttm import read_rttm, read_uem
    from mung.diarization.tune import TuneGrid, tune

    refs, uem, files = {}, {}, []
    for set_name in SETS:
        refs.update(read_rttm(DATA / set_name / f"{set_name}.rttm"))
        uem.update(read_uem(DATA / set_name / f"{set_name}.uem"))
        files += sorted((DATA / set_name).glob("*.ogg"))
    base = merge(DiarizationConfig(), {k: v for k, v in overrides.items() if v is not None})
    grid = TuneGrid(front_end={}, back_end={"clustering.threshold": values})
    return tune(files, refs, uem, base, grid)[0].settings["clustering.threshold"]


def save_table(lines: list[str], out: Path) -> None:
    """Write a markdown table's ``lines`` to ``out`` (its folder made) and say where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", action="append", choices=list(SYSTEMS),
                    help="systems to run (default: the four main ones; --all: every one)")
    ap.add_argument("--all", action="store_true", help="run every system")
    ap.add_argument("--oracle", action="store_true", help="add the default fed the reference turns")
    ap.add_argument("--long", action="store_true", help="also time a 1-hour recording")
    ap.add_argument("--set", action="append", choices=SETS, help="sets to run (default: all three)")
    ap.add_argument("--extra-set", action="append", type=Path, default=[],
                    help="a folder with audio and <folder>.rttm/.uem, e.g. from `mung diarize simulate "
                    "--rt60 0.4,0.9` (alone unless --set is given too)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "diarization.md")
    args = ap.parse_args()
    systems = args.system or (list(SYSTEMS) if args.all else MAIN)
    if not DATA.exists():
        sys.exit(f"data not found: {DATA}")
    from mung.diarization.rttm import read_rttm, read_uem

    organiser = SYSTEMS["organiser baseline"]
    if organiser["clustering.threshold"] is None and "organiser baseline" in systems:
        thresholds = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
        organiser["clustering.threshold"] = retune_threshold(organiser, thresholds)
        print(f"organiser baseline: threshold re-tuned to {organiser['clustering.threshold']}")
    if any(SYSTEMS[n].get("clustering.method") == "uisrnn" for n in systems):
        uisrnn_model()
    lines, speech = [HEADER], []
    print(HEADER, flush=True)
    sets = args.set or ([] if args.extra_set else SETS)
    for folder in [DATA / s for s in sets] + args.extra_set:
        set_name = folder.name
        refs = read_rttm(folder / f"{set_name}.rttm")
        uem = read_uem(folder / f"{set_name}.uem")
        files = sorted(p for p in folder.iterdir() if p.suffix in (".ogg", ".flac", ".wav"))
        results = [("one speaker (oracle speech)", _one_speaker(refs), None, None)]
        for name in systems:
            texts, audio_s, (busy, cpu), peak = run_isolated(SYSTEMS[name], files)
            results.append((name, _parse(texts), (busy / audio_s, cpu / audio_s), peak))
        if args.oracle:
            results.append((ORACLE_OVERLAP, oracle_overlap(refs, files), None, None))
            results.append((ORACLE, oracle_segmentation(refs, files), None, None))
        for name, hyps, rtf, peak in results:
            line = row(name, set_name, refs, uem, hyps, rtf, peak)
            lines.append(line)
            print(line, flush=True)
        if LOCAL_NAME in systems:
            model_hyps = next(h for n, h, _, _ in results if n == LOCAL_NAME)
            speech += speech_rows(set_name, refs, uem, model_hyps, files)
    if speech:
        lines += ["", SPEECH_HEADER, *speech]
        print("\n".join(["", SPEECH_HEADER, *speech]), flush=True)
    if args.long:
        timed = [n for n in (DEFAULT, PREVIOUS, MAIN[2], LOCAL_NAME, WINDOWS_NAME, FAST) if n in systems]
        long = long_recording(timed or systems[:1])
        lines += ["", "| long file | system | length | speed | memory |", "|---|---|---|---|---|", *long]
        print("\n".join(long), flush=True)
    save_table(lines, args.out)


if __name__ == "__main__":
    main()
