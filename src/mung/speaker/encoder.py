"""Speaker encoders behind one small interface, and ``load_encoder(spec)`` to pick one by name.

Specs: ``default`` / ``resemblyzer`` (the GE2E encoder whose weights ship in the ``resemblyzer``
PyPI package) or ``resnetse34l:PATH`` (a checkpoint trained with ``mung speaker train`` or a
published voxceleb_trainer checkpoint).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from mung.audio import SAMPLE_RATE, power_mel
from mung.errors import MungError


class SpeakerEncoder(Protocol):
    """Turns spans of a 16 kHz waveform into L2-normalised speaker embeddings."""

    name: str
    dim: int

    def embed_spans(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Embed ``spans`` (``[n, 2]`` start/end seconds into ``wav``) → ``[n, dim]``, unit norm."""
        ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def group_by_length(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of equal ``lengths`` (so windows stack without padding)."""
    batches: list[np.ndarray] = []
    for n in np.unique(lengths):
        idx = np.flatnonzero(lengths == n)
        batches.extend(idx[i : i + batch_size] for i in range(0, len(idx), batch_size))
    return batches


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch on ``n`` CPU threads inside the block. The LSTM's small per-step products gain
    little from a second thread and slow down 5-20x when the cores are busy (measured), so
    the encoders default to one thread; parallelism comes from ``--jobs``."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ResemblyzerEncoder:
    """GE2E (3-layer LSTM, 40 mel, 256-d) from the ``resemblyzer`` package, batched.

    The mel spectrogram is computed once per minute of input and sliced per span; with
    ``span_loudness`` each span is loudness-normalised to -30 dBFS (resemblyzer's target level,
    which its preprocessing applies per utterance). Utterance embedding turns it off and
    normalises whole utterances instead, which keeps the level differences between windows.
    """

    name = "resemblyzer"
    dim = 256
    hop = 160
    target_dbfs = -30.0
    chunk_seconds = 60.0
    span_loudness = True

    def __init__(self, device: str = "cpu", batch_size: int = 256, threads: int = 1) -> None:
        with warnings.catch_warnings():  # resemblyzer imports webrtcvad, which imports pkg_resources
            warnings.simplefilter("ignore")
            from resemblyzer import VoiceEncoder

        self.model = VoiceEncoder(device=device, verbose=False).eval()
        self.device = device
        self.batch_size = batch_size
        self.threads = threads

    def _mel(self, wav: np.ndarray) -> np.ndarray:
        return power_mel(wav, SAMPLE_RATE, 400, self.hop, 40).T  # [frames, 40], as resemblyzer

    def embed_spans(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Spans are processed in time chunks of ``chunk_seconds`` so that the spectrogram of
        a long recording is never held whole (bounded memory)."""
        spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
        out = np.zeros((len(spans), self.dim), np.float32)
        chunk = np.floor(spans[:, 0] / self.chunk_seconds).astype(int)
        chunks = np.unique(chunk)
        for c in tqdm(chunks, desc="embedding", unit="min", disable=len(chunks) < 10, leave=False):
            idx = np.flatnonzero(chunk == c)
            # first sample on the hop grid, so frames line up with a whole-file spectrogram
            a = int(spans[idx, 0].min() * SAMPLE_RATE) // self.hop * self.hop
            b = int(np.ceil(spans[idx, 1].max() * SAMPLE_RATE))
            out[idx] = self._embed_segment(wav[a:b], spans[idx] - a / SAMPLE_RATE)
        return l2_normalize(out)

    def _embed_segment(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        mel = self._mel(wav)
        first = np.clip((spans[:, 0] * SAMPLE_RATE / self.hop).round().astype(int), 0, len(mel) - 1)
        last = (spans[:, 1] * SAMPLE_RATE / self.hop).round().astype(int)
        last = np.clip(last, first + 1, len(mel))
        out = np.zeros((len(spans), self.dim), np.float32)
        target_power = 10 ** (self.target_dbfs / 10)
        with torch.inference_mode(), torch_threads(self.threads):
            for idx in group_by_length(last - first, self.batch_size):
                batch = np.stack([mel[a:b] for a, b in zip(first[idx], last[idx], strict=True)])
                # mel power is proportional to signal power: scale each window to -30 dBFS.
                s0 = (spans[idx, 0] * SAMPLE_RATE).astype(int)
                s1 = np.maximum((spans[idx, 1] * SAMPLE_RATE).astype(int), s0 + 1)
                power = np.array([np.mean(wav[a:b] ** 2) + 1e-10 for a, b in zip(s0, s1, strict=True)])
                if self.span_loudness:
                    batch *= (target_power / power)[:, None, None].astype(np.float32)
                out[idx] = self.model(torch.from_numpy(batch).to(self.device)).cpu().numpy()
        return out


_FACTORIES: dict[str, Callable[..., SpeakerEncoder]] = {
    "resemblyzer": lambda arg, device: ResemblyzerEncoder(device=device),
}
_AGGREGATING: set[str] = set()  # kinds whose factory takes ``segment_aggregation=True``


def register_encoder(
    kind: str, factory: Callable[..., SpeakerEncoder], segment_aggregation: bool = False
) -> None:
    """Add an encoder kind: ``factory(argument_after_colon_or_None, device)``; with
    ``segment_aggregation`` the factory also accepts ``segment_aggregation=True``."""
    _FACTORIES[kind] = factory
    if segment_aggregation:
        _AGGREGATING.add(kind)


def encoder_kinds() -> list[str]:
    return sorted(_FACTORIES)


def _resnetse34l(arg: str | None, device: str, segment_aggregation: bool = False) -> SpeakerEncoder:
    from mung.speaker.embedder import ResNetSE34LEncoder

    if not arg:
        raise MungError("resnetse34l needs a checkpoint: --embedding resnetse34l:PATH")
    return ResNetSE34LEncoder.from_checkpoint(arg, device, segment_aggregation=segment_aggregation)


register_encoder("resnetse34l", _resnetse34l, segment_aggregation=True)


def load_encoder(
    spec: str = "default", device: str = "cpu", segment_aggregation: bool = False
) -> SpeakerEncoder:
    """Build an encoder from ``kind[:argument]`` (``default`` = ``resemblyzer``); with
    ``segment_aggregation`` short spans are embedded by segment aggregation (§3)."""
    kind, _, arg = spec.partition(":")
    kind = "resemblyzer" if kind in ("", "default") else kind.lower()
    if kind not in _FACTORIES:
        kinds = ", ".join(encoder_kinds())
        raise MungError(f"unknown embedding '{spec}'; choose one of: default, {kinds}")
    if segment_aggregation:
        if kind not in _AGGREGATING:
            raise MungError(f"segment aggregation needs a resnetse34l:CKPT embedding, not '{spec}'")
        return _FACTORIES[kind](arg or None, device, segment_aggregation=True)
    return _FACTORIES[kind](arg or None, device)
