"""Shared parts of the music networks: a backbone made of a stem and conv stages, time
aggregation (avgpool / SAP / GRU) and task heads. Every network maps ``[B, 1, 128, T]`` to
``{task: logits [B, n_labels]}``."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mung.errors import MungError
from mung.nn import SEBasicBlock, SelfAttentivePooling
from mung.registry import create, names

StageHook = Callable[[int, torch.Tensor], torch.Tensor]


def se_stages(cin: int, channels: tuple[int, ...], blocks: tuple[int, ...], strides: tuple[int, ...],
              dim: int = 2) -> nn.ModuleList:
    """Stages of :class:`SEBasicBlock`; the first block of each stage carries the stride."""
    stages = []
    for c, n, s in zip(channels, blocks, strides, strict=True):
        stages.append(nn.Sequential(*[SEBasicBlock(cin if i == 0 else c, c, s if i == 0 else 1, dim=dim,
                                                   relu_first=False)
                                      for i in range(n)]))
        cin = c
    return nn.ModuleList(stages)


class Aggregator(nn.Module):
    """Sequence ``[B, T, D]`` → vector: ``avgpool`` (mean), ``sap`` (self-attentive pooling) or
    ``gru`` (2-layer GRU, last state — the CRNN idea)."""

    def __init__(self, kind: str, dim: int, hidden: int = 128):
        super().__init__()
        self.kind = kind
        if kind == "avgpool":
            self.out_dim = dim
        elif kind == "sap":
            self.sap = SelfAttentivePooling(dim)
            self.out_dim = dim
        elif kind == "gru":
            self.gru = nn.GRU(dim, hidden, num_layers=2, batch_first=True)
            self.out_dim = hidden
        else:
            raise ValueError(f"unknown aggregation {kind!r} (avgpool, sap, gru)")

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        if self.kind == "avgpool":
            return seq.mean(1)
        if self.kind == "sap":
            return self.sap(seq)
        out, _ = self.gru(seq)
        return out[:, -1]


class Backbone(nn.Module):
    """``stem`` → ``stages`` (each may be re-scaled by a hook: the attention model) → sequence
    ``[B, T', D]`` → :class:`Aggregator`. Subclasses set ``stem``, ``stages``,
    ``stage_channels``, ``agg`` and may override :meth:`to_sequence`."""

    stem: nn.Module
    stages: nn.ModuleList
    stage_channels: list[int]
    agg: Aggregator

    def set_stages(self, stages: list[nn.Module], channels: list[int], aggregation: str, **agg: int) -> None:
        """Install the conv ``stages`` (output ``channels`` each) and the aggregator over the last."""
        self.stages = nn.ModuleList(stages)
        self.stage_channels = list(channels)
        self.agg = Aggregator(aggregation, channels[-1], **agg)

    @property
    def out_dim(self) -> int:
        return self.agg.out_dim

    def to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """2-D map ``[B, C, F, T]`` → ``[B, T, C]`` (mean over frequency)."""
        return x.mean(2).transpose(1, 2)

    def forward(self, x: torch.Tensor, hook: StageHook | None = None, cache: dict | None = None
                ) -> torch.Tensor:
        """``cache``: features shared by the members of an ensemble on one batch (only the
        statistics backbones use it)."""
        x = self.stem(x)
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if hook is not None:
                x = hook(i, x)
        return self.agg(self.to_sequence(x))


class MusicNet(nn.Module):
    """A backbone with one linear head per task (``station`` and/or ``mood``: multi-task when
    both). Input ``[B, 1, M, T]``; output ``{task: logits [B, n_task]}``."""

    def __init__(self, backbone: Backbone, heads: dict[str, int], dropout: float = 0.3):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(backbone.out_dim, n) for t, n in heads.items()})

    def forward(self, x: torch.Tensor, hook: StageHook | None = None, cache: dict | None = None
                ) -> dict[str, torch.Tensor]:
        z = self.dropout(self.backbone(x, hook, cache))
        return {t: head(z) for t, head in self.heads.items()}


def backbone_model(backbone: Callable[..., Backbone], kwargs: dict, heads: dict[str, int]) -> MusicNet:
    """``backbone(**kwargs)`` with task heads (``kwargs["dropout"]`` before them, default 0.3);
    bad settings are a user error."""
    kwargs = dict(kwargs)
    dropout = kwargs.pop("dropout", 0.3)
    try:
        net = backbone(**kwargs)
    except (TypeError, ValueError) as exc:
        raise MungError(f"model {backbone.__name__}: bad settings {kwargs} ({exc})") from None
    return MusicNet(net, heads, dropout)


def build(spec: dict) -> nn.Module:
    """Build a network from its JSON-able spec ``{"name", "kwargs", "heads": {task: n_labels},
    "aux": spec + {"task"}}`` (stored in every checkpoint, so no code is unpickled). Every
    registered ``music_model`` entry is ``fn(kwargs, heads, aux) -> nn.Module``."""
    name = spec["name"]
    if name not in names("music_model"):
        raise MungError(f"unknown model {name!r} (choose from {', '.join(names('music_model'))})")
    return create("music_model", name, dict(spec.get("kwargs", {})), spec["heads"], spec.get("aux"))
