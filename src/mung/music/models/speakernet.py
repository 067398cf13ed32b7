"""SpeakerNet (2-D): the ResNetSE34L trunk (Chung et al., Interspeech 2020) on the mel image — conv 7×7
(stride (2,1)), SE basic-block stages [3,4,6,3] with channels [16,32,64,128] and strides
1, 2, 2, 1, mean over frequency, then ``gru`` / ``avgpool`` / ``sap`` aggregation over time."""

from __future__ import annotations

from torch import nn

from mung.music.models.base import Aggregator, Backbone, MusicNet, backbone_model, se_stages
from mung.registry import register


class SpeakerNet(Backbone):
    def __init__(self, aggregation: str = "gru", channels: tuple[int, ...] = (16, 32, 64, 128),
                 blocks: tuple[int, ...] = (3, 4, 6, 3), stem_stride: tuple[int, int] = (2, 1)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels[0], 7, tuple(stem_stride), 3, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        self.stages = se_stages(channels[0], tuple(channels), tuple(blocks), (1, 2, 2, 1), dim=2)
        self.stage_channels = list(channels)
        self.agg = Aggregator(aggregation, channels[-1])


@register("music_model", "speakernet")
def speakernet(kwargs: dict, heads: dict[str, int], aux: dict | None = None) -> MusicNet:
    return backbone_model(SpeakerNet, kwargs, heads)
