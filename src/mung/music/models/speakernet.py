"""SpeakerNet (2-D): the ResNetSE34L trunk (DESIGN-NOTES §2.1, §4) on the mel image — conv 7×7
(stride (2,1)), SE basic-block stages [3,4,6,3] with channels [16,32,64,128] and strides
1, 2, 2, 1, mean over frequency, then ``gru`` / ``avgpool`` / ``sap`` aggregation over time."""

from __future__ import annotations

from torch import nn

from mung.music.models.base import Aggregator, Backbone, SEBlock


class SEBasicBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int | tuple[int, int] = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), SEBlock(cout),
        )
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.short(x))


class SpeakerNet(Backbone):
    def __init__(self, aggregation: str = "gru", channels: tuple[int, ...] = (16, 32, 64, 128),
                 blocks: tuple[int, ...] = (3, 4, 6, 3), stem_stride: tuple[int, int] = (2, 1)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, channels[0], 7, stem_stride, 3, bias=False),
                                  nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True))
        strides = (1, 2, 2, 1)
        stages, cin = [], channels[0]
        for c, n, s in zip(channels, blocks, strides, strict=True):
            stages.append(nn.Sequential(*[SEBasicBlock2d(cin if i == 0 else c, c, s if i == 0 else 1)
                                          for i in range(n)]))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.stage_channels = list(channels)
        self.agg = Aggregator(aggregation, channels[-1])
