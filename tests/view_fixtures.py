"""Real results pages for the view tests, made once per session: `mung diarize --html --ref` on one
AMI excerpt, and the shipped music model's tags for one validation clip per station."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import data_dir, run_cli
from music_fixtures import music_dir

from mung.music.tag import tag
from mung.view import write_music_page

URI = "EN2009b_0000-0030"
_MADE: dict[str, object] = {}


def page_data(out: Path) -> dict:
    """The page's ``window.MUNG_INDEX``."""
    text = (out / "view-data" / "index.js").read_text()
    return json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))


def item_data(out: Path, i: int) -> dict:
    """The details of item ``i`` (``window.MUNG_DETAIL(i, ...)``)."""
    text = (out / "view-data" / f"item-{i}.js").read_text()
    return json.loads(text[text.index(", ") + 2:].rstrip().rstrip(";").rstrip(")"))


@pytest.fixture
def diar_page(tmp_path_factory, capsys) -> tuple[Path, Path, str]:
    """(page folder, reference RTTM, uri) of a real diarizer run with a reference."""
    if "diar" not in _MADE:
        ami = data_dir("diarization", "ami-excerpts")
        out = tmp_path_factory.mktemp("diar-page")
        ref = ami / "ami-excerpts.rttm"
        code, _, err = run_cli(capsys, "diarize", ami / f"{URI}.ogg", "--out", out, "--html", "--ref", ref)
        assert code == 0, err
        _MADE["diar"] = (out, ref, URI)
    return _MADE["diar"]


def val_clips(per_station: int = 1) -> list[Path]:
    with open(music_dir() / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    return [music_dir() / r["file"] for q in ("Q1", "Q2", "Q3", "Q4")
            for r in [r for r in rows if r["station"] == q][:per_station]]


@pytest.fixture
def music_page(tmp_path_factory) -> tuple[Path, list[dict]]:
    """(page folder, tag rows) for real clips, with the real labels CSV."""
    if "music" not in _MADE:
        tags = tag([], val_clips(2))
        out = tmp_path_factory.mktemp("music-page")
        write_music_page(out, tags, labels=music_dir() / "labels.csv")
        _MADE["music"] = (out, tags)
    return _MADE["music"]
