"""Shared fixtures: the real data sets in ../shared/data (tests skip clearly when absent)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from mung.cli import main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# files mung derives from installed packages (CAM++'s ONNX graph) go to a temporary folder, not
# the user's ~/.cache, unless MUNG_CACHE names one
os.environ.setdefault("MUNG_CACHE", tempfile.mkdtemp(prefix="mung-test-cache-"))


def data_dir(*parts: str) -> Path:
    """``../shared/data/<parts>``, or skip the test saying what is missing."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (clone with ../shared beside the repo)")
    return path


@pytest.fixture
def ami_dir() -> Path:
    return data_dir("diarization", "ami-excerpts")


@pytest.fixture
def calls_dir() -> Path:
    return data_dir("diarization", "real-conversations")


@pytest.fixture
def sim_dir() -> Path:
    return data_dir("diarization", "sim-dev")


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``mung ARGS`` in-process; (exit code, stdout, stderr)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def one_thread():
    """Small convolutions run faster on one thread on a shared 2-core machine."""
    from mung.torchutil import torch_threads

    with torch_threads(1):
        yield
