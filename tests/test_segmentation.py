"""Local segmentation model: powerset mapping, permutation-invariant loss and metrics, the
meeting chunk simulator, training, the shipped weights and bad model files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import data_dir, run_cli
from safetensors.torch import load_file, save_file

from mung import audio
from mung.diarization.meetings import ChunkConfig, ChunkSimulator, SpeechBank, speed_perturb
from mung.diarization.segmentation import (
    POWERSET,
    FrameCounts,
    SegmentationModel,
    SegmentationSpec,
    best_permutation,
    count_loss,
    count_to_multilabel,
    multilabel_to_powerset,
    num_frames,
    pit_powerset_loss,
    powerset_to_multilabel,
)
from mung.diarization.simulate import SimulationConfig, simulate, speech_sources, write_simulation
from mung.diarization.train_segmentation import (
    BatchMaker,
    SegmentationTrainConfig,
    batches_from,
    train_segmentation,
)
from mung.errors import MungError

SRC = Path(__file__).resolve().parents[1] / "src" / "mung"
DEMO = SRC / "data" / "demo_ami_EN2001a.ogg"
MUSIC_MODEL = SRC / "music" / "weights" / "richstats-mlp.safetensors"  # a mung file of another kind


def _labels(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Random 0/1 activities of 3 local speakers, never three at once."""
    return powerset_to_multilabel(np.eye(7)[rng.integers(7, size=frames)], soft=False)


def test_powerset_round_trip_and_three_speakers_refused():
    classes = np.arange(len(POWERSET))
    multi = powerset_to_multilabel(np.eye(7)[classes], soft=False)
    assert multi.tolist() == [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]]
    assert (multilabel_to_powerset(multi) == classes).all()
    with pytest.raises(ValueError, match="three active"):
        multilabel_to_powerset(np.ones((1, 3)))
    # soft marginals: P(A) = P(A) + P(AB) + P(AC)
    p = np.array([0.1, 0.2, 0.1, 0.1, 0.3, 0.1, 0.1])
    assert np.allclose(powerset_to_multilabel(p), [0.6, 0.5, 0.3])


def test_pit_loss_ignores_speaker_order():
    rng = np.random.default_rng(0)
    labels = np.stack([_labels(rng, 50) for _ in range(4)])
    logits = torch.randn(4, 50, 7)
    base = pit_powerset_loss(logits, torch.from_numpy(labels))
    for perm in itertools.permutations(range(3)):
        permuted = torch.from_numpy(labels[..., list(perm)].copy())
        assert torch.allclose(pit_powerset_loss(logits, permuted), base)
    # known answer: confident logits on a permuted version of the truth cost (almost) nothing
    target = multilabel_to_powerset(labels[..., [2, 0, 1]])
    perfect = torch.from_numpy(np.eye(7, dtype=np.float32)[target] * 30)
    assert float(pit_powerset_loss(perfect, torch.from_numpy(labels))) < 1e-6
    assert float(pit_powerset_loss(-perfect, torch.from_numpy(labels))) > 1


def test_count_loss_known_answer_and_order_free():
    rng = np.random.default_rng(1)
    labels = torch.from_numpy(np.stack([_labels(rng, 40) for _ in range(3)]))
    count = labels.sum(-1).long()  # 0, 1 or 2 speakers per frame
    logits = torch.randn(3, 40, 3)
    base = count_loss(logits, labels)
    assert torch.allclose(count_loss(logits, labels[..., [2, 0, 1]]), base)
    perfect = torch.nn.functional.one_hot(count, 3).float() * 30
    assert float(count_loss(perfect, labels)) < 1e-6
    # uniform logits: ln 3 per frame, whatever the labels
    assert float(count_loss(torch.zeros(3, 40, 3), labels)) == pytest.approx(np.log(3), rel=1e-6)
    probs = np.eye(3)[count.numpy()]
    assert np.array_equal(count_to_multilabel(probs).sum(-1), count.numpy())


def test_frame_counts_known_answer():
    ref = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0], [0, 1, 1]], float)
    hyp = ref[:, [1, 2, 0]]  # same activities, other speaker order
    assert best_permutation(ref, hyp) == (2, 0, 1)
    c = FrameCounts()
    c.add(ref, hyp)
    assert c.metrics() == {"speech_precision": 100.0, "speech_recall": 100.0, "overlap_precision": 100.0,
                           "overlap_recall": 100.0, "frame_error": 0.0}
    c = FrameCounts()
    c.add(ref, np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 1]], float))
    m = c.metrics()
    # speech: 4 ref frames all found + 1 false frame; overlap: ref frames 1, 4; hyp frames 3, 4
    assert (m["speech_precision"], m["speech_recall"]) == (80.0, 100.0)
    assert (m["overlap_precision"], m["overlap_recall"]) == (50.0, 50.0)
    assert m["frame_error"] == pytest.approx(100 * 3 / 6, abs=0.01)


@pytest.fixture(scope="module")
def small_bank(tmp_path_factory):
    files = speech_sources(data_dir("speech", "librispeech-train-clean-100"))
    folder = tmp_path_factory.mktemp("speech")
    for spk in sorted(files)[:8]:
        (folder / spk).mkdir()
        for path in files[spk]:
            (folder / spk / path.name).symlink_to(path)
    return folder, SpeechBank.from_dir(folder)


def test_simulated_chunks_are_labelled_and_reproducible(small_bank):
    _, bank = small_bank
    sim = ChunkSimulator(bank, bank.speakers, music=[])
    wav, lab = sim.batch(np.random.default_rng(3), 24)
    again, _ = sim.batch(np.random.default_rng(3), 24)
    assert wav.shape == (24, 80000) and lab.shape == (24, num_frames(80000), 3)
    assert np.array_equal(wav, again)
    assert lab.sum(-1).max() == 2  # overlaps occur, never three at once
    assert 0.3 < (lab.sum(-1) >= 1).mean() < 0.98
    assert np.isfinite(wav).all() and np.abs(wav).max() <= 1.0


def test_speed_perturbation_keeps_labels_aligned(small_bank):
    _, bank = small_bank
    wav = np.sin(2 * np.pi * 200 * np.arange(16000) / 16000).astype(np.float32)
    mask = np.zeros(100, bool)
    mask[50:] = True  # speech in the second half
    for speed in (0.9, 1.1):
        out, m = speed_perturb(wav, mask, speed)
        assert len(out) == 160 * len(m) and abs(len(out) / 16000 - 1 / speed) < 0.02
        assert abs(np.argmax(m) / len(m) - 0.5) < 0.02  # the onset stays halfway
        pitch = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
        assert abs(pitch - 200 * speed) < 5  # tempo and pitch move together
    piece, piece_mask = bank.piece(np.random.default_rng(0), bank.speakers[0], 2.0, speed=0.9)
    assert abs(len(piece) / 16000 - 2.0) < 0.05 and len(piece) == 160 * len(piece_mask)
    sim = ChunkSimulator(bank, bank.speakers, music=[], config=ChunkConfig(speed=(0.9, 1.1)))
    plain = ChunkSimulator(bank, bank.speakers, music=[])
    (w1, l1), (w0, l0) = (x.batch(np.random.default_rng(3), 8) for x in (sim, plain))
    assert w1.shape == w0.shape and l1.shape == l0.shape and not np.array_equal(w1, w0)
    assert 0.3 < (l1.sum(-1) >= 1).mean() < 0.98


def test_loss_falls_on_tiny_simulated_set(small_bank, one_thread):
    _, bank = small_bank
    wav, lab = ChunkSimulator(bank, bank.speakers, music=[]).batch(np.random.default_rng(0), 8)
    net = SegmentationModel.create(seed=0).net.train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, y = torch.from_numpy(wav), torch.from_numpy(lab)
    losses = []
    for _ in range(8):
        loss = pit_powerset_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses


def test_fine_tuning_on_rttm_labelled_audio(small_bank, tmp_path, one_thread):
    folder, _ = small_bank
    cfg = SimulationConfig(min_speakers=2, max_speakers=2, duration=(12.0, 15.0))
    write_simulation(simulate(folder, 1, seed=1, config=cfg, prefix="ft"), tmp_path / "real", "ft")
    out = tmp_path / "seg.safetensors"
    config = SegmentationTrainConfig(max_steps=2, batch_size=4, val_chunks=8, warmup_steps=1)
    m = train_segmentation(folder, out, audio_dir=tmp_path / "real", ref=tmp_path / "real" / "ft.rttm",
                           config=config, log=lambda s: None)
    assert m["steps"] == 2
    model = SegmentationModel.load(out)
    assert model.meta["trained"]["real_recordings"] == 1
    assert 0 < model.overlap_threshold < 1
    assert model.meta["trained"]["overlap_threshold"] == m["overlap_threshold"]
    with pytest.raises(MungError, match="output exists"):
        train_segmentation(folder, out, config=config, log=lambda s: None)


def test_batches_from_worker_processes_are_reproducible(small_bank, tmp_path, one_thread):
    folder, bank = small_bank
    make = BatchMaker(ChunkSimulator(bank, bank.speakers, music=[]), None, 3, 0)
    batches = batches_from(make, [0, 2, 0], workers=2)
    got = [next(batches) for _ in range(3)]
    batches.close()
    for i, (wav, lab) in enumerate(got):  # batch i comes from seed + [i], whichever process made it
        want = make(np.random.default_rng([0, 2, 0, i]))
        assert np.array_equal(wav, want[0]) and np.array_equal(lab, want[1])
    assert not np.array_equal(got[0][0], got[1][0])
    threaded = batches_from(make, [0, 2, 0], workers=0)
    assert np.array_equal(next(threaded)[0], make(np.random.default_rng([0, 2, 0]))[0])
    threaded.close()
    out = tmp_path / "seg.safetensors"
    config = SegmentationTrainConfig(max_steps=2, batch_size=4, val_chunks=8, warmup_steps=1, workers=1,
                                     device="cpu")
    assert train_segmentation(folder, out, config=config, log=lambda s: None)["steps"] == 2
    assert SegmentationModel.load(out).meta["trained"]["config"]["workers"] == 1


def test_shipped_model_runs_on_a_real_clip():
    model = SegmentationModel.load("mung")
    assert (model.sample_rate, model.spec.chunk_seconds, model.spec.n_speakers) == (16000, 5.0, 3)
    wav = audio.load(DEMO, duration=10.0)
    chunks = wav.reshape(2, -1)
    probs = model.infer(chunks)
    assert probs.shape == (2, model.num_frames, 3) == (2, 126, 3)
    assert len(model.frame_times()) == model.num_frames and model.frame_step == pytest.approx(0.04)
    assert ((probs >= 0) & (probs <= 1)).all()
    hard = model.infer(chunks, hard=True)
    assert (hard.sum(-1) <= 2).all()
    # the whole 30-s clip (AMI EN2001a, 59 % speech) in six chunks against its reference:
    # the shipped model measured speech recall 0.90 at precision 0.78
    from mung.diarization.detection import speakers_per_frame
    from mung.diarization.rttm import read_rttm

    ref = read_rttm(data_dir("diarization", "ami-excerpts") / "ami-excerpts.rttm")["EN2001a_0000-0030"]
    whole = model.infer(audio.load(DEMO).reshape(6, -1), hard=True)[:, :125]  # 125 frames = 5 s
    said = whole.sum(-1).ravel() >= 1
    truth = speakers_per_frame(ref, 0.0, 30.0, frame=model.frame_step)[: len(said)] >= 1
    assert (said & truth).sum() / truth.sum() > 0.8 and (said & truth).sum() / said.sum() > 0.65
    silence = model.infer(np.zeros((1, 80000), np.float32), hard=True)
    assert silence.sum() == 0
    overlap = model.infer_overlap(chunks)  # the pair classes' probability
    assert overlap.shape == (2, 126) and ((overlap >= 0) & (overlap <= 1)).all()
    assert np.allclose(overlap, model.infer_powerset(chunks)[..., 4:].sum(-1))
    assert 0 < model.overlap_threshold < 1  # calibrated when it was trained
    short = model.infer(chunks[:, :40000])  # shorter chunks are fine
    assert short.shape == (2, num_frames(40000), 3)


def test_speaker_count_model_trains_detects_overlap_and_refuses_local_mode(small_bank, tmp_path, one_thread):
    folder, _ = small_bank
    out = tmp_path / "count.safetensors"
    config = SegmentationTrainConfig(max_steps=2, batch_size=4, val_chunks=8, warmup_steps=1,
                                     objective="count")
    m = train_segmentation(folder, out, config=config, log=lambda s: None)
    assert "frame_error" not in m and 0 <= m["speech_recall"] <= 100
    model = SegmentationModel.load(out)
    assert model.spec.output == "count" and not model.local_speakers
    chunks = audio.load(DEMO, duration=10.0).reshape(2, -1)
    overlap = model.infer_overlap(chunks)
    assert overlap.shape == (2, 126) and ((overlap >= 0) & (overlap <= 1)).all()
    assert np.allclose(overlap, model.infer_classes(chunks)[..., 2])
    with pytest.raises(MungError, match="speaker-count model") as exc:
        model.infer(chunks)
    _one_line(exc)
    with pytest.raises(MungError, match="cannot be fine-tuned with objective powerset"):
        train_segmentation(folder, tmp_path / "b.safetensors", init=out, log=lambda s: None,
                           config=SegmentationTrainConfig(max_steps=1, objective="powerset"))
    from mung.config import merge
    from mung.diarization import DiarizationConfig, Diarizer

    with pytest.raises(MungError, match="use it with --segmentation-mode overlap") as exc:
        Diarizer(merge(DiarizationConfig(), {"segmentation.model": str(out), "segmentation.mode": "local"}))
    _one_line(exc)
    assert SegmentationModel.create(SegmentationSpec.for_output("count")).net.head[-1].out_features == 3


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_foreign_and_incompatible_model_files(tmp_path):
    with pytest.raises(MungError, match="not a mung segmentation model") as exc:
        SegmentationModel.load(MUSIC_MODEL)
    _one_line(exc)
    junk = tmp_path / "junk.safetensors"
    junk.write_text("hello")
    with pytest.raises(MungError, match="not a mung segmentation model") as exc:
        SegmentationModel.load(junk)
    _one_line(exc)
    with pytest.raises(MungError, match="not found"):
        SegmentationModel.load(tmp_path / "missing.safetensors")
    good = tmp_path / "good.safetensors"
    SegmentationModel.create().save(good)
    state = load_file(str(good))
    for key, value in (("sample_rate", 8000), ("n_speakers", 4), ("front_end", "sincnet"), ("output", "vad")):
        meta = {**SegmentationModel.load(good).meta, key: value}
        bad = tmp_path / f"bad-{key}.safetensors"
        save_file(state, str(bad), metadata={"mung": json.dumps(meta)})
        with pytest.raises(MungError, match=f"incompatible segmentation model: {key}") as exc:
            SegmentationModel.load(bad)
        _one_line(exc)
    bigger = tmp_path / "bigger.safetensors"
    meta = {**SegmentationModel.load(good).meta, "hidden": 64}
    save_file(state, str(bigger), metadata={"mung": json.dumps(meta)})
    with pytest.raises(MungError, match="weights do not match") as exc:
        SegmentationModel.load(bigger)
    _one_line(exc)


@pytest.mark.parametrize(("option", "value"), [("--workers", "-1"), ("--speed-perturb", "0.7")])
def test_cli_refuses_bad_training_settings(capsys, tmp_path, option, value):
    code, _, err = run_cli(capsys, "diarize", "train-segmentation", "--speech", tmp_path, "--out",
                           tmp_path / "m.safetensors", option, value)
    name = option.strip("-").replace("-", "_")
    assert code != 0 and name in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m.safetensors").exists()


def test_cli_refuses_a_foreign_init_model(capsys, small_bank, tmp_path):
    folder, _ = small_bank
    code, _, err = run_cli(capsys, "diarize", "train-segmentation", "--speech", folder, "--out",
                           tmp_path / "m.safetensors", "--init",
                           MUSIC_MODEL)
    assert code != 0
    assert err.strip().startswith("error:") and "not a mung segmentation model" in err
    assert len(err.strip().splitlines()) == 1
