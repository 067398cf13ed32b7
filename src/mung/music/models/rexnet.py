"""ReXNet-1.0 (Han et al., "Rethinking channel dimensions for efficient model design", 2020),
written out with one input channel. Not from ``timm``: timm imports torchvision, which does not
load beside the pinned CPU torch build, so the layout of ``timm``'s ``rexnet_100`` is reproduced
here (16 inverted-residual blocks, channels growing linearly 16 → 180, SE ratio 1/12 from the
third stage, 1280-d head conv). Stages are grouped by the stride pattern for the attention hook."""

from __future__ import annotations

import math

import torch
from torch import nn

from mung.music.models.base import Backbone, MusicNet, backbone_model
from mung.nn import SEGate
from mung.registry import register


def _conv_bn(cin: int, cout: int, k: int = 1, s: int = 1, groups: int = 1, act: nn.Module | None = None):
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class LinearBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int, se_ratio: float):
        super().__init__()
        self.use_short = stride == 1 and cin <= cout
        self.cin = cin
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn(cin, mid, act=nn.SiLU(inplace=True)))
        layers.append(_conv_bn(mid, mid, 3, stride, groups=mid))
        if se_ratio > 0:
            layers.append(SEGate(mid, max(8, int(mid * se_ratio)), conv=True))
        layers += [nn.ReLU6(inplace=True), _conv_bn(mid, cout)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.use_short:  # partial residual: the first cin channels
            out = torch.cat([out[:, : self.cin] + x, out[:, self.cin :]], dim=1)
        return out


class ReXNet(Backbone):
    def __init__(self, width: float = 1.0, aggregation: str = "avgpool", se_ratio: float = 1 / 12,
                 final_chs: int = 180, head_chs: int = 1280):
        super().__init__()
        layers, strides = [1, 2, 2, 3, 3, 5], [1, 2, 2, 2, 1, 2]
        n = sum(layers)
        stem_chs = round(32 * width)
        self.stem = _conv_bn(1, stem_chs, 3, 2, act=nn.SiLU(inplace=True))
        base, cin, stages, channels = 16.0, stem_chs, [], []
        for si, (count, stride) in enumerate(zip(layers, strides, strict=True)):
            blocks = []
            for bi in range(count):
                cout = round(base * width)
                blocks.append(LinearBottleneck(cin, cout, 1 if si == 0 else 6, stride if bi == 0 else 1,
                                               se_ratio if si >= 2 else 0.0))
                cin, base = cout, base + final_chs / n
            stages.append(nn.Sequential(*blocks))
            channels.append(cin)
        head = max(math.ceil(head_chs * width), 64)
        stages[-1].append(_conv_bn(cin, head, act=nn.SiLU(inplace=True)))
        channels[-1] = head
        self.set_stages(stages, channels, aggregation)


@register("music_model", "rexnet")
def rexnet(kwargs: dict, heads: dict[str, int], aux: dict | None = None) -> MusicNet:
    return backbone_model(ReXNet, kwargs, heads)
