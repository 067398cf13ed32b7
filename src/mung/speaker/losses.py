"""Speaker training losses on embeddings shaped ``[N speakers, M utterances, D]``.

Each returns ``(loss, accuracy)``; ``labels`` (``[N]`` speaker indices) are used by the
classification losses only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mung.registry import create, register


class AngularPrototypical(nn.Module):
    """Angular prototypical loss (Chung et al. 2020): utterance 0 of each speaker is the query,
    the mean of the others its prototype; logits ``w·cos + b`` with learned ``w > 0`` and ``b``;
    cross-entropy over the N speakers of the batch."""

    def __init__(self, init_w: float = 10.0, init_b: float = -5.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(init_w))
        self.b = nn.Parameter(torch.tensor(init_b))

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, float]:
        if x.dim() != 3 or x.shape[1] < 2:
            raise ValueError("angular prototypical loss needs [N, M>=2, D] embeddings")
        query = F.normalize(x[:, 0], dim=-1)
        proto = F.normalize(x[:, 1:].mean(dim=1), dim=-1)
        logits = (query @ proto.T) * self.w.clamp(min=1e-6) + self.b
        target = torch.arange(len(x), device=x.device)
        return F.cross_entropy(logits, target), _accuracy(logits, target)


class SpeakerSoftmax(nn.Module):
    """Softmax over the training speakers; with ``margin > 0`` the additive-margin variant
    (AM-softmax: cosine logits, ``scale·(cos − margin)`` for the true class)."""

    def __init__(self, dim: int, n_speakers: int, margin: float = 0.0, scale: float = 30.0) -> None:
        super().__init__()
        self.margin, self.scale = margin, scale
        self.weight = nn.Parameter(torch.empty(n_speakers, dim))
        nn.init.xavier_normal_(self.weight)
        self.bias = nn.Parameter(torch.zeros(n_speakers)) if margin == 0 else None

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, float]:
        if labels is None:
            raise ValueError("softmax losses need speaker labels")
        target = labels.repeat_interleave(x.shape[1])
        x = x.reshape(-1, x.shape[-1])
        if self.bias is not None:
            logits = F.linear(x, self.weight, self.bias)
        else:
            cos = F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).T
            margin = F.one_hot(target, cos.shape[1]) * self.margin
            logits = self.scale * (cos - margin)
        return F.cross_entropy(logits, target), _accuracy(logits, target)


def _accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == target).float().mean())


@register("speaker_loss", "angleproto")
def angleproto(dim: int, n_speakers: int, margin: float, scale: float) -> nn.Module:
    return AngularPrototypical()


@register("speaker_loss", "softmax")
def softmax(dim: int, n_speakers: int, margin: float, scale: float) -> nn.Module:
    return SpeakerSoftmax(dim, n_speakers)


@register("speaker_loss", "amsoftmax")
def amsoftmax(dim: int, n_speakers: int, margin: float, scale: float) -> nn.Module:
    return SpeakerSoftmax(dim, n_speakers, margin=margin, scale=scale)


def make_loss(
    name: str, dim: int, n_speakers: int, margin: float = 0.2, scale: float = 30.0
) -> nn.Module:
    """Build a registered ``speaker_loss``; every entry is ``fn(dim, n_speakers, margin, scale)``."""
    return create("speaker_loss", name, dim, n_speakers, margin, scale)
