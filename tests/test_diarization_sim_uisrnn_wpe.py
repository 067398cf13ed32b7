"""Conversation simulator, UIS-RNN supervised clustering and WPE dereverberation, on real audio."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import data_dir, run_cli

from mung import audio
from mung.checkpoint import read_meta
from mung.config import merge
from mung.diarization.dereverb import DereverbConfig, dereverberate
from mung.diarization.pipeline import DiarizationConfig
from mung.diarization.rttm import read_rttm, read_uem
from mung.diarization.simulate import SimulationConfig, simulate
from mung.diarization.train_clustering import labelled_embeddings, window_labels
from mung.diarization.uisrnn import (
    UISRNN,
    UISRNNTrainConfig,
    calibrate_alpha,
    decode,
    label_accuracy,
    load_model,
    predict,
    save_model,
    train,
)
from mung.errors import MungError

SHORT = SimulationConfig(duration=(20.0, 30.0), backchannel_prob=0.3)



@pytest.fixture(scope="module")
def speech_dir():
    return data_dir("speech", "librispeech-train-clean-100")


def _frame_db(wav: np.ndarray, frame: int = 800) -> np.ndarray:
    n = len(wav) // frame
    return 10 * np.log10((wav[: n * frame].reshape(n, frame) ** 2).mean(1) + 1e-12)


def test_simulated_rttm_matches_the_audio(speech_dir):
    for rec in simulate(speech_dir, 3, seed=5, config=SHORT):
        db, hop = _frame_db(rec.wav), 800 / audio.SAMPLE_RATE
        t = np.arange(len(db)) * hop
        inside = np.zeros(len(db), bool)
        near = np.zeros(len(db), bool)
        for turn in rec.reference.turns:
            inside |= (t >= turn.start) & (t + hop <= turn.end)
            near |= (t + hop > turn.start - 0.05) & (t < turn.end + 0.05)
        silent = ~near
        assert inside.sum() > 100 and silent.sum() > 5, rec.uri
        # outside the reference there is only noise, 20-30 dB below the speech
        assert np.percentile(db[silent], 95) < np.median(db[inside]) - 10, rec.uri
        assert np.mean(db[inside] > np.percentile(db[silent], 95) + 6) > 0.75, rec.uri
        assert len(rec.reference.speakers) >= 2
        assert abs(rec.reference.duration - len(rec.wav) / audio.SAMPLE_RATE) < 1e-6


def test_simulator_is_deterministic_by_seed(speech_dir):
    a = list(simulate(speech_dir, 2, seed=3, config=SHORT))
    b = list(simulate(speech_dir, 2, seed=3, config=SHORT))
    c = list(simulate(speech_dir, 2, seed=4, config=SHORT))
    for x, y in zip(a, b, strict=True):
        assert x.reference.to_rttm() == y.reference.to_rttm() and np.array_equal(x.wav, y.wav)
    assert a[0].reference.to_rttm() != c[0].reference.to_rttm()
    room = SimulationConfig(duration=SHORT.duration, backchannel_prob=0.3, rt60=(0.5, 0.8))
    r = next(iter(simulate(speech_dir, 1, seed=3, config=room)))
    assert r.reference.to_rttm() == a[0].reference.to_rttm()  # the room changes the audio, not the reference
    assert len(r.wav) == len(a[0].wav) and not np.allclose(r.wav, a[0].wav)
    assert set(r.meta["room_rt60_drr"]) == set(r.meta["speakers"])


def test_simulate_cli_writes_a_scorable_set(tmp_path, capsys, speech_dir):
    args = ["diarize", "simulate", "--speech", speech_dir, "--out", tmp_path, "--n", 2, "--seed", 1,
            "--duration", "15,20", "--name", "t"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    refs, uem = read_rttm(tmp_path / "t.rttm"), read_uem(tmp_path / "t.uem")
    assert sorted(refs) == sorted(uem) == ["t-000", "t-001"]
    for uri, spans in uem.items():
        info = sf.info(tmp_path / f"{uri}.flac")
        assert info.samplerate == 16000 and abs(info.duration - spans[0][1]) < 2e-3
        assert max(t.end for t in refs[uri].turns) <= spans[0][1]
    assert len((tmp_path / "t.meta.jsonl").read_text().splitlines()) == 2
    code, _, err = run_cli(capsys, *args)  # refuses to overwrite
    assert code == 1 and "error:" in err and "--force" in err


@pytest.mark.parametrize(
    "extra,message",
    [(["--min-speakers", "3", "--max-speakers", "2"], "min_speakers"), (["--snr", "30,x"], "range"),
     (["--overlap-prob", "1.5"], "overlap_prob"), (["--n", "0"], "--n")],
)
def test_simulate_bad_inputs(tmp_path, capsys, speech_dir, extra, message):
    code, _, err = run_cli(capsys, "diarize", "simulate", "--speech", speech_dir, "--out", tmp_path, *extra)
    assert code == 1 and err.startswith("error:") and message in err and "Traceback" not in err


def test_simulate_missing_speech_dir(tmp_path, capsys):
    code, _, err = run_cli(capsys, "diarize", "simulate", "--speech", tmp_path / "nope", "--out", tmp_path)
    assert code == 1 and "speech directory not found" in err


def test_wpe_on_a_real_file_keeps_length(ami_dir):
    wav = audio.load(ami_dir / "EN2001a_0000-0030.ogg", duration=12.0)
    out = dereverberate(wav, DereverbConfig(method="wpe", block_seconds=5.0, context_seconds=1.0))
    assert out.shape == wav.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.corrcoef(out, wav)[0, 1] > 0.9  # it removes reverberation, not the speech
    assert dereverberate(wav, DereverbConfig()) is wav
    with pytest.raises(MungError, match="taps"):
        dereverberate(wav, DereverbConfig(method="wpe", taps=0))
    with pytest.raises(MungError, match="too short"):
        dereverberate(wav[:100], DereverbConfig(method="wpe"))


def test_cli_dereverb_wpe_end_to_end(tmp_path, capsys, ami_dir):
    wav = ami_dir / "EN2001e_0000-0030.ogg"
    code, _, err = run_cli(capsys, "diarize", wav, "--dereverb", "wpe", "--out", tmp_path)
    assert code == 0, err
    assert read_rttm(tmp_path / "EN2001e_0000-0030.rttm")
    assert "method: wpe" in (tmp_path / "config.yaml").read_text()


@pytest.fixture(scope="module")
def sim_embeddings(tmp_path_factory):
    """Labelled window embeddings of four sim-dev recordings (real LibriSpeech speech)."""
    root = data_dir("diarization", "sim-dev")
    refs = read_rttm(root / "sim-dev.rttm")
    paths = sorted(root.glob("*.ogg"))[:4]
    cache = tmp_path_factory.mktemp("emb") / "emb.npz"
    data, meta = labelled_embeddings(paths, refs, DiarizationConfig(), cache=cache)
    again, _ = labelled_embeddings(paths, refs, DiarizationConfig(), cache=cache)  # from the cache
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(data, again, strict=True))
    return data, meta, paths, refs


@pytest.mark.usefixtures("one_thread")
def test_uisrnn_trains_and_predicts_on_real_embeddings(tmp_path, sim_embeddings):
    data, meta, _, _ = sim_embeddings
    config = UISRNNTrainConfig(hidden=64, steps=400, batch_size=16)
    model, curve = train(data[:3], config, meta)
    assert curve[-1] < curve[0]
    calibrate_alpha(model, data[:3], config.alpha_scales)  # too few recordings for a hold-out
    assert 0 < model.p_change < 0.5 and model.crp_alpha > 0
    path = save_model(model, tmp_path / "m.pt")
    blob = read_meta(path)  # the shared checkpoint format: the description reads without the weights
    assert blob["dim"] == 192 and blob["meta"]["encoder"] == "campplus"  # the pipeline's default
    accuracy = {}
    for i, (emb, truth) in enumerate(data):  # 0-2 were trained on; 3 is unseen
        t0 = time.perf_counter()
        labels = predict(emb, str(path), max_speakers=6, beam_size=10)
        assert time.perf_counter() - t0 < 5.0
        assert labels.shape == truth.shape and 2 <= labels.max() + 1 <= 6
        accuracy[i] = label_accuracy(labels, truth)
    assert np.mean([accuracy[i] for i in range(3)]) > 0.75, accuracy  # it fits what it saw
    # generalisation from three recordings is weak; the benchmark measures the real model
    with pytest.raises(MungError, match="exists"):
        save_model(model, path)


def test_uisrnn_refuses_other_embedding_sizes(tmp_path):
    path = save_model(UISRNN(8, 4, {"encoder": "tiny"}), tmp_path / "m8.pt")
    with pytest.raises(MungError, match="8-d embeddings .*256-d"):
        predict(np.ones((5, 256), np.float32), str(path), max_speakers=3)
    cfg = merge(DiarizationConfig(), {"clustering.method": "uisrnn", "clustering.model": str(path)})
    from mung.diarization.pipeline import Diarizer

    with pytest.raises(MungError, match="trained on 8-d"):
        Diarizer(cfg)
    other = save_model(UISRNN(192, 4, {"encoder": "campplus", "window": 9.0}), tmp_path / "w.pt")
    with pytest.warns(UserWarning, match=r"window 9.0 \(now 1.5\)"):
        Diarizer(merge(cfg, {"clustering.model": str(other), "windows.window": 1.5}))


def test_uisrnn_bad_models(tmp_path):
    with pytest.raises(MungError, match="not found"):
        load_model(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MungError, match="not a readable"):
        load_model(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(MungError, match="not a UIS-RNN model"):
        load_model(tmp_path / "other.pt")


@pytest.mark.usefixtures("one_thread")
def test_decode_is_fast_and_respects_max_speakers():
    torch.manual_seed(0)
    model = UISRNN(256, 64, {"p_change": 0.1, "crp_alpha": 1.0}).eval()
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 256))
    emb = np.repeat(centers, 100, axis=0) + 0.1 * rng.standard_normal((300, 256))
    t0 = time.perf_counter()
    labels = decode(model, emb.astype(np.float32), max_speakers=2, beam_size=10)
    assert time.perf_counter() - t0 < 10.0  # ~4 ms a window on a busy core; 300 windows ≈ 4 min of audio
    assert labels.max() <= 1 and len(labels) == 300


def test_window_labels_from_reference():
    from mung.diarization.rttm import Turn

    win = np.array([[0.0, 1.0], [1.0, 2.0], [5.0, 6.0]])
    lab = window_labels(win, [Turn(0.0, 1.2, "b"), Turn(1.2, 2.0, "a")])
    assert lab.tolist() == [1, 0, -1]


def test_cli_train_clustering_and_use_it(tmp_path, capsys, sim_embeddings):
    _, _, paths, refs = sim_embeddings
    audio_dir = tmp_path / "audio"
    audio_dir.mkdir()
    for p in paths[:2]:
        (audio_dir / p.name).symlink_to(p)
    ref = tmp_path / "ref.rttm"
    ref.write_text("".join(refs[p.stem].to_rttm() for p in paths[:2]))
    model = tmp_path / "m.pt"
    code, out, err = run_cli(capsys, "diarize", "train-clustering", "--audio-dir", audio_dir, "--ref", ref,
                         "--out", model, "--steps", 60, "--hidden", 16)
    assert code == 0 and model.exists(), err
    spec = f"uisrnn:{model}"
    code, out, err = run_cli(capsys, "diarize", paths[3], "--clustering", spec, "--out", tmp_path / "o")
    assert code == 0, err
    assert len(read_rttm(tmp_path / "o" / f"{paths[3].stem}.rttm")[paths[3].stem].speakers) >= 1


@pytest.mark.parametrize("spec,message", [("uisrnn", "uisrnn:MODEL"), ("kmeans", "uisrnn:MODEL"),
                                           ("uisrnn:/no/such.pt", "not found")])
def test_cli_bad_clustering_specs(tmp_path, capsys, ami_dir, spec, message):
    code, _, err = run_cli(capsys, "diarize", ami_dir / "EN2001e_0000-0030.ogg", "--clustering", spec,
                       "--out", tmp_path)
    assert code == 1 and message in err and "Traceback" not in err


def test_train_clustering_needs_matching_audio(tmp_path, capsys, sim_dir):
    (tmp_path / "a.wav").write_bytes(b"")
    code, _, err = run_cli(capsys, "diarize", "train-clustering", "--audio-dir", tmp_path,
                       "--ref", sim_dir / "sim-dev.rttm", "--out", tmp_path / "m.pt")
    assert code == 1 and "no audio file whose stem" in err


def test_uisrnn_version_1_files_still_load(tmp_path):
    model = UISRNN(8, 4, {"encoder": "tiny", "p_change": 0.1, "crp_alpha": 2.0})
    blob = {"format": "mung-uisrnn", "version": 1, "dim": 8, "hidden": 4, "meta": model.meta,
            "state_dict": {k: v.detach() for k, v in model.state_dict().items()}}
    torch.save(blob, tmp_path / "v1.pt")
    back = load_model(tmp_path / "v1.pt")
    assert back.crp_alpha == 2.0 and torch.equal(back.h0, model.h0)
    new = load_model(save_model(model, tmp_path / "v2.pt"))
    assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), model.state_dict().values(),
                                                  strict=True))
