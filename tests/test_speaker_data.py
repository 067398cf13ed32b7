"""Speaker embeddings on real LibriSpeech speech: the loss falls, and make-lists → train → resume →
eval → embed run end to end through the CLI; bad lists and trials give one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli

from mung.audio import load
from mung.speaker.model_io import load_speaker_model
from mung.speaker.train import SpeakerTrainConfig, Trainer

SPEECH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech" / "librispeech-train-clean-100"
)
SPEAKERS = ["103", "1034", "1040", "1081", "1088", "1098"]


@pytest.fixture(scope="module")
def speech() -> Path:
    if not SPEECH.is_dir():
        pytest.skip(f"real speech not found at {SPEECH} (clone with ../shared beside the repo)")
    return SPEECH


@pytest.mark.usefixtures("one_thread")
def test_angular_prototypical_loss_falls_on_a_tiny_real_batch(speech):
    torch.manual_seed(0)
    crops = []
    for spk in SPEAKERS[:4]:  # two 1-s crops from different parts of each speaker's utterance
        wav = load(next((speech / spk).glob("*.ogg")))
        crops.append([wav[16000:32000], wav[len(wav) // 2 : len(wav) // 2 + 16000]])
    batch = torch.from_numpy(np.array(crops, dtype=np.float32))  # [4, 2, 16000]
    trainer = Trainer(SpeakerTrainConfig("", "", "", device="cpu", lr=1e-3), n_speakers=4)
    labels = torch.arange(4)
    losses = [trainer.step(batch, labels)[0] for _ in range(8)]
    assert np.mean(losses[-3:]) < losses[0] - 0.2, losses


def test_cli_make_lists_train_resume_eval_embed(speech, tmp_path, capsys):
    src = tmp_path / "src"
    for spk in SPEAKERS:
        (src / spk).mkdir(parents=True)
        for f in (speech / spk).glob("*.ogg"):
            (src / spk / f.name).symlink_to(f)
    lists = tmp_path / "lists"
    code, out, err = run_cli(capsys, "speaker", "make-lists", src, "--out", lists, "--trial-speakers", "3")
    assert code == 0, err
    assert "trial_speakers=3" in out
    run = tmp_path / "run"
    train = [
        "speaker",
        "train",
        "--train-list",
        lists / "train_list.txt",
        "--audio-root",
        lists / "audio",
        "--out",
        run,
        "--speakers-per-batch",
        "3",
        "--crop-seconds",
        "1",
        "--threads",
        "1",
        "--val-trials",
        lists / "trials.txt",
        "--val-audio-root",
        lists / "audio",
    ]
    code, out, err = run_cli(capsys, *train, "--epochs", "1")
    assert code == 0, err
    for name in ("model.pt", "checkpoint.pt", "training_curve.png", "history.json", "config.json"):
        assert (run / name).is_file(), name
    code, _, err = run_cli(capsys, *train, "--epochs", "1")
    assert code == 1 and "output exists (use --force" in err
    code, _, err = run_cli(capsys, *train, "--epochs", "2", "--resume")
    assert code == 0, err
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2]
    sm = load_speaker_model(run / "model.pt")
    assert sm.meta["epochs"] == 2 and "val_eer" in sm.meta["metrics"] and sm.meta["train_speakers"] == 3

    code, out, err = run_cli(capsys, "speaker", "evaluate", "--trials", lists / "trials.txt",
                           "--audio-root", lists / "audio", "--model",
                           run / "model.pt", "--segment-aggregation",
                           "--crops", "2", "--out", tmp_path / "eval.json")
    assert code == 0, err
    results = json.loads((tmp_path / "eval.json").read_text())["results"]
    assert [r["duration"] for r in results] == ["full", "3s", "1s"]
    assert results[2]["trials"] == 2 * results[0]["trials"]  # two 1-s crops per test file
    assert "EER%" in out

    emb = tmp_path / "emb"
    code, out, err = run_cli(capsys, "speaker", "embed", src / SPEAKERS[0], src / SPEAKERS[1], "--out", emb)
    assert code == 0, err
    vec = np.load(emb / next((src / SPEAKERS[0]).glob("*.ogg")).with_suffix(".npy").name)
    assert vec.shape == (256,) and abs(np.linalg.norm(vec) - 1) < 1e-4  # the shipped default encoder
    code, _, err = run_cli(capsys, "speaker", "embed", src / SPEAKERS[0], "--out", emb)
    assert code == 0 and "0 done, 1 skipped" in err
    code, _, err = run_cli(capsys, "speaker", "embed", src / SPEAKERS[0], "--out", emb, "--force",
                           "--model", run / "model.pt")
    assert code == 0, err
    assert np.load(next(emb.glob("103-*.npy"))).shape == (512,)


def test_bad_lists_and_trials_give_one_line_errors(speech, tmp_path, capsys):
    root = speech
    files = {spk: next((speech / spk).glob("*.ogg")).relative_to(speech) for spk in SPEAKERS[:3]}
    cases = {
        "missing file": ("train", f"103 {files['103']}\n103 103/nope.ogg\n", "audio file .* not found"),
        "one utterance": (
            "train",
            f"103 {files['103']}\n103 {files['103']}\n1034 {files['1034']}\n",
            "fewer than 2 utterances",
        ),
        "bad line": ("train", "103\n", "expected 'speaker_id relative/path'"),
        "unknown trial file": ("trials", f"1 {files['103']} 103/other.wav\n", "unknown file '103/other.wav'"),
        "bad label": ("trials", f"yes {files['103']} {files['1034']}\n", "expected 'label"),
    }
    for name, (kind, text, pattern) in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.txt"
        path.write_text(text)
        if kind == "train":
            args = ["speaker", "train", "--train-list", path, "--audio-root", root, "--out", tmp_path / "r"]
        else:
            args = ["speaker", "evaluate", "--trials", path, "--audio-root", root]
        code, _, err = run_cli(capsys, *args)
        assert code == 1, name
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        import re

        assert re.search(pattern, err), (name, err)
    code, _, err = run_cli(capsys, "speaker", "eval", "--trials", tmp_path / "bad_label.txt",
                           "--audio-root", root, "--model",
                           tmp_path / "bad_label.txt")
    assert code == 1 and "error:" in err


def test_noise_and_reverb_augmentation_from_user_folders(speech, tmp_path):
    import soundfile as sf

    from mung.speaker.train import Augmenter

    rir_dir = tmp_path / "rirs"
    rir_dir.mkdir()
    t = np.arange(4000) / 16000
    rir = np.random.default_rng(0).standard_normal(len(t)) * np.exp(-t / 0.05)
    sf.write(rir_dir / "room.wav", rir.astype(np.float32), 16000)
    aug = Augmenter(str(speech / SPEAKERS[1]), str(rir_dir), prob=1.0, snr_db=[5.0, 5.0])
    wav = load(next((speech / SPEAKERS[0]).glob("*.ogg")), duration=2.0)
    out = aug(wav, np.random.default_rng(0))
    assert out.shape == wav.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out - wav).mean() > 0.1 * np.abs(wav).mean()
