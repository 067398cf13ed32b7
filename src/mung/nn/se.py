"""Squeeze-and-excitation (Hu et al., CVPR 2018): a channel gate, and the residual basic block
built around it that ResNetSE34L and the music SpeakerNets share."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SEGate(nn.Module):
    """``x · sigmoid(MLP(mean over positions of x))`` per channel, for 1-D or 2-D feature maps.
    ``conv`` uses 1×1 convolutions with batch norm after the squeeze (ReXNet's form); the default
    is two linear layers (ResNetSE34L's). Parameters live in ``fc`` in both forms, so the published
    voxceleb_trainer checkpoints load unchanged."""

    def __init__(self, channels: int, hidden: int, conv: bool = False) -> None:
        super().__init__()
        self.conv = conv
        if conv:
            self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden),
                                    nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1), nn.Sigmoid())
        else:
            self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv:
            return x * self.fc(x.mean((2, 3), keepdim=True))
        w = self.fc(x.flatten(2).mean(-1))
        return x * w.view(*w.shape, *([1] * (x.dim() - 2)))


class SEBasicBlock(nn.Module):
    """Two 3-wide convolutions with an SE gate and a residual path; ``dim`` 2 for the mel image,
    1 for convolution along time only. ``relu_first`` applies ReLU before the first batch norm, as
    the published ResNetSE34L does (its weights then behave identically); otherwise the usual
    conv → BN → ReLU order. Parameter names are voxceleb_trainer's (``conv1``, ``bn1``, ``se.fc``,
    ``downsample``)."""

    def __init__(self, c_in: int, c_out: int, stride: int | tuple[int, int] = 1, se_hidden: int | None = None,
                 dim: int = 2, relu_first: bool = True) -> None:
        super().__init__()
        conv, bn = (nn.Conv2d, nn.BatchNorm2d) if dim == 2 else (nn.Conv1d, nn.BatchNorm1d)
        self.relu_first = relu_first
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = bn(c_out)
        self.conv2 = conv(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = bn(c_out)
        self.se = SEGate(c_out, se_hidden or max(4, c_out // 8))
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), bn(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.bn1(F.relu(out)) if self.relu_first else F.relu(self.bn1(out))
        out = self.se(self.bn2(self.conv2(out)))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(out + residual)
