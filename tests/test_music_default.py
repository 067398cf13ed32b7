"""The shipped default music model and the pieces it is built from: rich hand-crafted
descriptors (known answers on synthetic audio), the L-BFGS head fit, artist grouping, the
mood-head prior initialisation, and the val metrics stored in the package."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from music_fixtures import MUSIC, music_dir

from mung.music.data import MelCache
from mung.music.evaluate import evaluate
from mung.music.features import mel_from_wave, normalise
from mung.music.model_io import default_checkpoints, read_meta
from mung.music.models import build
from mung.music.statsfit import artist_key, fit_linear
from mung.music.tag import tag
from mung.music.train import MusicTrainConfig, init_mood_bias, train

pytestmark = pytest.mark.usefixtures("one_thread")
SR = 16000


def _descriptors(wave: np.ndarray) -> dict:
    model = build({"name": "richstats", "heads": {"station": 4}}).eval()
    x = torch.from_numpy(normalise(mel_from_wave(wave.astype(np.float32)))[None])
    return model.backbone.descriptors(x)


def test_chroma_of_a_440_hz_tone_is_a():
    t = np.arange(10 * SR) / SR
    d = _descriptors(0.3 * np.sin(2 * np.pi * 440 * t))
    assert int(d["chroma_mean"].argmax()) == 9  # C = 0 … A = 9
    assert float(d["chroma_in_key"][0].max()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("bpm", [90, 120])
def test_tempo_of_a_click_track(bpm):
    wave = np.zeros(30 * SR)
    noise = np.random.default_rng(0).standard_normal(160)
    for s in np.arange(0, 30, 60 / bpm):
        wave[int(s * SR) : int(s * SR) + 160] = noise
    d = _descriptors(wave)
    assert 2 ** float(d["tempo_log2_bpm"][0]) == pytest.approx(bpm, rel=0.04)
    assert float(d["pulse_clarity"][0]) > 0.5


def test_louder_half_widens_the_dynamic_range():
    rng = np.random.default_rng(0)
    steady = 0.1 * rng.standard_normal(20 * SR)
    varied = steady * np.repeat([1.0, 10.0], 10 * SR)
    q_range = 5  # dynamics: mean, std, q10, q50, q90, q90 − q10, ...
    wide, narrow = (float(_descriptors(w)["dynamics"][0, q_range]) for w in (varied, steady))
    assert wide > narrow + 1.5


def test_artist_key_groups_collaborations():
    assert artist_key("Bob Marley & the Wailers") == "bob marley"
    assert artist_key("Nina Simone feat. X") == artist_key("NINA SIMONE") == "nina simone"
    assert artist_key("Mandrake") == "mandrake"  # no cut inside a word


def test_fit_linear_separates_and_regularises():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((200, 5)).astype(np.float32)
    y = (z[:, 0] > 0).astype(int)
    w, b = fit_linear(z, y, "station", 1e-3)
    assert ((z @ w.T + b).argmax(1) == y).mean() > 0.97
    w_strong, _ = fit_linear(z, y, "station", 10.0)
    assert np.abs(w_strong).sum() < 0.2 * np.abs(w).sum()
    ym = np.stack([y, 1 - y], 1)
    wm, bm = fit_linear(z, ym, "mood", 1e-3)
    assert (((z @ wm.T + bm) > 0) == ym.astype(bool)).mean() > 0.97


def _tiny_mood_set(path, n_train: int = 10, n_val: int = 5) -> tuple:
    """Real clips tagged "calm" (so the tag's prior is high) as a tiny train / val set."""
    with open(music_dir() / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "station", "moods", "split"])
        for split, n in (("train", n_train), ("val", n_val)):
            for r in [r for r in rows if r["split"] == split and "calm" in r["moods"].split("|")][:n]:
                w.writerow([str(MUSIC / r["file"]), r["station"], r["moods"], split])
    return path


def test_prior_bias_gives_nonzero_micro_f1_after_one_epoch(tmp_path):
    labels = _tiny_mood_set(tmp_path / "labels.csv")
    cfg = MusicTrainConfig(task="mood", model="melstats", epochs=1, crop_frames=256, lr=1e-4)
    cache = MelCache(cfg.mel)  # decode the clips once for both runs
    res = train(cfg, labels, tmp_path / "prior", progress=False, cache=cache)
    assert res.metrics["mood_micro_f1@0.5"] > 0.1
    ck = read_meta(res.checkpoint)
    assert ck["train_config"]["mood_prior"] is True
    uninformed = train(MusicTrainConfig(**{**cfg.__dict__, "mood_prior": False}), labels, tmp_path / "zero",
                       progress=False, cache=cache)
    # a zero bias leaves every tag near p = 0.5: the prior-initialised head ranks tags far better
    assert res.metrics["mood_micro_f1@0.5"] > uninformed.metrics["mood_micro_f1@0.5"] + 0.1


def test_keep_last_runs_every_epoch_and_keeps_the_last(tmp_path):
    """``keep="last"``: no early stopping and no choice on val; ``best`` stops after ``patience``."""
    labels = _tiny_mood_set(tmp_path / "labels.csv")
    cfg = MusicTrainConfig(task="mood", model="melstats", epochs=4, crop_frames=64, lr=1e-6, patience=1)
    cache = MelCache(cfg.mel)
    last = train(MusicTrainConfig(**{**cfg.__dict__, "keep": "last"}), labels, tmp_path / "last",
                 progress=False, cache=cache)
    assert len(last.history) == 4 and read_meta(last.checkpoint)["kept_epoch"] == 4
    best = train(cfg, labels, tmp_path / "best", progress=False, cache=cache)
    meta = read_meta(best.checkpoint)
    assert meta["kept_epoch"] == meta["best_epoch"] == best.best_epoch
    assert len(best.history) <= best.best_epoch + 1  # stopped one stale epoch after its best


def test_init_mood_bias_is_the_prior_logit():
    model = build({"name": "melstats", "heads": {"mood": 3}})
    ym = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32)
    init_mood_bias(model, ym)
    prior = (ym.sum(0) + 0.5) / 5
    assert np.allclose(torch.sigmoid(model.heads["mood"].bias).detach().numpy(), prior, atol=1e-6)


def test_shipped_default_tags_a_real_clip_and_is_an_ensemble_of_kinds():
    paths = default_checkpoints()
    metas = [read_meta(p) for p in paths]
    # a kind: the features a member reads and the head on them (linear, or one hidden layer);
    # no two members of one kind, and more than one feature set or architecture among them
    kinds = {(m["spec"]["name"], "mlp" if m["spec"].get("kwargs", {}).get("hidden") else "linear")
             for m in metas}
    assert len(kinds) == len(paths) >= 2 and len({m["spec"]["name"] for m in metas}) >= 2
    assert sum(p.stat().st_size for p in paths) < 8e6
    (row,) = tag([], [MUSIC / "audio" / "MT0000082187.ogg"])
    assert row["station"] in {"Q1", "Q2", "Q3", "Q4"} and len(row["mood_scores"]) == 50
    assert abs(sum(row["station_probs"].values()) - 1) < 1e-3


def test_stored_val_metrics_equal_a_fresh_evaluation():
    music_dir()
    paths = default_checkpoints()
    stored = read_meta(paths[0])["default_ensemble"]["val_metrics"]
    fresh = evaluate([], MUSIC, "val", progress=False)
    for key in ("station_accuracy", "mood_macro_pr_auc", "mood_micro_f1@0.5", "mood_micro_f1@tuned"):
        assert fresh[key] == pytest.approx(stored[key], abs=2e-3), key
    assert fresh["tracks"] == 144


def test_ensemble_members_share_features_without_changing_predictions():
    from mung.music.ensemble import Ensemble
    from mung.music.features import load_mel
    from mung.music.predict import predict_mels

    ens = Ensemble(default_checkpoints())
    mels = [load_mel(MUSIC / "audio" / f) for f in ("MT0000082187.ogg", "MT0000004637.ogg")]
    shared = ens.predict_mels(mels)
    alone: dict[str, np.ndarray] = {}
    for w, m in zip(ens.weights, ens.members, strict=True):
        normed = [normalise(x, m.mel.normalisation) for x in mels]
        for task, p in predict_mels(m.model, normed, m.meta["crop_frames"]).items():
            alone[task] = alone.get(task, 0) + w * p
    for task in ("station", "mood"):
        assert np.allclose(shared[task], alone[task], atol=1e-6), task
    # each member stores its statistics once per batch and reads them back; richstats' start with
    # melstats' (which it stores too, for a melstats member to reuse)
    x = torch.from_numpy(np.stack([normalise(mels[0])[:, :, :940]]))
    cache: dict = {}
    for m in ens.members:
        backbone = m.model.backbone
        feats = backbone.features(x, cache)
        assert backbone.features(x, cache) is feats and torch.allclose(feats, backbone.features(x), atol=1e-5)
    plain = build({"name": "melstats", "heads": {"station": 4}}).backbone
    rich = build({"name": "richstats", "heads": {"station": 4}}).backbone
    assert torch.equal(plain.features(x), rich.features(x)[:, : plain.features(x).shape[1]])
