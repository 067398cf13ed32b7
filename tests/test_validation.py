"""Bad inputs and options caught before work, with one clear line; inputs that carry no signal
said to carry none. Real audio from ../shared/data wherever audio is involved."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import data_dir, run_cli

from mung import audio
from mung.diarization.rttm import read_rttm

AMI = "EN2001e_0000-0030"


@pytest.fixture(scope="module")
def clip20(tmp_path_factory):
    """The first 20 s of a real AMI excerpt."""
    path = tmp_path_factory.mktemp("clip") / "clip20.wav"
    wav = audio.load(data_dir("diarization", "ami-excerpts", f"{AMI}.ogg"), duration=20.0)
    sf.write(path, wav, audio.SAMPLE_RATE)
    return path


@pytest.fixture(scope="module")
def silent_and_noise(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nosignal")
    sf.write(folder / "silent.wav", np.zeros(3 * audio.SAMPLE_RATE, np.float32), audio.SAMPLE_RATE)
    sf.write(folder / "hiss.wav", np.full(3 * audio.SAMPLE_RATE, 1e-5, np.float32)
             * np.sign(np.random.default_rng(1).standard_normal(3 * audio.SAMPLE_RATE)), audio.SAMPLE_RATE)
    noise = np.random.default_rng(0).normal(0, 0.1, 3 * audio.SAMPLE_RATE).astype(np.float32)
    sf.write(folder / "noise.wav", noise, audio.SAMPLE_RATE)
    return folder


def test_diarize_run_form_takes_the_file_not_run(clip20, capsys):
    code, out, err = run_cli(capsys, "diarize", "run", clip20)
    assert code == 0, err
    assert out.startswith("SPEAKER clip20 1 ")


def test_too_many_speakers_for_the_audio_is_a_warning(clip20, capsys):
    code, out, err = run_cli(capsys, "diarize", clip20, "--num-speakers", "50")
    assert code == 0, err
    n = len({line.split()[7] for line in out.splitlines()})
    assert n < 50
    assert f"warning: clip20: asked for 50 speakers, but 20.0 s of audio gave only {n}" in err


@pytest.mark.parametrize("yaml_text, message", [
    ("clustering:\n  threshold: abc\n",
     "The 'clustering.threshold' parameter must be a float in [0, 2] or None. Got 'abc' instead."),
    ("clustering:\n  num_speakers: two\n",
     "The 'clustering.num_speakers' parameter must be an int in [1, inf) or None. Got 'two' instead."),
    ("embedding:\n  center: 5\n",
     "The 'embedding.center' parameter must be a float in [0, 1] or None. Got 5 instead."),
    ("embedding:\n  device: banana\n",
     "The 'embedding.device' parameter must be one of 'auto', 'cpu', 'cuda'"),
    ("segmentation:\n  overlap_threshold: 1.5\n",
     "The 'segmentation.overlap_threshold' parameter must be a float in (0, 1) or None. Got 1.5 instead."),
    ("segmentation:\n  mode: nope\n",
     "The 'segmentation.mode' parameter must be a str among {'overlap', 'local'}. Got 'nope' instead."),
])
def test_bad_config_values_fail_at_load_naming_key_allowed_and_bad_value(tmp_path, capsys, yaml_text,
                                                                        message):
    (tmp_path / "c.yaml").write_text(yaml_text)
    wav = data_dir("diarization", "ami-excerpts", f"{AMI}.ogg")
    code, _, err = run_cli(capsys, "diarize", wav, "--config", tmp_path / "c.yaml", "--out", tmp_path / "o")
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "o").exists()  # nothing saved, nothing decoded


@pytest.mark.parametrize("option, key", [("--threshold", "threshold"),
                                         ("--merge-threshold", "merge_threshold")])
def test_negative_threshold_option_is_refused_before_work(tmp_path, capsys, option, key):
    wav = data_dir("diarization", "ami-excerpts", f"{AMI}.ogg")
    code, _, err = run_cli(capsys, "diarize", wav, option, "-5", "--out", tmp_path / "o")
    assert code == 1 and err.count("\n") == 1
    assert f"The 'clustering.{key}' parameter must be a float in [0, 2] or None. Got -5.0" in err
    assert not (tmp_path / "o").exists()


def test_overlap_step_must_be_positive(tmp_path, capsys):
    wav = data_dir("diarization", "ami-excerpts", f"{AMI}.ogg")
    code, _, err = run_cli(capsys, "diarize", wav, "--overlap-step", "0", "--out", tmp_path / "o")
    assert code == 1 and err.count("\n") == 1
    assert "The 'segmentation.overlap_step' parameter must be a float in (0, inf). Got 0.0" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("device, message", [
    ("banana", "device: one of auto, cpu, cuda, cuda:N, mps; got 'banana'"),
    ("cuda", "device 'cuda': "),
])
def test_bad_device_is_one_line(tmp_path, capsys, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    wav = data_dir("diarization", "ami-excerpts", f"{AMI}.ogg")
    code, _, err = run_cli(capsys, "speaker", "embed", wav, "--out", tmp_path / "e", "--device", device)
    assert code == 1 and err.startswith(f"error: {message}") and err.count("\n") == 1, err
    code, _, err = run_cli(capsys, "diarize", wav, "--device", device)
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1, err
    code, _, err = run_cli(capsys, "diarize", "train-segmentation", "--speech", tmp_path, "--out",
                           tmp_path / "m.safetensors", "--device", device)
    assert code == 1 and "device" in err and "Traceback" not in err and err.count("\n") == 1, err


def test_json_or_plot_without_out_is_an_error(capsys):
    wav = data_dir("diarization", "ami-excerpts", f"{AMI}.ogg")
    for flag in ("--json", "--plot"):
        code, out, err = run_cli(capsys, "diarize", wav, flag)
        assert code == 1 and err == "error: --json and --plot write files: give --out DIR\n" and not out


def test_output_path_that_is_a_file_is_one_line(tmp_path, capsys):
    wav = data_dir("diarization", "ami-excerpts", f"{AMI}.ogg")
    (tmp_path / "taken").write_text("a file")
    for cmd in (["diarize", wav], ["speaker", "embed", wav], ["music", "featurize", wav]):
        code, _, err = run_cli(capsys, *cmd, "--out", tmp_path / "taken")
        assert code == 1 and err == f"error: {tmp_path / 'taken'}: output folder is an existing file\n", err
    clip = sorted(data_dir("music-4q", "audio").glob("*.ogg"))[0]
    cases = [(tmp_path / "taken" / "t.csv", f"{tmp_path / 'taken'}: output folder is an existing file"),
             (tmp_path, f"{tmp_path}: output path is a directory")]
    for out, message in cases:
        code, _, err = run_cli(capsys, "music", "tag", clip, "--out", out, "--force")
        assert code == 1 and err == f"error: {message}\n", err


def test_same_stem_in_two_folders_is_refused_before_work_even_with_force(tmp_path, capsys):
    src = data_dir("diarization", "ami-excerpts", f"{AMI}.ogg")
    (tmp_path / "sub").mkdir()
    shutil.copy(src, tmp_path / "a.ogg")
    shutil.copy(src, tmp_path / "sub" / "a.ogg")
    for force in ([], ["--force"]):
        code, _, err = run_cli(capsys, "diarize", tmp_path, "--out", tmp_path / "o", *force)
        assert code == 1 and "would both be written to" in err and "rename one" in err, err
        assert not (tmp_path / "o").exists()


def test_embed_refuses_silence_warns_on_noise_and_continues(tmp_path, capsys, silent_and_noise):
    speech = data_dir("speech", "librispeech-train-clean-100", "103")
    args = ["speaker", "embed", silent_and_noise, speech, "--out", tmp_path / "e"]
    code, _, err = run_cli(capsys, *args)
    assert code == 1
    assert "silent.wav: silent (every sample is zero); nothing to embed" in err
    assert "hiss.wav: silent or nearly so (level" in err
    assert "warning:" in err and "noise.wav: sounds like broadband noise" in err
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["103-1240-0000.npy", "noise.npy"]
    code, _, err = run_cli(capsys, *args)  # a re-run resumes instead of refusing
    assert code == 1 and "0 done, 2 skipped" in err and "2 failed" in err


def test_tag_keeps_going_after_a_bad_file_and_refuses_silence(tmp_path, capsys, silent_and_noise):
    clips = sorted(data_dir("music-4q", "audio").glob("*.ogg"))[:2]
    (tmp_path / "corrupt.ogg").write_bytes(b"OggS" + b"junk" * 100)
    code, out, err = run_cli(capsys, "music", "tag", clips[0], tmp_path / "corrupt.ogg",
                             silent_and_noise / "silent.wav", clips[1], "--format", "json")
    assert code == 1
    assert "corrupt.ogg: not a readable audio file" in err
    assert "silent.wav: silent (every sample is zero); nothing to tag" in err
    import json

    rows = json.loads(out)
    assert [r["file"] for r in rows] == [str(clips[0]), str(clips[1])]
    code, _, err = run_cli(capsys, "music", "tag", "--top", "-2", clips[0])
    assert code == 2 and "Invalid value for '--top': -2 is not in the range x>=1" in err


def test_rttm_of_a_name_with_spaces_reads_back(tmp_path, capsys, clip20):
    shutil.copy(clip20, tmp_path / "two words.wav")
    code, out, err = run_cli(capsys, "diarize", tmp_path / "two words.wav", "--out", tmp_path / "o")
    assert code == 0, err
    assert list(read_rttm(tmp_path / "o" / "two_words.rttm")) == ["two_words"]
