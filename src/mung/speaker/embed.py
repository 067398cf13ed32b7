"""``mung speaker embed``: one unit-norm embedding per audio file, saved as ``<stem>.npy``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mung.audio import find_audio, load
from mung.errors import MungError
from mung.io import check_writable, write_with
from mung.speaker.encoder import load_encoder
from mung.speaker.evaluate import embed_wav
from mung.speaker.utterance import SpeechDetector, UtteranceEmbedder


def embed_files(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    model: str = "default",
    segment_aggregation: bool = False,
    device: str = "cpu",
    force: bool = False,
    speech: SpeechDetector | None = None,
) -> list[Path]:
    """Embed every audio file of ``inputs`` (files or folders) → ``out_dir/<stem>.npy``
    (float32 ``[dim]``): the mean of partial windows over its speech (``speech``: the detector
    that trims silence). Checks all outputs before writing any."""
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
    encoder = UtteranceEmbedder(load_encoder(model, device, segment_aggregation=segment_aggregation), speech)
    for f, o in tqdm(list(zip(files, outputs, strict=True)), desc="embedding", unit="file"):
        vec = embed_wav(encoder, load(f)).astype(np.float32)
        write_with(o, lambda p, v=vec: np.save(p, v, allow_pickle=False), force)
    return outputs
