"""ResNeXt-50 32×4d (Xie et al., "Aggregated residual transformations", CVPR 2017), one input
channel, written out instead of ``timm.resnext50_32x4d`` (timm needs torchvision, which does not
load beside the pinned CPU torch): stem 7×7/2 + max-pool, bottleneck stages [3,4,6,3] with
cardinality 32 and base width 4, output 2048 channels. About 23 M parameters. ``width`` scales every
stage's channels (0.25 keeps the shape at ~1/16 of the cost, for CPU ablations)."""

from __future__ import annotations

from torch import nn

from mung.music.models.base import Backbone, MusicNet, backbone_model
from mung.registry import register


class Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, groups: int, base_width: int):
        super().__init__()
        width = max(1, planes * base_width // 64) * groups
        cout = planes * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True), nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.body(x) + self.short(x))


class ResNeXt(Backbone):
    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3), groups: int = 32, base_width: int = 4,
                 aggregation: str = "avgpool", width: float = 1.0):
        super().__init__()
        stem = max(groups, int(64 * width))
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, cin, channels = [], stem, []
        for i, n in enumerate(blocks):
            planes = int(64 * width) * 2**i
            stages.append(nn.Sequential(*[
                Bottleneck(cin if b == 0 else planes * 4, planes, (1 if i == 0 else 2) if b == 0 else 1,
                           groups, base_width) for b in range(n)]))
            cin = planes * 4
            channels.append(cin)
        self.set_stages(stages, channels, aggregation)


@register("music_model", "resnext50")
def resnext50(kwargs: dict, heads: dict[str, int], aux: dict | None = None) -> MusicNet:
    return backbone_model(ResNeXt, kwargs, heads)
