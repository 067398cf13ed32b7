"""SpeakerNet-1D (DESIGN-NOTES §2.2): the 128 mel bins are input channels and SE residual blocks
convolve along time only (the seed found this worse than 2-D)."""

from __future__ import annotations

from torch import nn

from mung.music.models.base import Aggregator, Backbone, SEBlock


class SEBasicBlock1d(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm1d(cout), nn.ReLU(inplace=True),
            nn.Conv1d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm1d(cout), SEBlock(cout),
        )
        self.short = (nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))
                      if stride != 1 or cin != cout else nn.Identity())
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.short(x))


class SpeakerNet1D(Backbone):
    def __init__(self, aggregation: str = "gru", n_mels: int = 128,
                 channels: tuple[int, ...] = (64, 128, 128, 256), blocks: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__()
        self.stem = nn.Sequential(nn.Flatten(1, 2), nn.Conv1d(n_mels, channels[0], 7, 1, 3, bias=False),
                                  nn.BatchNorm1d(channels[0]), nn.ReLU(inplace=True))
        stages, cin = [], channels[0]
        for c, n, s in zip(channels, blocks, (1, 2, 2, 1), strict=True):
            stages.append(nn.Sequential(*[SEBasicBlock1d(cin if i == 0 else c, c, s if i == 0 else 1)
                                          for i in range(n)]))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.stage_channels = list(channels)
        self.agg = Aggregator(aggregation, channels[-1])

    def to_sequence(self, x):
        return x.transpose(1, 2)
