"""Scale benchmark: the same catalogue job with local worker processes and with Ray.

Tagging (shipped music model, 30-s clips of ../shared/data/music-4q) in tracks/s, and
diarization (default pipeline, the 30-s AMI excerpts of ../shared/data/diarization) in
audio-hours per hour, each with ``--jobs 1``, ``--jobs 2``, ``--engine ray`` with 1 and 2
workers, all writing the same Parquet dataset (mung.dataset.run_table). Each run is a fresh
subprocess with one BLAS/torch thread per worker (OMP_NUM_THREADS=1), so "driver peak MB" is
the driver's own peak resident memory (workers excluded).
Wall time includes starting the workers and loading the models in them; "Ray start" is the
``ray.init()`` of a local 2-CPU instance, measured apart. Efficiency = speed with 2 workers /
(2 × speed with 1).

    python benchmarks/scale.py [--tracks 24] [--out benchmarks/results/scale.md]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CONFIGS = [("local", 1), ("local", 2), ("ray", 1), ("ray", 2)]


def inputs(kind: str, n: int) -> list[str]:
    if kind == "tag":
        return [str(p) for p in sorted((DATA / "music-4q" / "audio").glob("*.ogg"))[:n]]
    return [str(p) for p in sorted((DATA / "diarization" / "ami-excerpts").glob("*.ogg"))[:n]]


def one(kind: str, engine: str, jobs: int, n: int) -> dict:
    """Run one configuration in this process and return its measurements."""
    import soundfile as sf

    from mung import dataset
    from mung.dataset import run_table

    finished: list[float] = []
    add = dataset.ParquetDataset.add

    def timed_add(self, *args, **kwargs):  # the driver's clock at each finished input
        finished.append(time.perf_counter())
        return add(self, *args, **kwargs)

    dataset.ParquetDataset.add = timed_add

    files = inputs(kind, n)
    seconds = sum(sf.info(f).duration for f in files)
    ray_start = None
    if engine == "ray":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_start = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "tag":
            from mung.music.catalogue import TagTable

            task = TagTable([])
        else:
            from mung.diarization.catalogue import DiarizeTable
            from mung.diarization.pipeline import DiarizationConfig

            task = DiarizeTable(DiarizationConfig(), Path(tmp) / "ds")
        t = time.perf_counter()
        report = run_table(task, files, Path(tmp) / "ds", engine=engine, jobs=jobs, progress=False)
        wall = time.perf_counter() - t
    if engine == "ray":
        ray.shutdown()
    assert report.ok, report.summary()
    # steady state: from the first finished input to the last (worker start-up and model loading
    # excluded); the first input of each worker is dropped as a whole
    steady = (len(files) - jobs) / (finished[-1] - finished[jobs - 1])
    return {"kind": kind, "engine": engine, "jobs": jobs, "files": len(files), "audio_s": seconds,
            "wall_s": wall, "first_s": finished[0] - t, "steady_per_s": steady, "ray_start_s": ray_start,
            "driver_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def table(results: list[dict]) -> str:
    lines = ["| job | engine | workers | files | Ray start s | first result s | wall s | speed (wall) "
             "| speed (steady) | efficiency | driver MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base: dict[tuple[str, str], float] = {}
    for r in results:
        # audio seconds per second = audio hours per hour
        scale, unit = (1.0, "tracks/s") if r["kind"] == "tag" else (r["audio_s"] / r["files"], "audio-h/h")
        wall, steady = r["files"] / r["wall_s"] * scale, r["steady_per_s"] * scale
        key = (r["kind"], r["engine"])
        if r["jobs"] == 1:
            base[key] = steady
        eff = f"{steady / (2 * base[key]):.0%}" if r["jobs"] == 2 and key in base else "—"
        start = f"{r['ray_start_s']:.1f}" if r["ray_start_s"] is not None else "—"
        lines.append(f"| {r['kind']} | {r['engine']} | {r['jobs']} | {r['files']} | {start} | "
                     f"{r['first_s']:.1f} | {r['wall_s']:.1f} | {wall:.2f} {unit} | {steady:.2f} {unit} "
                     f"| {eff} | "
                     f"{r['driver_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=48, help="Music clips to tag.")
    ap.add_argument("--recordings", type=int, default=8, help="AMI excerpts to diarize (8 available).")
    ap.add_argument("--only", choices=["tag", "diarize"], help="One of the two jobs.")
    ap.add_argument("--out", type=Path, help="Also write the table (Markdown) here.")
    ap.add_argument("--one", nargs=3, metavar=("KIND", "ENGINE", "JOBS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        kind, engine, jobs = args.one
        n = args.tracks if kind == "tag" else args.recordings
        print(json.dumps(one(kind, engine, int(jobs), n)))
        return
    results = []
    for kind in [args.only] if args.only else ["tag", "diarize"]:
        for engine, jobs in CONFIGS:
            cmd = [sys.executable, __file__, "--one", kind, engine, str(jobs), "--tracks", str(args.tracks),
                   "--recordings", str(args.recordings)]
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # one core per worker
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    text = table(results)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
