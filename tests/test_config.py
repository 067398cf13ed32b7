"""Config constraints: stated beside each field, checked on construction, YAML load and merge,
with one message style; the training commands print and read back their configs."""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import run_cli

from mung.config import Interval, Options, check_value, dump, from_dict, load_yaml, merge
from mung.diarization.pipeline import DiarizationConfig
from mung.diarization.resegment import ResegmentConfig
from mung.diarization.train_clustering import ClusteringTrainConfig
from mung.errors import MungError


@pytest.mark.parametrize("override, message", [
    ({"clustering.threshold": "abc"},
     "The 'clustering.threshold' parameter must be a float in [0, 2] or None. Got 'abc' instead."),
    ({"clustering.num_speakers": 0},
     "The 'clustering.num_speakers' parameter must be an int in [1, inf) or None. Got 0 instead."),
    ({"clustering.method": "kmeans"}, "The 'clustering.method' parameter must be a str among {"),
    ({"resegment.min_duration": -1.0},
     "The 'resegment.min_duration' parameter must be a float in [0, inf). Got -1.0 instead."),
    ({"vad.frame_ms": True}, "The 'vad.frame_ms' parameter must be an int among {10, 20, 30}. Got True"),
    ({"clustering.min_speakers": 3, "clustering.max_speakers": 2},
     "The 'clustering.max_speakers' parameter must be at least 'clustering.min_speakers' (3). Got 2"),
    ({"embedding.model": "resnetse34l"}, "The 'embedding.model' parameter must be a str among {"),
])
def test_merge_names_the_dotted_key_and_the_bad_value(override, message):
    with pytest.raises(MungError) as err:
        merge(DiarizationConfig(), override)
    assert str(err.value).startswith(message), str(err.value)


def test_yaml_values_are_checked_and_the_file_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("windows:\n  window: 1.0\n  shift: 2.0\n")
    with pytest.raises(MungError, match=r"c.yaml: The 'windows.window' parameter must be at least"):
        load_yaml(DiarizationConfig, path)
    path.write_text("vad:\n  threshold: 1.0\n")
    with pytest.raises(MungError, match=r"'vad.threshold' parameter must be a float in \(0, 1\)"):
        load_yaml(DiarizationConfig, path)


def test_every_field_of_every_diarization_config_has_constraints():
    for f in dataclasses.fields(DiarizationConfig):
        for sub in dataclasses.fields(f.default_factory):
            assert sub.metadata.get("constraints"), f"{f.name}.{sub.name}"
    with pytest.raises(MungError, match="'resegment.max_gap'"):
        ResegmentConfig(max_gap=-1)


def test_round_trip_and_a_registered_value_is_allowed_at_once():
    cfg = merge(DiarizationConfig(), {"clustering.method": "spectral", "vad.method": "webrtc"})
    assert from_dict(DiarizationConfig, yaml.safe_load(dump(cfg))) == cfg
    check_value(0.5, [Interval(float, 0, 1)], "x")
    with pytest.raises(MungError, match="The 'x' parameter must be a str among {'a'} or None. Got 1"):
        check_value(1, [Options(("a",)), None], "x")


@pytest.mark.parametrize("args", [
    ["speaker", "train", "--train-list", "l.txt", "--audio-root", "a", "--out", "o", "--epochs", "3"],
    ["music", "train", "--data", "d", "--out", "o", "--epochs", "3"],
    ["diarize", "train-clustering", "--audio-dir", "a", "--ref", "r.rttm", "--out", "m", "--steps", "3"],
])
def test_training_commands_show_and_read_their_config(tmp_path, capsys, args):
    code, out, err = run_cli(capsys, *args, "--show-config")
    assert code == 0, err
    shown = yaml.safe_load(out)
    assert 3 in (shown.get("epochs"), shown.get("uisrnn", {}).get("steps"))
    path = tmp_path / "c.yaml"
    path.write_text(out)
    rest = args[:-2]  # without the numeric override: the file must bring it back
    code, again, err = run_cli(capsys, *rest, "--config", path, "--show-config")
    assert code == 0 and again == out, err
    path.write_text(out.replace(" 3\n", " -3\n", 1))
    code, _, err = run_cli(capsys, *rest, "--config", path, "--show-config")
    assert code == 1 and "parameter must be an int in [1, inf). Got -3 instead." in err, err


def test_clustering_train_config_nests_the_pipeline():
    cfg = merge(ClusteringTrainConfig(), {"pipeline.vad.method": "webrtc", "uisrnn.hidden": 8})
    assert cfg.pipeline.vad.method == "webrtc" and cfg.uisrnn.hidden == 8
    with pytest.raises(MungError, match="'pipeline.clustering.threshold'"):
        merge(cfg, {"pipeline.clustering.threshold": 5.0})
