"""Attention map from the other task (after Jung et al., Interspeech 2020). Our implementable form — a design
choice, not the code of Jung et al. (Interspeech 2020): a frozen auxiliary model gives
``p`` (sigmoid of mood logits, or softmax of station logits) for the whole input; per conv stage a
learned ``a = sigmoid(W p + b)`` (one value per channel) rescales the stage output as
``F ⊙ (1 + a)`` (``gate="one_plus"``, identity reachable) or ``F ⊙ a`` (``gate="plain"``).

``p`` is standardised (BatchNorm without affine parameters) before the map: an affine change of
``W p + b``, so the same functions, but the map sees the auxiliary's variation at unit scale. Without
it an unconfident auxiliary gives an almost constant ``a`` that the next BatchNorm cancels, and
the attention arm trains exactly like its baseline."""

from __future__ import annotations

import torch
from torch import nn

from mung.errors import MungError
from mung.music.models.base import MusicNet, build
from mung.registry import register


class AttentionNet(nn.Module):
    def __init__(self, net: MusicNet, aux: MusicNet, aux_task: str, gate: str = "one_plus"):
        super().__init__()
        if not net.backbone.stage_channels:
            raise ValueError("attention needs a backbone with conv stages")
        if gate not in ("one_plus", "plain"):
            raise ValueError(f"unknown gate {gate!r} (one_plus, plain)")
        self.net, self.aux, self.aux_task, self.gate = net, aux, aux_task, gate
        for p in self.aux.parameters():
            p.requires_grad_(False)
        k = aux.heads[aux_task].out_features
        self.norm = nn.BatchNorm1d(k, affine=False)
        self.maps = nn.ModuleList(nn.Linear(k, c) for c in net.backbone.stage_channels)

    def train(self, mode: bool = True):
        super().train(mode)
        self.aux.eval()  # the auxiliary model stays frozen (BN statistics included)
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            logits = self.aux(x)[self.aux_task]
            p = torch.sigmoid(logits) if self.aux_task == "mood" else torch.softmax(logits, -1)
        p = self.norm(p)

        def hook(i: int, f: torch.Tensor) -> torch.Tensor:
            a = torch.sigmoid(self.maps[i](p)).view(*p.shape[:1], -1, *([1] * (f.dim() - 2)))
            return f * (1 + a) if self.gate == "one_plus" else f * a

        return self.net(x, hook)


@register("music_model", "attention")
def attention(kwargs: dict, heads: dict[str, int], aux: dict | None = None) -> AttentionNet:
    """``kwargs``: ``base`` (backbone name, default speakernet), ``gate`` and the base's own
    settings; ``aux``: the frozen auxiliary model's spec plus its ``task``."""
    if not aux:
        raise MungError("attention model needs a frozen auxiliary model (--aux CHECKPOINT)")
    kwargs = dict(kwargs)
    base = kwargs.pop("base", "speakernet")
    gate = kwargs.pop("gate", "one_plus")
    net = build({"name": base, "kwargs": kwargs, "heads": heads})
    return AttentionNet(net, build(aux), aux["task"], gate)
