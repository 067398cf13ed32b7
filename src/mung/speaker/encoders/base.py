"""The interface every speaker encoder offers to the pipeline and the evaluation."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class SpeakerEncoder(Protocol):
    """Turns spans of a 16 kHz waveform into L2-normalised speaker embeddings."""

    name: str
    dim: int

    def embed_spans(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Embed ``spans`` (``[n, 2]`` start/end seconds into ``wav``) → ``[n, dim]``, unit norm."""
        ...
