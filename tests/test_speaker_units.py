"""Speaker embeddings without data: metrics by hand, checkpoints, voxceleb_trainer layout,
segment aggregation identity, and the bad checkpoints that must be explained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mung.errors import MungError
from mung.speaker.encoders import ResNetSE34LEncoder, load_encoder
from mung.speaker.losses import AngularPrototypical, SpeakerSoftmax
from mung.speaker.metrics import eer, eer_interval, min_dcf
from mung.speaker.model_io import AggregationConfig, SpeakerModel, load_speaker_model, save_speaker_model
from mung.speaker.models import ResNetSE34L, SegmentAggregator, segment_bounds
from mung.torchutil import cache_dir, count_parameters

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model() -> ResNetSE34L:
    torch.manual_seed(0)
    return ResNetSE34L().eval()


@pytest.fixture(scope="module")
def wav() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(3 * 16000) / 16000
    return (0.1 * np.sin(2 * np.pi * 180 * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


SPANS = np.array([[0.0, 1.5], [0.5, 2.0], [1.0, 3.0], [2.9, 3.0]])


def test_eer_and_min_dcf_hand_cases():
    # targets 0.9 0.8 0.3, non-targets 0.7 0.2 0.1: at t=0.7 one miss (1/3) and one false alarm (1/3)
    s, lab = np.array([0.9, 0.8, 0.3, 0.7, 0.2, 0.1]), np.array([1, 1, 1, 0, 0, 0])
    assert eer(s, lab) == pytest.approx(1 / 3)
    # best cost at t in (0.7, 0.8]: miss 1/3, no false alarm → 0.01·(1/3) / 0.01
    assert min_dcf(s, lab, p_target=0.01) == pytest.approx(1 / 3)
    assert eer(np.array([1, 2, 3, 4.0]), np.array([0, 0, 1, 1])) == 0.0
    assert eer(np.array([1, 2, 3, 4.0]), np.array([1, 1, 0, 0])) == 1.0
    assert min_dcf(np.array([1, 2, 3, 4.0]), np.array([0, 0, 1, 1])) == 0.0
    # at t=0.6 one of two targets is missed and one of two non-targets accepted → 0.5
    assert eer(np.array([0.2, 0.6, 0.4, 0.8]), np.array([1, 1, 0, 0])) == pytest.approx(0.5)
    # no threshold with equal rates: miss stays 1/3 while false alarms fall 1/2 → 0; they cross at 1/3
    assert eer(np.array([0.9, 0.8, 0.3, 0.5, 0.1]), np.array([1, 1, 1, 0, 0])) == pytest.approx(1 / 3)
    # p_target 0.5: rejecting all costs 0.5·1 / 0.5 = 1; t=0.6 → miss 1/2, fa 1/2 → 1
    assert min_dcf(np.array([0.2, 0.6, 0.4, 0.8]), np.array([1, 1, 0, 0]), p_target=0.5) == 1.0
    lo, hi = eer_interval(s, lab, n_boot=200)
    assert 0 <= lo <= 1 / 3 <= hi <= 1
    with pytest.raises(MungError, match="both target"):
        eer(np.array([0.1, 0.2]), np.array([1, 1]))


def test_architecture_size_and_shapes(model):
    assert 1.3e6 < count_parameters(model) < 1.5e6  # "about 1.4 M parameters" (Chung et al. 2020)
    with torch.no_grad():
        assert model(torch.randn(2, 16000)).shape == (2, 512)
    assert segment_bounds(8000, 8000, 4000).tolist() == [[0, 8000]]
    assert segment_bounds(20000, 8000, 4000).tolist() == [
        [0, 8000],
        [4000, 12000],
        [8000, 16000],
        [12000, 20000],
    ]


def test_losses_shapes_and_values():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16)
    loss, acc = AngularPrototypical()(x)
    assert loss.ndim == 0 and 0 <= acc <= 1
    same = torch.randn(4, 1, 16).repeat(1, 3, 1)  # perfect clusters → every query finds its prototype
    assert AngularPrototypical()(same)[1] == 1.0
    for margin in (0.0, 0.2):
        loss, _ = SpeakerSoftmax(16, 10, margin=margin)(x, torch.tensor([1, 2, 3, 4]))
        assert torch.isfinite(loss)


def test_checkpoint_round_trip_pt_and_safetensors(tmp_path, model, wav):
    sm = SpeakerModel(model, SegmentAggregator(512), AggregationConfig(0.4, 0.2), {"metrics": {"eer": 1.0}})
    ref = ResNetSE34LEncoder(sm).embed_spans(wav, SPANS)
    assert np.allclose(np.linalg.norm(ref, axis=1), 1, atol=1e-5)
    save_speaker_model(tmp_path / "m.pt", sm)
    with pytest.raises(MungError, match="exists"):
        save_speaker_model(tmp_path / "m.pt", sm)
    save_speaker_model(tmp_path / "m.safetensors", sm)
    raw = torch.load(tmp_path / "m.pt", weights_only=True)
    assert raw["architecture"] == "ResNetSE34L" and raw["model_config"]["frontend"]["n_mels"] == 40
    for name, tol in (("m.pt", 1e-6), ("m.safetensors", 5e-3)):
        back = load_speaker_model(tmp_path / name)
        assert back.aggregation == AggregationConfig(0.4, 0.2) and back.meta["metrics"]["eer"] == 1.0
        assert back.aggregator is not None
        out = load_encoder(f"resnetse34l:{tmp_path / name}").embed_spans(wav, SPANS)
        assert np.abs(out - ref).max() < tol


@pytest.mark.parametrize("layout", ["legacy", "model_state_dict", "module"])
def test_voxceleb_trainer_key_layout_loads(tmp_path, model, wav, layout):
    state = {f"__S__.{k}": v for k, v in model.state_dict().items()}
    state["__S__.torchfb.spectrogram.window"] = torch.hamming_window(400)
    state["__S__.torchfb.mel_scale.fb"] = torch.zeros(257, 40)
    state["__L__.w"], state["__L__.b"] = torch.tensor(10.0), torch.tensor(-5.0)
    if layout == "module":
        state = {f"module.{k}": v for k, v in state.items()}
    if layout == "model_state_dict":
        state = {"model_state_dict": state, "optimizer_state_dict": {}, "epoch": 3}
    torch.save(state, tmp_path / "baseline_lite_ap.model")
    enc = load_encoder(f"resnetse34l:{tmp_path / 'baseline_lite_ap.model'}")
    assert enc.dim == 512
    ref = ResNetSE34LEncoder(SpeakerModel(model)).embed_spans(wav, SPANS)
    assert np.abs(enc.embed_spans(wav, SPANS) - ref).max() < 1e-6


def test_one_segment_aggregation_equals_plain_embedding(model, wav):
    agg = SegmentAggregator(512)
    seg = torch.randn(5, 1, 512)
    assert torch.equal(agg(seg), seg[:, 0])
    for aggregator in (None, agg):
        sm = SpeakerModel(model, aggregator, AggregationConfig(1.0, 0.5))
        short = np.array([[0.0, 1.0], [1.2, 2.0], [2.5, 3.0]])  # each span fits one segment
        plain = ResNetSE34LEncoder(sm).embed_spans(wav, short)
        aggregated = ResNetSE34LEncoder(sm, segment_aggregation=True).embed_spans(wav, short)
        assert np.abs(plain - aggregated).max() < 1e-6
        long = ResNetSE34LEncoder(sm, segment_aggregation=True).embed_spans(wav, SPANS[:3])
        assert long.shape == (3, 512) and np.allclose(np.linalg.norm(long, axis=1), 1, atol=1e-5)
        one_by_one = [ResNetSE34LEncoder(sm, segment_aggregation=True).embed_spans(wav, SPANS[i : i + 1])
                      for i in range(3)]  # batched spans of different segment counts = one at a time
        assert np.abs(long - np.concatenate(one_by_one)).max() < 1e-5


def test_evaluation_needs_at_least_one_crop():
    from mung.speaker.evaluate import evaluate_trials

    with pytest.raises(MungError, match="crops must be at least 1"):
        evaluate_trials(None, [], ".", crops=0)


def test_other_architectures_and_bad_checkpoints_are_explained(tmp_path, model):
    vt_other = {
        "__S__.conv1.weight": torch.randn(32, 1, 3, 3),
        "__S__.attention.0.weight": torch.randn(8, 8),
        "__S__.fc.weight": torch.randn(256, 512),
    }  # e.g. ResNetSE34V2 / RawNet3 heads
    torch.save(vt_other, tmp_path / "v2.model")
    with pytest.raises(MungError, match="not a ResNetSE34L"):
        load_speaker_model(tmp_path / "v2.model")
    sm = SpeakerModel(model)
    save_speaker_model(tmp_path / "ours.pt", sm)
    payload = torch.load(tmp_path / "ours.pt", weights_only=True)
    torch.save({**payload, "architecture": "CRNN"}, tmp_path / "crnn.pt")
    with pytest.raises(MungError, match="architecture is 'CRNN'"):
        load_speaker_model(tmp_path / "crnn.pt")
    torch.save({"classifier.weight": torch.randn(4, 4)}, tmp_path / "music.pt")
    with pytest.raises(MungError, match="no '__S__.' keys"):
        load_speaker_model(tmp_path / "music.pt")
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.startswith("fc.")}
    torch.save(payload, tmp_path / "cut.pt")
    with pytest.raises(MungError, match="do not fit a ResNetSE34L"):
        load_speaker_model(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MungError, match="not a loadable"):
        load_speaker_model(tmp_path / "junk.pt")
    with pytest.raises(MungError, match="not found"):
        load_encoder(f"resnetse34l:{tmp_path / 'missing.pt'}")
    with pytest.raises(MungError, match="needs a checkpoint"):
        load_encoder("resnetse34l")
    with pytest.raises(MungError, match="segment aggregation needs"):
        load_encoder("default", segment_aggregation=True)


def test_batches_hold_distinct_speakers_with_m_utterances():
    from mung.speaker.train import plan_epoch

    speakers = [list(range(i * 5, i * 5 + 5)) for i in range(7)]  # 7 speakers × 5 utterances
    plan = plan_epoch(speakers, n_per_batch=3, m=2, rng=np.random.default_rng(0))
    used = [u for batch in plan for _, utts in batch for u in utts]
    assert len(used) == len(set(used)) and len(used) >= 20
    for batch in plan:
        spk = [s for s, _ in batch]
        assert 2 <= len(spk) <= 3 and len(set(spk)) == len(spk)
        assert all(len(utts) == 2 and all(u // 5 == s for u in utts) for s, utts in batch)


def test_cache_dir_follows_mung_cache_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("MUNG_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "mung"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mung"
    monkeypatch.setenv("MUNG_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_cache_dir_without_a_home_is_a_temporary_folder(monkeypatch):
    import tempfile
    from pathlib import Path

    monkeypatch.delenv("MUNG_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert cache_dir() == Path(tempfile.gettempdir()) / "mung-cache"
