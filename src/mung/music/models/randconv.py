"""Random convolutional features (Pons & Serra, "Randomly weighted CNNs for (music) audio
classification", ICASSP 2019): one layer of convolutions that are never trained, of musically
motivated shapes — tall "timbre" filters over mel bins, wide "temporal" filters over frames,
small squares — then ReLU, the maximum over frequency and the mean / maximum / standard
deviation over time. On small labelled sets such features rival trained networks: the filters
cannot over-fit the few labels, only the head is fitted (as for :class:`MelStats`).

The input, the normalised mel ``[B, 1, 128, T]``, is average-pooled 2× in frequency and 4× in
time (64 bins × 128 ms: a 30-s clip is 64 × 235, about 12 ms of one core per clip) and
standardised per clip. The filters are drawn from ``seed`` (He-normal weights, PyTorch's
uniform bias) and stored in the checkpoint like any weights. On the music-4q train split
(5 artist-disjoint folds, logistic heads, three filter draws): mood macro PR-AUC 0.219-0.229 out
of fold, above each hand-crafted member (0.193-0.207); station accuracy 0.624-0.625, below them
(0.636-0.652). Averaged with ``richstats`` + one layer (the shipped default) the moods reach
0.225-0.232 where the hand-crafted ensembles stay at 0.199-0.211.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mung.music.models.base import MusicNet, backbone_model
from mung.music.models.melstats import StatsBackbone
from mung.registry import register

# (height in pooled mel bins, width in pooled frames) of each bank
SHAPES = ((4, 1), (16, 1), (32, 1), (50, 1), (1, 4), (1, 16), (1, 32), (3, 3), (5, 5))


class RandConv(StatsBackbone):
    def __init__(self, n_mels: int = 128, hidden: int = 0, channels: int = 64, seed: int = 0,
                 pool: tuple[int, int] = (2, 4), shapes: tuple[tuple[int, int], ...] = SHAPES):
        super().__init__()
        self.pool = tuple(pool)
        self.banks = nn.ModuleList()
        g = torch.Generator().manual_seed(seed)
        for kh, kw in shapes:
            if kh > n_mels // self.pool[0]:
                raise ValueError(f"randconv: a filter {kh} bins tall does not fit {n_mels // self.pool[0]} "
                                 "pooled mel bins")
            conv = nn.Conv2d(1, channels, (kh, kw))
            bound = 1 / math.sqrt(kh * kw)
            with torch.no_grad():
                nn.init.kaiming_normal_(conv.weight, generator=g)
                conv.bias.uniform_(-bound, bound, generator=g)
            conv.requires_grad_(False)
            self.banks.append(conv)
        self.widest = max(kw for _, kw in shapes)
        self.stats_key = ("randconv", n_mels, channels, seed, self.pool, tuple(map(tuple, shapes)))
        self._head(3 * channels * len(shapes), hidden)

    def _statistics(self, x: torch.Tensor) -> torch.Tensor:
        need = self.pool[1] * (self.widest + 1)  # two outputs of the widest filter at least
        if x.shape[-1] < need:  # a very short input: repeated
            x = x.repeat(1, 1, 1, -(-need // x.shape[-1]))
        x = F.avg_pool2d(x, self.pool)
        mu = x.mean(dim=(1, 2, 3), keepdim=True)
        sd = x.std(dim=(1, 2, 3), keepdim=True)
        x = (x - mu) / (sd + 1e-5)
        rows = []
        for clip in x.split(1):  # one clip at a time: a batch of feature maps outgrows the caches
            out = []
            for conv in self.banks:
                h = torch.relu(conv(clip).amax(2))  # [1, channels, time]; ReLU after the max: the same
                out += [h.mean(-1), h.amax(-1), h.std(-1)]
            rows.append(torch.cat(out, dim=1))
        return torch.cat(rows)


@register("music_model", "randconv")
def randconv(kwargs: dict, heads: dict[str, int], aux: dict | None = None) -> MusicNet:
    return backbone_model(RandConv, kwargs, heads)
