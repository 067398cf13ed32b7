"""Every registry model: documented output shapes, and it overfits a tiny real batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from music_fixtures import tiny_batch

from mung.errors import MungError
from mung.music.models import build
from mung.registry import names

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def batch():
    x, y = tiny_batch(64)
    return torch.from_numpy(x), torch.from_numpy(y)


def _spec(name: str) -> dict:
    if name == "attention":
        aux = {"name": "crnn", "kwargs": {"channels": [8, 8, 8, 8]}, "heads": {"mood": 6}, "task": "mood"}
        return {"name": "attention", "kwargs": {"base": "speakernet"}, "heads": {"station": 4}, "aux": aux}
    return {"name": name, "heads": {"station": 4}}


def _overfit(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 15) -> list[float]:
    torch.manual_seed(0)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    losses = []
    for _ in range(steps):
        model.train()
        loss = F.cross_entropy(model(x)["station"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("name", names("music_model"))
def test_model_shapes_and_overfit(batch, name):
    torch.manual_seed(0)
    x, y = batch
    model = build(_spec(name))
    with torch.no_grad():
        out = model.eval()(x)
    assert set(out) == {"station"} and out["station"].shape == (4, 4)
    losses = _overfit(model, x, y)
    assert min(losses[-5:]) < 0.5 * losses[0], f"{name}: loss {losses[0]:.3f} → {losses[-5:]}"


def test_multitask_heads_and_variable_length(batch):
    model = build({"name": "crnn", "heads": {"station": 4, "mood": 50}}).eval()
    for frames in (64, 200):
        out = model(torch.zeros(2, 1, 128, frames))
        assert out["station"].shape == (2, 4) and out["mood"].shape == (2, 50)


@pytest.mark.parametrize("agg", ["gru", "avgpool", "sap"])
def test_speakernet_aggregations(agg):
    model = build({"name": "speakernet", "kwargs": {"aggregation": agg}, "heads": {"mood": 7}}).eval()
    assert model(torch.zeros(1, 1, 128, 40))["mood"].shape == (1, 7)


def test_attention_aux_stays_frozen(batch):
    x, y = batch
    model = build(_spec("attention"))
    before = {k: v.clone() for k, v in model.aux.state_dict().items()}
    _overfit(model, x, y, steps=2)
    assert not model.aux.training
    for k, v in model.aux.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_attention_gate_varies_with_an_unconfident_aux(batch):
    """An untrained auxiliary barely tells clips apart; standardising its output must still give
    clip-dependent gates (else the next BatchNorm cancels the attention)."""
    x, _ = batch
    torch.manual_seed(0)
    model = build(_spec("attention")).train()
    with torch.no_grad():
        p = torch.sigmoid(model.aux(x)["mood"])
        raw = torch.sigmoid(model.maps[0](p)).std(0).mean()
        gated = torch.sigmoid(model.maps[0](model.norm(p))).std(0).mean()
    assert p.std(0).max() < 1e-3
    assert gated > 100 * raw, (float(raw), float(gated))


def test_resnext_width_scales_channels():
    slim = build({"name": "resnext50", "kwargs": {"blocks": [1, 1, 1, 1], "width": 0.25},
                  "heads": {"station": 4}})
    assert slim.backbone.stage_channels == [64, 128, 256, 512]
    assert slim.eval()(torch.zeros(1, 1, 128, 64))["station"].shape == (1, 4)


def test_unknown_model_is_a_user_error():
    with pytest.raises(MungError, match="unknown model"):
        build({"name": "vgg", "heads": {"station": 4}})


def test_weights_saved_before_the_shared_blocks_load_and_compute_the_same():
    """Old SE-block / attentive-pooling keys are renamed exactly (the pooling's bias, a constant
    before a softmax, is dropped)."""
    from mung.music.model_io import upgrade_keys

    spec = {"name": "speakernet", "heads": {"station": 4},
            "kwargs": {"channels": [8, 16, 32, 64], "blocks": [1, 1, 1, 1], "stem_stride": [2, 2],
                       "aggregation": "sap"}}
    torch.manual_seed(0)
    new = build(spec).eval()
    legacy = {}
    names = {"conv1": "body.0", "bn1": "body.1", "conv2": "body.3", "bn2": "body.4", "se": "body.5",
             "downsample": "short"}
    for key, value in new.state_dict().items():
        old = key
        for now, before in names.items():
            old = old.replace(f".{now}.", f".{before}.")
        if old.endswith("sap.attention"):
            legacy[old.replace("sap.attention", "att.2.weight")] = value.T.clone()
            legacy[old.replace("sap.attention", "att.2.bias")] = torch.tensor([3.0])
        else:
            legacy[old.replace("sap.linear.", "att.0.")] = value
    assert any(".body.5." in k for k in legacy) and any("att.2.bias" in k for k in legacy)
    again = build(spec).eval()
    again.load_state_dict(upgrade_keys(legacy, again.state_dict()))
    x = torch.randn(2, 1, 128, 64)
    with torch.no_grad():
        assert torch.allclose(new(x)["station"], again(x)["station"], atol=1e-6)


def test_random_convolutions_come_from_the_seed_and_stay_untrained(batch):
    x, y = batch
    a, b, c = (build({"name": "randconv", "kwargs": {"seed": s}, "heads": {"station": 4}}) for s in (0, 0, 1))
    filters = [m.backbone.banks[0].weight.clone() for m in (a, b, c)]
    assert torch.equal(filters[0], filters[1]) and not torch.allclose(filters[0], filters[2])
    before = a.backbone.banks.state_dict()
    _overfit(a, x, y, steps=3)
    assert all(torch.equal(v, a.backbone.banks.state_dict()[k]) for k, v in before.items())
    with torch.no_grad():  # a clip shorter than the widest filter still gives finite statistics
        feats = a.eval().backbone.features(x[:, :, :, :5])
    assert feats.shape == (len(x), 3 * 64 * len(a.backbone.banks)) and torch.isfinite(feats).all()
    with pytest.raises(MungError, match="does not fit"):  # 50-bin filters on 32 pooled bins: one line
        build({"name": "randconv", "kwargs": {"n_mels": 64}, "heads": {"station": 4}})
