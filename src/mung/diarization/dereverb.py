"""Single-channel multi-frame WPE dereverberation (``nara_wpe``) before speech detection.

Long recordings are processed in blocks of ``block_seconds`` with ``context_seconds`` of audio on
each side (discarded after filtering), so memory grows with the block, not with the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mung.audio import SAMPLE_RATE
from mung.config import Config, Interval, Options, at_least, param
from mung.errors import MungError


@dataclass
class DereverbConfig(Config):
    """``method``: ``none`` or ``wpe``. WPE: ``taps`` prediction-filter length and ``delay`` (STFT
    frames), ``iterations`` of the variance/filter re-estimation, ``fft_size``/``shift`` in samples."""

    section: ClassVar[str] = "dereverb"

    method: str = param("none", Options(("none", "wpe")))
    taps: int = param(10, Interval(int, 1, None))
    delay: int = param(3, Interval(int, 1, None))
    iterations: int = param(3, Interval(int, 1, None))
    fft_size: int = param(512, Interval(int, 2, None))
    shift: int = param(128, Interval(int, 1, None))
    block_seconds: float = param(30.0, Interval(float, 0, None, "neither"))
    context_seconds: float = param(2.0, Interval(float, 0, None))

    def check(self, where: str) -> None:
        at_least(self, where, "fft_size", "shift")


def wpe_block(wav: np.ndarray, config: DereverbConfig) -> np.ndarray:
    """WPE on one block; the output has the input's length."""
    from nara_wpe.utils import istft, stft
    from nara_wpe.wpe import wpe_v8 as wpe
    from threadpoolctl import threadpool_limits

    spec = stft(wav.astype(np.float64), size=config.fft_size, shift=config.shift)  # [T, F]
    with threadpool_limits(1):  # many tiny per-frequency solves: BLAS threads cost ~9x the time
        out = wpe(spec.T[:, None, :], taps=config.taps, delay=config.delay, iterations=config.iterations)
    y = istft(out[:, 0, :].T, size=config.fft_size, shift=config.shift)
    return y[: len(wav)].astype(np.float32)


def dereverberate(wav: np.ndarray, config: DereverbConfig | None = None) -> np.ndarray:
    """``wav`` (16 kHz mono) after dereverberation; ``method='none'`` returns it unchanged."""
    config = config or DereverbConfig()
    config.validate()
    if config.method == "none" or len(wav) == 0:
        return wav
    if len(wav) < config.fft_size:
        raise MungError(f"dereverb: audio too short for WPE ({len(wav)} samples < {config.fft_size})")
    block, ctx = int(config.block_seconds * SAMPLE_RATE), int(config.context_seconds * SAMPLE_RATE)
    out = np.empty(len(wav), np.float32)
    for start in range(0, len(wav), block):
        a, b = max(0, start - ctx), min(len(wav), start + block + ctx)
        if b - a < config.fft_size:  # a tiny tail: filter it with more left context
            a = max(0, b - config.fft_size)
        y = wpe_block(wav[a:b], config)
        end = min(len(wav), start + block)
        out[start:end] = y[start - a : end - a]
    return out
