"""Catalogue-scale jobs on a real local Ray instance (started once for the module, 2 CPUs):
missing and corrupt inputs, a worker killed mid-job, an interrupted run re-run, an unreachable
cluster address, a dataset written by another model version."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import run_cli
from music_fixtures import MUSIC, music_dir

from mung.batch import BatchItem
from mung.cli import main
from mung.dataset import ModelId, TableTask, read_table, run_table
from mung.manifest import read_inputs

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers can't import tests/
    yield
    ray.shutdown()


def clips(n: int) -> list[Path]:
    music_dir()
    return sorted((MUSIC / "audio").glob("*.ogg"))[:n]


@pytest.fixture(scope="module")
def tagged(local_ray, tmp_path_factory):
    """One ray run over a CSV manifest: 3 real clips, a corrupt file, a missing file."""
    tmp = tmp_path_factory.mktemp("tag")
    bad = tmp / "corrupt.ogg"
    bad.write_bytes(b"OggS" + os.urandom(2000))
    manifest = tmp / "tracks.csv"
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "artist"])
        for p in [*clips(3), bad, tmp / "gone.ogg"]:
            w.writerow([p, "x"])
    out = tmp / "ds"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(["music", "tag", str(manifest), "--engine", "ray", "-j", "2", "--dataset", str(out)])
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    return code, err.getvalue(), out, manifest


def test_missing_and_corrupt_inputs_go_to_the_failures_table(tagged):
    code, err, out, _ = tagged
    assert code == 1, err
    tracks = read_table(out, "tracks").to_pylist()
    assert sorted(r["uri"] for r in tracks) == sorted(p.stem for p in clips(3))
    assert all(r["station"] in ("Q1", "Q2", "Q3", "Q4") and r["model"].startswith("shipped:") for r in tracks)
    assert all(abs(sum(dict(r["station_probs"]).values()) - 1) < 1e-3 for r in tracks)
    failures = {Path(r["path"]).name: r["error"] for r in read_table(out, "failures").to_pylist()}
    assert set(failures) == {"corrupt.ogg", "gone.ogg"}
    assert "file not found" in failures["gone.ogg"]
    assert "\n" not in failures["corrupt.ogg"] and "corrupt.ogg" in failures["corrupt.ogg"]
    assert "1 input(s) not found" in err and "2 failed" not in err  # missing counted apart
    assert "1 failed, 1 not found" in err


def test_rerun_skips_done_tracks_and_retries_failures(tagged, capsys):
    _, _, out, manifest = tagged
    shutil.copy(clips(4)[3], manifest.parent / "corrupt.ogg")  # the user replaces the bad file
    code, _, err = run_cli(capsys, "music", "tag", manifest, "--engine", "ray", "--dataset", out)
    assert code == 1  # still one missing input
    assert "1 done, 3 skipped" in err
    assert sorted(r["uri"] for r in read_table(out, "tracks").to_pylist()) == sorted(
        [p.stem for p in clips(3)] + ["corrupt"])  # no duplicate rows
    assert [Path(r["path"]).name for r in read_table(out, "failures").to_pylist()] == ["gone.ogg"]


def test_other_model_version_refused_without_force(tagged, capsys):
    _, _, out, _ = tagged
    clip = clips(1)[0]
    code, _, err = run_cli(capsys, "music", "tag", clip, "--weights", "1,0,0", "--engine", "ray",
                           "--dataset", out)
    assert code == 1
    assert "written by tracks model shipped:" in err and "version" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert len(read_table(out, "tracks")) == 4  # untouched


def test_unreachable_address_is_one_line(local_ray, tmp_path, capsys):
    code, _, err = run_cli(capsys, "music", "tag", clips(1)[0], "--engine", "ray", "--address",
                           "127.0.0.1:9", "--dataset", tmp_path / "ds")
    assert code == 1
    assert err.strip().startswith("error: --address 127.0.0.1:9: no Ray cluster reachable")
    assert len(err.strip().splitlines()) == 1


class SizeTask(TableTask):
    """A model-free task: the file's size. ``kill`` names a file whose first attempt kills the
    worker process (a marker file makes the retry succeed); ``interrupt_after`` raises Ctrl-C in
    the driver after that many results were written."""

    name = "size"
    table = "sizes"

    def __init__(self, marker: Path | None = None, kill: str = "", interrupt_after: int = 0):
        import pyarrow as pa

        self.schema = pa.schema([("uri", pa.string()), ("path", pa.string()), ("bytes", pa.int64())])
        self.marker, self.kill, self.interrupt_after, self.written = marker, kill, interrupt_after, 0

    def model_id(self) -> ModelId:
        return ModelId("size", "1")

    def setup(self) -> None:
        self.state = True

    def load(self, item: BatchItem) -> int:
        if item.uri == self.kill and not self.marker.exists():
            self.marker.write_text("killed once")
            os._exit(1)  # the worker process dies mid-job
        return item.path.stat().st_size

    def infer(self, item: BatchItem, size: int) -> int:
        return size

    def rows(self, item: BatchItem, size: int) -> list[dict]:
        self.written += 1
        if self.interrupt_after and self.written > self.interrupt_after:
            raise KeyboardInterrupt
        return [{"uri": item.uri, "path": str(item.path), "bytes": size}]


def test_killed_worker_inputs_are_retried_once_each(local_ray, tmp_path):
    files = clips(6)
    task = SizeTask(tmp_path / "marker", kill=files[2].stem)
    report = run_table(task, [str(f) for f in files], tmp_path / "ds", engine="ray", jobs=2, progress=False)
    assert (tmp_path / "marker").exists()  # a worker really died
    assert report.ok, report.batch.failed
    rows = read_table(tmp_path / "ds", "sizes").to_pylist()
    assert Counter(r["uri"] for r in rows) == Counter(f.stem for f in files)  # each exactly once
    assert all(r["bytes"] == Path(r["path"]).stat().st_size for r in rows)


def test_interrupted_run_rerun_does_the_rest_without_duplicates(local_ray, tmp_path):
    files = clips(5)
    inputs = [str(f) for f in files]
    first = run_table(SizeTask(interrupt_after=2), inputs, tmp_path / "ds", engine="ray", jobs=2,
                      progress=False, part_items=1)
    assert first.batch.interrupted and len(first.batch.done) == 2
    assert len(read_table(tmp_path / "ds", "sizes")) == 2  # what finished was kept
    second = run_table(SizeTask(), inputs, tmp_path / "ds", engine="ray", jobs=2, progress=False)
    assert second.ok and len(second.batch.skipped) == 2 and len(second.batch.done) == 3
    rows = read_table(tmp_path / "ds", "sizes").to_pylist()
    assert Counter(r["uri"] for r in rows) == Counter(f.stem for f in files)


def test_changed_file_is_redone_and_its_old_row_dropped(local_ray, tmp_path):
    files = [shutil.copy(f, tmp_path / f.name) for f in clips(2)]
    run_table(SizeTask(), files, tmp_path / "ds", engine="ray", jobs=1, progress=False)
    with open(files[0], "ab") as f:
        f.write(b"\0" * 10)  # same path, new content
    again = run_table(SizeTask(), files, tmp_path / "ds", engine="ray", jobs=1, progress=False)
    assert again.batch.done == [Path(files[0]).stem] and len(again.batch.skipped) == 1
    rows = {r["uri"]: r["bytes"] for r in read_table(tmp_path / "ds", "sizes").to_pylist()}
    assert len(rows) == 2 and rows[Path(files[0]).stem] == Path(files[0]).stat().st_size


def test_manifest_formats_and_uris(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    src = clips(1)[0]
    for d in (a, b):
        shutil.copy(src, d / "x.ogg")
    (tmp_path / "list.txt").write_text("# two tracks with one name\na/x.ogg\n\nb/x.ogg\nmissing.ogg\n")
    pq.write_table(pa.table({"path": ["a/x.ogg"]}), tmp_path / "list.parquet")
    found = read_inputs([tmp_path / "list.txt"])
    assert [i.uri for i in found.items] == ["a__x", "b__x"]
    assert found.missing == [tmp_path / "missing.ogg"]
    assert [i.path for i in read_inputs([tmp_path / "list.parquet"]).items] == [a / "x.ogg"]
    assert len(read_inputs([str(tmp_path / "*" / "x.ogg")]).items) == 2
    (tmp_path / "bad.csv").write_text("file\nx.ogg\n")
    with pytest.raises(Exception, match="no 'path' column"):
        read_inputs([tmp_path / "bad.csv"])


def test_diarize_and_embed_datasets_local_engine(tmp_path, capsys):
    import numpy as np
    from conftest import data_dir

    from mung.diarization.rttm import read_rttm

    ami = data_dir("diarization", "ami-excerpts")
    clip = sorted(ami.glob("*.ogg"))[0]
    code, _, err = run_cli(capsys, "diarize", "run", clip, "--dataset", tmp_path / "d")
    assert code == 0, err
    turns = read_table(tmp_path / "d", "turns").to_pylist()
    rttm = read_rttm(tmp_path / "d" / "rttm" / f"{clip.stem}.rttm")[clip.stem]
    assert len(turns) == len(rttm.turns) > 0
    for row, t in zip(turns, sorted(rttm.turns), strict=True):  # the RTTM keeps 3 decimals
        assert row["speaker"] == t.speaker and abs(row["start"] - t.start) < 2e-3
        assert abs(row["end"] - t.end) < 2e-3
    code, _, err = run_cli(capsys, "speaker", "embed", clip, "--dataset", tmp_path / "e")
    assert code == 0, err
    (row,) = read_table(tmp_path / "e", "embeddings").to_pylist()
    assert row["uri"] == clip.stem and abs(np.linalg.norm(row["embedding"]) - 1) < 1e-3
