"""ResNetSE34L speaker encoder (Chung et al., "In defence of metric learning", Interspeech 2020) for
a checkpoint of ``mung speaker train`` or a published voxceleb_trainer one, with optional segment
aggregation of short spans (Jung et al., Interspeech 2020)."""

from __future__ import annotations

import os

import numpy as np
import torch

from mung.arrays import fit_length, group_by_length, l2_normalize
from mung.audio import SAMPLE_RATE
from mung.errors import MungError
from mung.registry import register
from mung.speaker.model_io import SpeakerModel, load_speaker_model
from mung.speaker.models import segment_bounds

MIN_SECONDS = 0.2  # shorter spans are tiled up to this length


class ResNetSE34LEncoder:
    """Batched span embedding with a ResNetSE34L.

    With ``segment_aggregation`` each span is cut into overlapping segments
    (``aggregation.segment_seconds`` / ``segment_hop`` of the checkpoint); their embeddings are
    combined by the checkpoint's trained aggregator, or averaged (after L2 normalisation) when
    it has none. A span no longer than one segment gives exactly the plain embedding.
    """

    name = "resnetse34l"
    center = 0.5  # GE2E's settings; not tuned for a checkpoint of one's own
    threshold = 0.7
    similar_voices = 0.0
    merge_threshold = 0.0
    naming_threshold = 0.79
    identify_threshold = 0.73

    def __init__(
        self,
        sm: SpeakerModel,
        device: str = "cpu",
        batch_size: int = 64,
        segment_aggregation: bool = False,
    ) -> None:
        self.sm = sm
        self.device = device
        self.batch_size = batch_size
        self.segment_aggregation = segment_aggregation
        self.dim = sm.model.cfg.n_out
        self.min_samples = max(int(MIN_SECONDS * SAMPLE_RATE), sm.model.frontend.min_samples)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str = "cpu", segment_aggregation: bool = False
    ) -> ResNetSE34LEncoder:
        return cls(load_speaker_model(path, device), device, segment_aggregation=segment_aggregation)

    @torch.inference_mode()
    def _embed_pieces(self, pieces: list[np.ndarray]) -> np.ndarray:
        """Raw (unnormalised) embeddings of waveform pieces, batched by equal length."""
        pieces = [fit_length(p, self.min_samples) for p in pieces]
        out = np.zeros((len(pieces), self.dim), np.float32)
        for idx in group_by_length(np.array([len(p) for p in pieces]), self.batch_size):
            x = torch.from_numpy(np.stack([pieces[i] for i in idx])).to(self.device)
            out[idx] = self.sm.model(x).float().cpu().numpy()
        return out

    @torch.inference_mode()
    def _aggregate(self, seg: np.ndarray) -> np.ndarray:
        """``[B, S, D]`` raw segment embeddings → ``[B, D]`` (learned aggregator or mean)."""
        if seg.shape[1] == 1:
            return seg[:, 0]
        if self.sm.aggregator is None:
            return l2_normalize(seg).mean(axis=1)
        x = torch.from_numpy(seg).to(self.device)
        return self.sm.aggregator(x).float().cpu().numpy()

    def embed_spans(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Embed ``spans`` (``[n, 2]`` seconds into ``wav``) → ``[n, dim]`` unit-norm rows."""
        wav = np.asarray(wav, dtype=np.float32)
        spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
        if len(spans) == 0:
            return np.zeros((0, self.dim), np.float32)
        if len(wav) == 0:
            raise MungError("cannot embed spans of an empty waveform")
        bounds = (spans * SAMPLE_RATE).round().astype(int).clip(0, len(wav))
        bounds[:, 0] = np.minimum(bounds[:, 0], len(wav) - 1)
        bounds[:, 1] = np.maximum(bounds[:, 1], bounds[:, 0] + 1)
        pieces = [wav[a:b] for a, b in bounds]
        if not self.segment_aggregation:
            return l2_normalize(self._embed_pieces(pieces))
        agg = self.sm.aggregation
        seg_n, hop_n = int(agg.segment_seconds * SAMPLE_RATE), int(agg.segment_hop * SAMPLE_RATE)
        bounds_per_span = [segment_bounds(len(p), seg_n, hop_n) for p in pieces]
        segments = [p[a:b] for p, bs in zip(pieces, bounds_per_span, strict=True) for a, b in bs]
        emb = self._embed_pieces(segments)
        counts = np.array([len(bs) for bs in bounds_per_span])
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        out = np.zeros((len(pieces), self.dim), np.float32)
        for idx in group_by_length(counts, self.batch_size):  # equal segment counts stack
            out[idx] = self._aggregate(emb[first[idx, None] + np.arange(counts[idx[0]])])
        return l2_normalize(out)


@register("encoder", "resnetse34l")
def resnetse34l(arg: str | None, device: str, segment_aggregation: bool) -> ResNetSE34LEncoder:
    """``resnetse34l:PATH``: the checkpoint at PATH."""
    if not arg:
        raise MungError("resnetse34l needs a checkpoint: --embedding resnetse34l:PATH")
    return ResNetSE34LEncoder.from_checkpoint(arg, device, segment_aggregation=segment_aggregation)
