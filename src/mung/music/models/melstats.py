"""Hand-crafted features as a network (not from the seed; the "hand-crafted features + linear
model" baseline of music emotion recognition, after Panda et al. 2018): statistics of the whole input —
per-mel-bin mean, std, mean |Δ| and std Δ; 20 cepstral coefficients (DCT of the log-mel) with
mean, std and covariance; a log modulation spectrum (16 bands × 12 rhythm-rate bins, 0.1–15 Hz)
for tempo and rhythm — standardised by a non-affine batch norm. With ``hidden=0`` the linear head
is a logistic regression; ``hidden`` > 0 adds one small layer."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from mung.music.models.base import Backbone, MusicNet, backbone_model
from mung.registry import register


def _dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    k = torch.arange(n_out, dtype=torch.float32)[:, None]
    n = torch.arange(n_in, dtype=torch.float32)[None]
    m = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return m


def cached(cache: dict | None, key: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``cache[key]``, computed (and stored) on the first call; no cache → just compute."""
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


class StatsBackbone(Backbone):
    """A backbone whose input is summarised into one fixed vector of clip statistics
    (:meth:`_statistics`), standardised by a non-affine batch norm and read by a linear head
    (``hidden=0``: a logistic regression, fitted directly by :mod:`mung.music.statsfit`) or one
    small layer. The statistics are kept in an ensemble's per-batch cache under
    :attr:`stats_key`, so members that share them compute them once."""

    stats_key: tuple

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Identity()
        self.stages = nn.ModuleList()
        self.stage_channels = []

    def _head(self, dim: int, hidden: int) -> None:
        """Standardisation of the ``dim`` statistics and the optional hidden layer."""
        self.norm = nn.BatchNorm1d(dim, affine=False)
        self.mlp = (nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Dropout(0.3))
                    if hidden else nn.Identity())
        self._out = hidden or dim

    @property
    def out_dim(self) -> int:
        return self._out

    def features(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        """``[B, 1, M, T]`` → ``[B, D]`` statistics; kept in ``cache`` (if given) under
        :attr:`stats_key`."""
        return cached(cache, self.stats_key, lambda: self._statistics(x))

    def _statistics(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, hook=None, cache: dict | None = None) -> torch.Tensor:
        return self.mlp(self.norm(self.features(x, cache)))


class MelStats(StatsBackbone):
    def __init__(self, n_mels: int = 128, hidden: int = 0, n_ceps: int = 20, bands: int = 16,
                 mod_bins: int = 12, frame_rate: float = 31.25):
        super().__init__()
        self.bands, self.mod_bins, self.frame_rate = bands, mod_bins, frame_rate
        self.register_buffer("dct", _dct_matrix(n_mels, n_ceps), persistent=False)
        self.register_buffer("mod_edges", torch.logspace(math.log10(0.1), math.log10(15.0), mod_bins + 1),
                             persistent=False)
        self.iu = torch.triu_indices(n_ceps, n_ceps)
        self.stats_key = ("melstats", n_mels, n_ceps, bands, mod_bins, frame_rate)
        self._head(4 * n_mels + 2 * n_ceps + self.iu.shape[1] + bands * mod_bins, hidden)

    def _statistics(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, 0]
        b, m, t = x.shape
        d = x.diff(dim=-1) if t > 1 else torch.zeros_like(x)
        ceps = torch.einsum("cm,bmt->bct", self.dct, x)
        cc = ceps - ceps.mean(-1, keepdim=True)
        cov = (cc @ cc.transpose(1, 2) / max(t - 1, 1))[:, self.iu[0], self.iu[1]]
        env = x.reshape(b, self.bands, m // self.bands, t).mean(2)
        spec = torch.fft.rfft(env - env.mean(-1, keepdim=True), dim=-1).abs()
        freqs = torch.fft.rfftfreq(t, d=1.0 / self.frame_rate).to(x.device)
        idx = torch.bucketize(freqs, self.mod_edges) - 1
        onehot = torch.nn.functional.one_hot(idx.clamp(0, self.mod_bins), self.mod_bins + 1)
        onehot = onehot[:, : self.mod_bins]
        onehot = onehot * ((idx >= 0) & (idx < self.mod_bins))[:, None]
        counts = onehot.sum(0).clamp(min=1)
        mod = torch.log1p((spec @ onehot.to(spec.dtype)) / counts).flatten(1)
        return torch.cat([x.mean(-1), x.std(-1), d.abs().mean(-1), d.std(-1), ceps.mean(-1), ceps.std(-1),
                          cov, mod], dim=1)

@register("music_model", "melstats")
def melstats(kwargs: dict, heads: dict[str, int], aux: dict | None = None) -> MusicNet:
    return backbone_model(MelStats, kwargs, heads)
