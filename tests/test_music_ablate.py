"""`mung music ablate --quick` on a few real clips (one claim, to stay within the test budget),
and the verdict rule on hand cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from music_fixtures import music_dir

from mung.cli import main
from mung.music.ablate import verdict

pytestmark = pytest.mark.usefixtures("one_thread")


def test_verdict_rule():
    assert verdict(np.array([0.05, 0.06, 0.04]), "+")[0] == "agrees"
    assert verdict(np.array([-0.05, -0.06, -0.04]), "+")[0] == "disagrees"
    assert verdict(np.array([0.05, -0.06, 0.01]), "-")[0] == "inconclusive"
    assert verdict(np.array([0.001, -0.002, 0.0]), "=")[0] == "agrees"
    assert verdict(np.array([0.05, 0.06, 0.04]), "=")[0] == "disagrees"
    # every seed one clip worse: p = 0, but below the 0.02 minimum effect
    assert verdict(np.full(3, -1 / 144), "-") == ("inconclusive", 0.0)


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


def test_quick_ablation_ensemble_and_attention(tmp_path, capsys):
    """The two claims that reuse other runs: the ensemble averages its members' val probabilities,
    the attention arm loads the other task's baseline as its frozen auxiliary."""
    out = tmp_path / "abl"
    code, _, err = run_cli(capsys, "music", "ablate", "--data", music_dir(), "--out", out, "--quick",
                           "--only", "ensemble", "--only", "attention", "--task", "station")
    assert code == 0, err
    rows = {r["claim"]: r for r in json.loads((out / "ablation.json").read_text())["claims"]}
    assert set(rows) == {"attention map from frozen mood tagger", "4-model ensemble vs best single member"}
    assert (out / "runs" / "base-mood-0" / "model.safetensors").exists()  # the attention's auxiliary
    assert (out / "runs" / "resnext50-station-1" / "model.safetensors").exists()


@pytest.mark.parametrize("args, message", [
    (["--seeds", "1"], "at least 2 seeds"),
    (["--only", "no-such-claim"], "no claim matches"),
])
def test_ablation_bad_settings(tmp_path, capsys, args, message):
    code, _, err = run_cli(capsys, "music", "ablate", "--data", music_dir(), "--out", tmp_path, *args)
    assert code != 0 and message in err and "Traceback" not in err


def test_ablation_missing_data_and_no_overwrite(tmp_path, capsys):
    code, _, err = run_cli(capsys, "music", "ablate", "--data", tmp_path / "nope", "--out", tmp_path / "o",
                           "--quick", "--only", "focal")
    assert code != 0 and "nope" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "ablation.md").write_text("earlier")
    code, _, err = run_cli(capsys, "music", "ablate", "--data", music_dir(), "--out", tmp_path / "o",
                           "--quick", "--only", "focal")
    assert code != 0 and "--force" in err
    assert (tmp_path / "o" / "ablation.md").read_text() == "earlier"
