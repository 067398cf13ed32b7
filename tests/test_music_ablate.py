"""`mung music ablate --quick` on a few real clips (one claim, to stay within the test budget),
and the verdict rule on hand cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from music_fixtures import music_dir, one_thread  # noqa: F401 (fixture)

from mung.cli import main
from mung.music.ablate import verdict

pytestmark = pytest.mark.usefixtures("one_thread")


def test_verdict_rule():
    assert verdict(np.array([0.05, 0.06, 0.04]), "+")[0] == "agrees"
    assert verdict(np.array([-0.05, -0.06, -0.04]), "+")[0] == "disagrees"
    assert verdict(np.array([0.05, -0.06, 0.01]), "-")[0] == "inconclusive"
    assert verdict(np.array([0.001, -0.002, 0.0]), "=")[0] == "agrees"


def test_quick_ablation_writes_report(tmp_path, capsys):
    out = tmp_path / "abl"
    try:
        main(["music", "ablate", "--data", str(music_dir()), "--out", str(out), "--quick", "--only", "focal"])
    except SystemExit as exc:
        assert exc.code == 0
    result = json.loads((out / "ablation.json").read_text())
    (row,) = result["claims"]
    assert row["claim"] == "focal loss vs cross-entropy" and row["claimed"] == "="
    assert row["verdict"] in {"agrees", "disagrees", "inconclusive"}
    assert (out / "ablation.png").exists()
    assert "| claim |" in (out / "ablation.md").read_text()
