"""The interface every speaker encoder offers to the pipeline and the evaluation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
from tqdm import tqdm

from mung.audio import SAMPLE_RATE


class SpeakerEncoder(Protocol):
    """Turns spans of a 16 kHz waveform into L2-normalised speaker embeddings."""

    name: str
    dim: int
    # the diarization settings that suit this encoder's embeddings, used where the user sets none:
    # the fraction of a recording's mean embedding removed before clustering, and the AHC
    # cosine-distance threshold
    center: float
    threshold: float
    # cosine distance between two clusters' mean embeddings under which the diarization warns
    # that they may be one voice split in two (0: never)
    similar_voices: float
    # ... and under which two clusters are merged, on wide-band speech only (0: never)
    merge_threshold: float
    # cosine scores needed to name a diarization cluster / a whole recording after an enrolled
    # speaker, calibrated for this encoder's voiceprints (benchmarks/naming.py, benchmarks/speaker.py)
    naming_threshold: float
    identify_threshold: float

    def embed_spans(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Embed ``spans`` (``[n, 2]`` start/end seconds into ``wav``) → ``[n, dim]``, unit norm."""
        ...


def embed_by_chunk(
    wav: np.ndarray, spans: np.ndarray, dim: int, hop: int, chunk_seconds: float,
    embed_segment: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Raw ``[n, dim]`` embeddings of ``spans``, one ``chunk_seconds`` block of audio at a time
    (spans grouped by the block their start falls in), so that the features of a long recording
    are never held whole (bounded memory). ``embed_segment(piece, spans_in_piece)`` gets each
    block cut from a sample on the ``hop`` grid, so its frames line up with a whole-file front end."""
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    out = np.zeros((len(spans), dim), np.float32)
    chunk = np.floor(spans[:, 0] / chunk_seconds).astype(int)
    chunks = np.unique(chunk)
    for c in tqdm(chunks, desc="embedding", unit="min", disable=len(chunks) < 10, leave=False):
        idx = np.flatnonzero(chunk == c)
        a = int(spans[idx, 0].min() * SAMPLE_RATE) // hop * hop
        b = int(np.ceil(spans[idx, 1].max() * SAMPLE_RATE))
        out[idx] = embed_segment(wav[a:b], spans[idx] - a / SAMPLE_RATE)
    return out
