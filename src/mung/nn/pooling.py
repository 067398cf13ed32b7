"""Self-attentive pooling over time (Zhu et al., Interspeech 2018; the SAP / ASP heads of
voxceleb_trainer): frame weights ``softmax(tanh(W x + b) · a)``, then the weighted mean (SAP) or
the weighted mean and standard deviation (ASP, Okabe et al. 2018)."""

from __future__ import annotations

import torch
from torch import nn


def attentive_statistics(x: torch.Tensor, linear: nn.Linear, attention: torch.Tensor,
                         with_std: bool = False) -> torch.Tensor:
    """``x [B, T, D]`` → ``[B, D]`` (or ``[B, 2D]`` with ``with_std``), weights from ``linear``
    and the attention vector ``attention [D, 1]``."""
    w = torch.softmax(torch.tanh(linear(x)) @ attention, dim=1)  # [B, T, 1]
    mu = (x * w).sum(dim=1)
    if not with_std:
        return mu
    sd = ((x**2 * w).sum(dim=1) - mu**2).clamp(min=1e-5).sqrt()
    return torch.cat([mu, sd], dim=1)


class SelfAttentivePooling(nn.Module):
    """SAP as a module: ``[B, T, D]`` → ``[B, D]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.attention = nn.Parameter(torch.empty(dim, 1))
        nn.init.xavier_normal_(self.attention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return attentive_statistics(x, self.linear, self.attention)
