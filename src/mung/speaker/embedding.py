"""Whole-recording speaker embeddings: one unit-norm vector per waveform or audio file
(``mung speaker embed`` saves them as ``OUT/<uri>.npy`` with the batch runner).

A silent file is an error (its "embedding" would be a unit vector like any voice's, and two
silent files would match); broadband noise is embedded with a warning."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mung import audio
from mung.arrays import l2_normalize
from mung.batch import BatchItem, BatchReport, items_from_paths, run_batch, warn
from mung.outputs import write_with
from mung.speaker.encoders import SpeakerEncoder, load_encoder
from mung.speaker.utterance import SpeechDetector, UtteranceEmbedder

CHUNK_SECONDS = 30.0  # longer audio is embedded in chunks whose embeddings are averaged


def embed_wav(encoder: SpeakerEncoder, wav: np.ndarray, chunk_seconds: float = CHUNK_SECONDS) -> np.ndarray:
    """One unit-norm embedding for a whole waveform (long audio: mean of chunk embeddings)."""
    total = len(wav) / audio.SAMPLE_RATE
    starts = np.arange(0.0, total, chunk_seconds)
    spans = np.stack([starts, np.minimum(starts + chunk_seconds, total)], axis=1)
    if len(spans) > 1 and spans[-1, 1] - spans[-1, 0] < 1.0:  # fold a short tail into the last chunk
        spans = np.concatenate([spans[:-2], [[spans[-2, 0], total]]])
    return l2_normalize(encoder.embed_spans(wav, spans).mean(axis=0))


@dataclass
class EmbedTask:
    """Embed each item into ``out_dir/<uri>.npy`` (float32 ``[dim]``): the mean of partial windows
    over the speech ``speech`` finds."""

    out_dir: Path
    model: str = "default"
    segment_aggregation: bool = False
    device: str = "cpu"
    speech: SpeechDetector | None = None  # trims silence before the partial windows (picklable)
    name: str = "embed"

    def __post_init__(self) -> None:
        self._encoder: SpeakerEncoder | UtteranceEmbedder | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_encoder": None}  # workers load their own model

    def setup(self) -> None:
        if self._encoder is None:
            encoder = load_encoder(self.model, self.device, self.segment_aggregation)
            self._encoder = UtteranceEmbedder(encoder, self.speech)  # partial windows over the speech

    def outputs(self, item: BatchItem) -> list[Path]:
        return [Path(self.out_dir) / f"{item.uri}.npy"]

    def load(self, item: BatchItem) -> tuple[np.ndarray, str | None]:
        """Decode and check that the file carries a signal (thread-safe: runs ahead of the model)."""
        wav = audio.load(item.path)
        return wav, audio.check_signal(item.path, audio.power_mel(wav, audio.SAMPLE_RATE, 1024, 512, 128),
                                       "embed")

    def infer(self, item: BatchItem, loaded: tuple[np.ndarray, str | None]) -> tuple[np.ndarray, str | None]:
        assert self._encoder is not None, "setup() first"
        wav, note = loaded
        return embed_wav(self._encoder, wav).astype(np.float32), note

    def process(self, item: BatchItem) -> tuple[np.ndarray, str | None]:
        return self.infer(item, self.load(item))

    def write(self, item: BatchItem, result: tuple[np.ndarray, str | None]) -> None:
        vec, note = result
        if note:
            warn(note)
        write_with(self.outputs(item)[0], lambda p: np.save(p, vec, allow_pickle=False), force=True)


def embed_files(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    model: str = "default",
    segment_aggregation: bool = False,
    device: str = "cpu",
    force: bool = False,
    jobs: int = 1,
    progress: bool = True,
    engine: str = "local",
    address: str | None = None,
    speech: SpeechDetector | None = None,
) -> BatchReport:
    """Embed every audio file of ``inputs`` (files or folders) → ``out_dir/<uri>.npy`` with the
    batch runner (checks before work, bad files reported and skipped, re-runs resume)."""
    task = EmbedTask(Path(out_dir), model, segment_aggregation, device, speech=speech)
    return run_batch(task, items_from_paths(inputs), jobs=jobs, force=force, progress=progress,
                     engine=engine, address=address)
