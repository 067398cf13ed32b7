"""The batch runner: checks before work, per-item errors, atomic writes as items finish, resume,
Ctrl-C (a real SIGINT to a real `mung diarize` batch, with and without --jobs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf

from mung import audio, outputs
from mung.batch import BatchItem, BatchReport, items_from_paths, run_batch, safe_uri
from mung.diarization.rttm import read_rttm
from mung.errors import MungError


@dataclass
class Upper:
    """Writes OUT/<uri>.txt (the input's text upper-cased); inputs starting with 'bad' fail."""

    out: Path
    name: str = "upper"
    setups: int = 0

    def setup(self) -> None:
        self.setups += 1

    def outputs(self, item: BatchItem) -> list[Path]:
        return [self.out / f"{item.uri}.txt"]

    def process(self, item: BatchItem) -> str:
        text = item.path.read_text()
        if text.startswith("bad"):
            raise MungError(f"{item.path}: bad content")
        if text.startswith("crash"):
            raise ValueError("boom")
        return text.upper()

    def write(self, item: BatchItem, result: str) -> None:
        outputs.write_text(self.outputs(item)[0], result, force=True)


def _inputs(tmp_path: Path, **files: str) -> list[BatchItem]:
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    items = []
    for name, text in files.items():
        (src / f"{name}.txt").write_text(text)
        items.append(BatchItem(src / f"{name}.txt", name))
    return items


def test_bad_item_is_one_line_and_the_rest_is_processed(tmp_path, capsys):
    items = _inputs(tmp_path, a="one", b="bad", c="crash", d="four")
    report = run_batch(Upper(tmp_path / "out"), items, progress=False)
    assert report.done == ["a", "d"] and sorted(report.failed) == ["b", "c"] and not report.ok
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].endswith("b.txt: bad content") and "ValueError: boom" in err[1]
    assert (tmp_path / "out" / "d.txt").read_text() == "FOUR"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "d.txt"]


def test_rerun_skips_finished_items_and_force_redoes_them(tmp_path):
    items = _inputs(tmp_path, a="one", b="two")
    task = Upper(tmp_path / "out")
    assert run_batch(task, items[:1], progress=False).done == ["a"]
    report = run_batch(task, items, progress=False)
    assert report.skipped == ["a"] and report.done == ["b"] and report.ok
    (tmp_path / "in" / "a.txt").write_text("new")
    assert run_batch(task, items, force=True, progress=False).done == ["a", "b"]
    assert (tmp_path / "out" / "a.txt").read_text() == "NEW"


def test_item_with_only_some_outputs_is_refused_without_force(tmp_path):
    @dataclass
    class Two(Upper):
        def outputs(self, item):
            return [self.out / f"{item.uri}.txt", self.out / f"{item.uri}.json"]

    items = _inputs(tmp_path, a="one")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("old")
    with pytest.raises(MungError, match=r"a\.txt exists but .*a\.json does not"):
        run_batch(Two(tmp_path / "out"), items, progress=False)


def test_missing_or_unreadable_input_is_refused_before_any_work(tmp_path):
    items = _inputs(tmp_path, a="one")
    task = Upper(tmp_path / "out")
    with pytest.raises(MungError, match=r"nope\.txt: file not found; nothing was processed"):
        run_batch(task, [*items, BatchItem(tmp_path / "nope.txt", "nope")], progress=False)
    with pytest.raises(MungError, match="is a directory"):
        run_batch(task, [*items, BatchItem(tmp_path, "x")], progress=False)
    assert task.setups == 0 and not (tmp_path / "out" / "a.txt").exists()


def test_output_name_clash_is_refused_before_any_work(tmp_path):
    (tmp_path / "sub").mkdir()
    for p in (tmp_path / "a.txt", tmp_path / "sub" / "a.txt"):
        p.write_text("x")
    items = items_from_paths([tmp_path / "a.txt", tmp_path / "sub"], suffixes=(".txt",))
    task = Upper(tmp_path / "out")
    for force in (False, True):
        with pytest.raises(MungError, match=r"a\.txt and .*sub/a\.txt would both be written to"):
            run_batch(task, items, force=force, progress=False)
    assert task.setups == 0


def test_output_folder_that_is_a_file_is_one_clear_error(tmp_path):
    items = _inputs(tmp_path, a="one")
    (tmp_path / "out").write_text("i am a file")
    with pytest.raises(MungError, match="output folder is an existing file"):
        run_batch(Upper(tmp_path / "out" / "deeper"), items, progress=False)


def test_unwritable_output_folder_is_one_clear_error(tmp_path, monkeypatch):
    """As root (who writes anywhere) the refusal is simulated; the real case follows."""
    import mung.outputs

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(mung.outputs.tempfile, "TemporaryFile", refuse)
    with pytest.raises(MungError, match=r"out: output folder is not writable \(Permission denied\)"):
        run_batch(Upper(tmp_path / "out"), _inputs(tmp_path, a="one"), progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_one_clear_error(tmp_path):
    items = _inputs(tmp_path, a="one")
    (tmp_path / "out").mkdir()
    (tmp_path / "out").chmod(0o555)
    with pytest.raises(MungError, match="output folder is not writable"):
        run_batch(Upper(tmp_path / "out"), items, progress=False)


def test_same_file_twice_is_one_item_and_whitespace_becomes_underscore(tmp_path):
    (tmp_path / "my  talk.wav").write_bytes(b"")
    items = items_from_paths([tmp_path / "my  talk.wav", tmp_path / "." / "my  talk.wav"])
    assert [it.uri for it in items] == ["my_talk"] and safe_uri(" a\tb c ") == "a_b_c"


def test_worker_pool_gives_the_same_outputs(tmp_path):
    items = _inputs(tmp_path, a="one", b="bad", c="three")
    report = run_batch(Upper(tmp_path / "out"), items, jobs=2, progress=False)
    assert sorted(report.done) == ["a", "c"] and list(report.failed) == ["b"]
    assert (tmp_path / "out" / "c.txt").read_text() == "THREE"


def test_report_ok_and_summary():
    assert BatchReport(done=["a"]).ok and not BatchReport(interrupted=True).ok
    assert "1 failed" in BatchReport(failed={"b": "x"}).summary()
    assert BatchReport(interrupted=True).summary().startswith("interrupted")


# A real interrupt: `mung diarize` on real audio in a subprocess, SIGINT once the first result is
# written. Finished items must be complete (RTTM + JSON + PNG, all valid), nothing partial or
# temporary left, exit code 130; a re-run finishes the rest.

AMI = ("EN2001e_0000-0030", "EN2009b_0000-0030", "ES2003a_0000-0030")


def _start(src: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mung", "diarize", "run", str(src), "--out", str(out), "--json", "--plot",
           *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _check_outputs_whole(out: Path) -> set[str]:
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.startswith(".")], f"temporary files left: {names}"
    done = {n[: -len(".rttm")] for n in names if n.endswith(".rttm")}
    for uri in done:
        assert {f"{uri}.json", f"{uri}.png"} <= names, f"{uri}: partial outputs {names}"
        assert read_rttm(out / f"{uri}.rttm")[uri].turns
        assert (out / f"{uri}.png").stat().st_size > 1000
    assert names - {"config.yaml"} == {f"{u}{e}" for u in done for e in (".rttm", ".json", ".png")}
    return done


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigint_keeps_finished_outputs_and_leaves_nothing_partial(tmp_path, ami_dir, jobs):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for uri in AMI:  # the first 12 s of each excerpt: real speech, a shorter test
        sf.write(src / f"{uri}.wav", audio.load(ami_dir / f"{uri}.ogg", duration=12.0), audio.SAMPLE_RATE)
    proc = _start(src, out, "--jobs", jobs)
    deadline = time.monotonic() + 300
    while not (out.exists() and any(out.glob("*.rttm"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no output after 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err, err
    done = _check_outputs_whole(out)
    assert 1 <= len(done) < len(AMI)
    if jobs == "1":  # a re-run resumes: skips what finished, does the rest
        proc = _start(src, out)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert f"{len(AMI) - len(done)} done, {len(done)} skipped" in err
        assert _check_outputs_whole(out) == set(AMI)
