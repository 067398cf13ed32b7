"""CRNN (Choi, Fazekas, Sandler & Cho, ICASSP 2017): 4 blocks of 3×3 conv, BN,
ELU and max-pool that reduce 128 mel bins to 1, then a 2-layer GRU whose last state is the
summary. ``channels`` and ``hidden`` are settings (paper: 64/128/128/128, 32 GRU units)."""

from __future__ import annotations

from torch import nn

from mung.music.models.base import Backbone, MusicNet, backbone_model
from mung.registry import register

POOLS = ((2, 2), (4, 2), (4, 2), (4, 2))  # 128 mel bins → 1, time ÷ 16


class CRNN(Backbone):
    def __init__(self, channels: tuple[int, ...] = (64, 128, 128, 128), hidden: int = 32,
                 aggregation: str = "gru", pools: tuple[tuple[int, int], ...] = POOLS):
        super().__init__()
        self.stem = nn.BatchNorm2d(1)
        stages, cin = [], 1
        for c, p in zip(channels, pools, strict=True):
            stages.append(nn.Sequential(nn.Conv2d(cin, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c),
                                        nn.ELU(inplace=True), nn.MaxPool2d(p), nn.Dropout(0.1)))
            cin = c
        self.set_stages(stages, list(channels), aggregation, hidden=hidden)


@register("music_model", "crnn")
def crnn(kwargs: dict, heads: dict[str, int], aux: dict | None = None) -> MusicNet:
    return backbone_model(CRNN, kwargs, heads)
