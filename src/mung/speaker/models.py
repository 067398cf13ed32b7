"""ResNetSE34L ("Fast ResNet-34", Chung et al. 2020) and the segment aggregator (Jung et al. 2020).

Parameter names follow the published voxceleb_trainer layout (``conv1``, ``layer1.0.se.fc.0``,
``sap_linear``, ``attention``, ``fc``…) so its checkpoints load by stripping the ``__S__.`` prefix.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mung.config import Check, Config, Interval, Options, Type, param
from mung.nn import SEBasicBlock, attentive_statistics

_FOUR_COUNTS = Check(lambda v: isinstance(v, (list, tuple)) and len(v) == 4
                     and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in v),
                     "a list of four non-negative ints")


@dataclass
class FrontendConfig(Config):
    """Log-mel front-end: 16 kHz waveform → ``log(mel + 1e-6)``, instance-normalised per mel bin."""

    section: ClassVar[str] = "model_config.frontend"

    n_mels: int = param(40, Interval(int, 1, None))
    log_input: bool = param(True, Type(bool))  # False: mel power without the log
    sample_rate: int = param(16000, Interval(int, 1000, None))
    n_fft: int = param(512, Interval(int, 16, None))
    win_length: int = param(400, Interval(int, 16, None))  # Hamming window, samples
    hop_length: int = param(160, Interval(int, 1, None))


@dataclass
class ResNetSEConfig(Config):
    """ResNetSE34L trunk and head (defaults = the published 1.4 M-parameter model)."""

    section: ClassVar[str] = "model_config"

    layers: list[int] = param(dataclasses.MISSING, _FOUR_COUNTS, factory=lambda: [3, 4, 6, 3])
    channels: list[int] = param(dataclasses.MISSING, _FOUR_COUNTS, factory=lambda: [16, 32, 64, 128])
    n_out: int = param(512, Interval(int, 1, None))
    # SAP (self-attentive pooling) or ASP (attentive statistics)
    encoder_type: str = param("SAP", Options(("SAP", "ASP")))
    se_reduction: int = param(8, Interval(int, 1, None))
    frontend: FrontendConfig = param(factory=FrontendConfig)

    @classmethod
    def from_dict(cls, d: dict) -> ResNetSEConfig:
        d = dict(d)
        d["frontend"] = FrontendConfig(**d.get("frontend", {}))
        return cls(**d)


def htk_mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK-scale mel filters without area normalisation, ``[n_freqs, n_mels]``."""

    def hz_to_mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    mels = torch.linspace(
        hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2, dtype=torch.float64
    )
    edges = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    width = edges[1:] - edges[:-1]
    rel = edges[None, :] - freqs[:, None]
    rising = -rel[:, :-2] / width[:-1]
    falling = rel[:, 2:] / width[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMel(nn.Module):
    """Waveform ``[B, T]`` → normalised log-mel ``[B, n_mels, frames]`` (Hamming, centred)."""

    def __init__(self, cfg: FrontendConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hamming_window(cfg.win_length), persistent=False)
        fb = htk_mel_filterbank(cfg.n_fft // 2 + 1, cfg.n_mels, cfg.sample_rate)
        self.register_buffer("fb", fb, persistent=False)

    @property
    def min_samples(self) -> int:
        """Shortest input the reflect-padded STFT accepts."""
        return self.cfg.n_fft // 2 + 1

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        spec = (
            torch.stft(
                wav.float(),
                c.n_fft,
                c.hop_length,
                c.win_length,
                self.window,
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )
            .abs()
            .pow(2)
        )
        x = torch.matmul(spec.transpose(1, 2), self.fb).transpose(1, 2) + 1e-6
        if c.log_input:
            x = x.log()
        return F.instance_norm(x)


class ResNetSE34L(nn.Module):
    """Waveform ``[B, T]`` at 16 kHz → speaker embedding ``[B, n_out]`` (not normalised)."""

    strides = (1, (2, 2), (2, 2), 1)

    def __init__(self, cfg: ResNetSEConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ResNetSEConfig()
        self.cfg = cfg
        self.frontend = LogMel(cfg.frontend)
        ch = cfg.channels
        self.conv1 = nn.Conv2d(1, ch[0], 7, stride=(2, 1), padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(ch[0])
        c_in = ch[0]
        for i, (n, c, s) in enumerate(zip(cfg.layers, ch, self.strides, strict=False), start=1):
            blocks = [
                SEBasicBlock(c_in if b == 0 else c, c, s if b == 0 else 1, c // cfg.se_reduction)
                for b in range(n)
            ]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            c_in = c
        self.sap_linear = nn.Linear(ch[-1], ch[-1])
        self.attention = nn.Parameter(torch.empty(ch[-1], 1))
        nn.init.xavier_normal_(self.attention)
        self.fc = nn.Linear(ch[-1] * (2 if cfg.encoder_type == "ASP" else 1), cfg.n_out)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.frontend(wav).unsqueeze(1)  # [B, 1, mels, frames]
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.mean(dim=2).transpose(1, 2)  # [B, frames', C]
        asp = self.cfg.encoder_type == "ASP"
        return self.fc(attentive_statistics(x, self.sap_linear, self.attention, with_std=asp))


class SegmentAggregator(nn.Module):
    """Attention over segment embeddings ``[B, S, D]`` → ``[B, D]``.

    A bidirectional GRU reads the (normalised) segment sequence and scores each segment; the
    output is the score-weighted sum of the segment embeddings, so a single segment comes back
    unchanged (the property Jung et al. 2020 ask for).
    """

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.gru = nn.GRU(dim, hidden, batch_first=True, bidirectional=True)
        self.score = nn.Linear(2 * hidden, 1)

    def forward(self, seg: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(F.normalize(seg, dim=-1))
        w = torch.softmax(self.score(h), dim=1)
        return (w * seg).sum(dim=1)


def segment_bounds(n_samples: int, seg: int, hop: int) -> np.ndarray:
    """``[S, 2]`` sample bounds of overlapping segments covering ``n_samples`` (one if short)."""
    if n_samples <= seg:
        return np.array([[0, n_samples]])
    starts = list(range(0, n_samples - seg + 1, hop))
    if starts[-1] + seg < n_samples:
        starts.append(n_samples - seg)
    return np.array([[s, s + seg] for s in starts])
