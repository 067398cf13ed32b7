"""SpeakerNet-1D: the 128 mel bins are input channels and SE residual blocks
convolve along time only (the seed found this worse than 2-D)."""

from __future__ import annotations

from torch import nn

from mung.music.models.base import Aggregator, Backbone, MusicNet, backbone_model, se_stages
from mung.registry import register


class SpeakerNet1D(Backbone):
    def __init__(self, aggregation: str = "gru", n_mels: int = 128,
                 channels: tuple[int, ...] = (64, 128, 128, 256), blocks: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(1, 2), nn.Conv1d(n_mels, channels[0], 7, 1, 3, bias=False),
                                  nn.BatchNorm1d(channels[0]), nn.ReLU(inplace=True))
        self.stages = se_stages(channels[0], tuple(channels), tuple(blocks), (1, 2, 2, 1), dim=1)
        self.stage_channels = list(channels)
        self.agg = Aggregator(aggregation, channels[-1])

    def to_sequence(self, x):
        return x.transpose(1, 2)


@register("music_model", "speakernet1d")
def speakernet1d(kwargs: dict, heads: dict[str, int], aux: dict | None = None) -> MusicNet:
    return backbone_model(SpeakerNet1D, kwargs, heads)
