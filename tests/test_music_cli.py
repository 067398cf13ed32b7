"""End to end on a few real clips: CLI train → tag → evaluate, ensembles, bad input, and the
shipped default model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from music_fixtures import MUSIC, rows, write_labels

from mung.cli import main
from mung.errors import MungError
from mung.music.ensemble import Ensemble
from mung.music.model_io import default_checkpoints, load_music_model
from mung.music.tag import tag

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny multi-task CRNN trained for 2 epochs on 8 real clips (4 for validation)."""
    root = tmp_path_factory.mktemp("music")
    labels = write_labels(root / "labels.csv", train_per=2, val_per=1)
    run = root / "run"
    main_args = ["music", "train", "--task", "multi", "--model", "crnn", "--model-args",
                 '{"channels": [8, 8, 8, 8], "hidden": 8}', "--data", str(labels), "--out", str(run),
                 "--epochs", "2", "--crop-frames", "64", "--batch-size", "4", "--cache", str(root / "cache")]
    try:
        main(main_args)
    except SystemExit as exc:
        assert exc.code == 0
    return root, labels, run


def test_train_writes_run_folder(trained):
    _, _, run = trained
    for name in ("model.safetensors", "metrics.csv", "curves.png"):
        assert (run / name).exists(), name
    ck = load_music_model(run)
    assert ck.meta["task"] == "multi" and ck.meta["stations"] == ["Q1", "Q2", "Q3", "Q4"]
    assert ck.meta["mel"]["n_mels"] == 128 and ck.meta["crop_frames"] == 64
    assert "station_accuracy" in ck.meta["val_metrics"]


def test_tag_json_contract(trained, capsys):
    _, _, run = trained
    clip = MUSIC / rows(1, "val")[0]["file"]
    code, out, err = run_cli(capsys, "music", "tag", str(run), str(clip), "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert set(row) == {"file", "station", "station_probs", "moods", "mood_scores"}
    assert row["station"] in row["station_probs"] and abs(sum(row["station_probs"].values()) - 1) < 1e-3
    thr = load_music_model(run).meta["mood_threshold"]
    assert all(row["mood_scores"][m] >= thr for m in row["moods"])
    code, out, _ = run_cli(capsys, "music", "tag", str(run), str(clip), "--format", "csv")
    assert code == 0 and out.splitlines()[0].startswith("file,station,moods")
    code, out, _ = run_cli(capsys, "music", "tag", str(run), str(clip), "--format", "competition")
    assert code == 0 and json.loads(out)["station_name"] == {"0": row["station"]}


def test_evaluate_writes_metrics_and_confusion(trained, capsys):
    root, labels, run = trained
    out_dir = root / "eval"
    code, out, err = run_cli(capsys, "music", "evaluate", run, "--data", labels, "--out", out_dir)
    assert code == 0, err
    metrics = json.loads(out)
    for key in ("station_accuracy", "station_macro_f1", "mood_micro_f1@0.5", "mood_micro_f1@tuned",
                "mood_macro_roc_auc", "mood_macro_pr_auc"):
        assert key in metrics
    assert (out_dir / "confusion.png").exists() and (out_dir / "metrics.json").exists()
    code, _, err = run_cli(capsys, "music", "evaluate", run, "--data", labels, "--out", out_dir)
    assert code == 1 and "--force" in err and "Traceback" not in err


def test_ensemble_of_identical_checkpoints_equals_single(trained):
    _, _, run = trained
    clip = MUSIC / rows(1, "val")[0]["file"]
    single = tag([run], [clip])[0]
    double = tag([run, run], [clip], weights=[0.3, 0.7])[0]
    for key in ("station_probs", "mood_scores"):
        np.testing.assert_allclose(list(single[key].values()), list(double[key].values()), atol=1e-4)


def test_bad_inputs_are_one_line_errors(trained, tmp_path, capsys):
    root, labels, run = trained
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 5), np.float32))
    code, _, err = run_cli(capsys, "music", "tag", str(run), str(bad))
    assert code == 1 and "bad.npy" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "music", "tag", str(run), str(tmp_path / "missing.ogg"))
    assert code == 1 and "missing.ogg" in err
    # a station outside the vocabulary / a listed file that is missing
    text = labels.read_text().splitlines()
    (tmp_path / "odd.csv").write_text("\n".join([text[0], text[1].replace(",Q1,", ",Q9,")]))
    code, _, err = run_cli(capsys, "music", "evaluate", str(run), "--data", str(tmp_path / "odd.csv"),
                            "--split", "all")
    assert code == 1 and "Q9" in err
    first = text[1].split(",")
    row = ",".join([first[0], first[1], "not-a-mood|calm", *first[3:]])
    (tmp_path / "mood.csv").write_text(f"{text[0]}\n{row}\n")
    code, _, err = run_cli(capsys, "music", "evaluate", str(run), "--data", str(tmp_path / "mood.csv"),
                            "--split", "all")
    assert code == 1 and "not-a-mood" in err and "Traceback" not in err
    (tmp_path / "gone.csv").write_text(f"file,station,moods\n{tmp_path}/nothing.ogg,Q1,calm\n")
    code, _, err = run_cli(capsys, "music", "evaluate", str(run), "--data", str(tmp_path / "gone.csv"))
    assert code == 1 and "nothing.ogg" in err and "missing" in err


def test_ensemble_of_different_tasks_refused(trained, tmp_path):
    _, labels, run = trained
    other = tmp_path / "station"
    main_ok = ["music", "train", "--task", "station", "--model", "melstats", "--data", str(labels),
               "--out", str(other), "--epochs", "1", "--crop-frames", "64"]
    try:
        main(main_ok)
    except SystemExit as exc:
        assert exc.code == 0
    with pytest.raises(MungError, match="task"):
        Ensemble([run, other])


def test_ensemble_of_different_vocabularies_refused(trained, tmp_path, capsys):
    """Same task, but the second model was trained on labels with one extra mood."""
    _, labels, run = trained
    lines = labels.read_text().splitlines()
    header, first = lines[0], lines[1].split(",")
    first[2] = first[2] + "|an-extra-mood"
    (tmp_path / "more.csv").write_text("\n".join([header, ",".join(first), *lines[2:]]) + "\n")
    other = tmp_path / "multi"
    code, _, err = run_cli(capsys, "music", "train", "--task", "multi", "--model", "melstats", "--data",
                           tmp_path / "more.csv", "--out", other, "--epochs", "1", "--crop-frames", "64")
    assert code == 0, err
    code, _, err = run_cli(capsys, "music", "tag", run, other, MUSIC / rows(1, "val")[0]["file"])
    assert code == 1 and "moods differs" in err and "Traceback" not in err


def test_shipped_model_tags_a_real_clip():
    assert default_checkpoints(), "no shipped model"
    clip = MUSIC / rows(1, "val")[0]["file"]
    (row,) = tag([], [clip])
    assert row["station"] in {"Q1", "Q2", "Q3", "Q4"}
    assert len(row["mood_scores"]) == 50
