"""Whole-recording speaker embeddings: one unit-norm vector per waveform or audio file
(``mung speaker embed`` saves them as ``<stem>.npy``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mung.arrays import l2_normalize
from mung.audio import SAMPLE_RATE, find_audio, load
from mung.errors import MungError
from mung.outputs import check_writable, write_with
from mung.speaker.encoders import SpeakerEncoder, load_encoder

CHUNK_SECONDS = 30.0  # longer audio is embedded in chunks whose embeddings are averaged


def embed_wav(encoder: SpeakerEncoder, wav: np.ndarray, chunk_seconds: float = CHUNK_SECONDS) -> np.ndarray:
    """One unit-norm embedding for a whole waveform (long audio: mean of chunk embeddings)."""
    total = len(wav) / SAMPLE_RATE
    starts = np.arange(0.0, total, chunk_seconds)
    spans = np.stack([starts, np.minimum(starts + chunk_seconds, total)], axis=1)
    if len(spans) > 1 and spans[-1, 1] - spans[-1, 0] < 1.0:  # fold a short tail into the last chunk
        spans = np.concatenate([spans[:-2], [[spans[-2, 0], total]]])
    return l2_normalize(encoder.embed_spans(wav, spans).mean(axis=0))


def embed_files(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    model: str = "default",
    segment_aggregation: bool = False,
    device: str = "cpu",
    force: bool = False,
) -> list[Path]:
    """Embed every audio file of ``inputs`` (files or folders) → ``out_dir/<stem>.npy``
    (float32 ``[dim]``). Checks all outputs before writing any."""
    files = find_audio(list(inputs))
    out_dir = Path(out_dir)
    outputs = [out_dir / f"{f.stem}.npy" for f in files]
    seen: dict[Path, Path] = {}
    for f, o in zip(files, outputs, strict=True):
        if o in seen:
            raise MungError(f"{f} and {seen[o]} would both be written to {o}; rename one")
        seen[o] = f
        check_writable(o, force)
        if not f.exists():
            raise MungError(f"{f}: file not found")
    encoder = load_encoder(model, device, segment_aggregation=segment_aggregation)
    for f, o in tqdm(list(zip(files, outputs, strict=True)), desc="embedding", unit="file"):
        vec = embed_wav(encoder, load(f)).astype(np.float32)
        write_with(o, lambda p, v=vec: np.save(p, v, allow_pickle=False), force)
    return outputs
