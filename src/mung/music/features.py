"""Music front-end: 16 kHz mono → power mel (128 bins, n_fft 1024, hop 512 =
32 ms) stored raw in the competition layout ``[1, 128, T]``; the input normalisation
(``log10(1 + 10·mel)`` by default) is applied when a model reads the features, so offline
``.npy`` files and on-the-fly training use the same code."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from mung import audio
from mung.config import Config, Interval, Options, param
from mung.errors import MungError

NORMALISATIONS = ("log10", "log", "none")


@dataclass(frozen=True)
class MelConfig(Config):
    """Front-end settings; saved inside every checkpoint."""

    section: ClassVar[str] = "mel"

    sample_rate: int = param(16000, Interval(int, 1000, None))
    n_mels: int = param(128, Interval(int, 1, None))
    n_fft: int = param(1024, Interval(int, 16, None))
    hop_length: int = param(512, Interval(int, 1, None))
    # log10(1 + 10·mel) | log(mel + 1e-6) | none
    normalisation: str = param("log10", Options(NORMALISATIONS))

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate


def mel_from_wave(wav: np.ndarray, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """Raw power mel ``[1, n_mels, T]`` float32 of a mono waveform at ``cfg.sample_rate``."""
    return audio.power_mel(wav, cfg.sample_rate, cfg.n_fft, cfg.hop_length, cfg.n_mels)[None]


def mel_from_audio(path: str | os.PathLike, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """Decode ``path`` with :func:`mung.audio.load` and return its raw power mel ``[1, M, T]``."""
    wav = audio.load(path, sample_rate=cfg.sample_rate)
    if wav.size < cfg.n_fft // 2:
        raise MungError(f"{path}: audio too short for one mel frame ({wav.size} samples)")
    return mel_from_wave(wav, cfg)


def normalise(mel: np.ndarray, how: str = "log10") -> np.ndarray:
    """Input normalisation applied to raw power mel before a model sees it."""
    if how == "log10":
        return np.log10(1.0 + 10.0 * mel).astype(np.float32)
    if how == "log":
        return np.log(mel + 1e-6).astype(np.float32)
    if how == "none":
        return mel.astype(np.float32)
    raise MungError(f"unknown normalisation {how!r} (choose from {', '.join(NORMALISATIONS)})")


def check_mel(mel: np.ndarray, name: str, n_mels: int = 128) -> np.ndarray:
    """Validate a mel array (``[1, M, T]`` or ``[M, T]``) and return it as ``[1, M, T]`` float32."""
    if not isinstance(mel, np.ndarray) or mel.dtype.kind not in "fiu":
        raise MungError(f"{name}: expected a numeric mel array, got dtype {getattr(mel, 'dtype', '?')}")
    if mel.ndim == 2:
        mel = mel[None]
    if mel.ndim != 3 or mel.shape[0] != 1 or mel.shape[1] != n_mels:
        raise MungError(f"{name}: mel shape {tuple(mel.shape)}, expected [1, {n_mels}, T] or [{n_mels}, T]")
    if mel.shape[2] == 0:
        raise MungError(f"{name}: zero-length track (0 frames)")
    if not np.isfinite(mel).all():
        raise MungError(f"{name}: mel contains NaN or infinite values")
    if (mel < 0).any():
        raise MungError(f"{name}: mel has negative values; expected raw power mel")
    return mel.astype(np.float32, copy=False)


def load_npy(path: str | os.PathLike, n_mels: int = 128) -> np.ndarray:
    """Load and validate a competition-format ``.npy`` mel file."""
    path = Path(path)
    if not path.exists():
        raise MungError(f"{path}: file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise MungError(f"{path}: not a readable .npy array ({exc})") from None
    return check_mel(arr, str(path), n_mels)


def load_mel(path: str | os.PathLike, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """Raw power mel ``[1, M, T]`` of an audio file or a ``.npy`` mel file."""
    if str(path).lower().endswith(".npy"):
        return load_npy(path, cfg.n_mels)
    return check_mel(mel_from_audio(path, cfg), str(path), cfg.n_mels)
