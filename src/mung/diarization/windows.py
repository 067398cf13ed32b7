"""Fixed-length windows over speech regions: the unit that gets one speaker embedding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mung.config import Config, Interval, at_least, param


@dataclass
class WindowConfig(Config):
    """``window`` and ``shift`` in seconds (team: 1.0 / 0.5; organisers: 1.5 / 0.5). A region
    shorter than ``window`` gets one window of its own length."""

    section: ClassVar[str] = "windows"

    window: float = param(1.5, Interval(float, 0, None, "neither"))
    shift: float = param(0.75, Interval(float, 0, None, "neither"))

    def check(self, where: str) -> None:
        at_least(self, where, "window", "shift")


def sliding_windows(regions: np.ndarray, config: WindowConfig | None = None) -> np.ndarray:
    """Windows ``[n, 2]`` (seconds) tiling each region; the last one is aligned to the region end."""
    config = config or WindowConfig()
    config.validate()
    out: list[np.ndarray] = []
    for start, end in np.asarray(regions, np.float64).reshape(-1, 2):
        length = end - start
        if length <= config.window:
            out.append(np.array([[start, end]]))
            continue
        n = int(np.ceil((length - config.window) / config.shift)) + 1
        starts = np.minimum(start + np.arange(n) * config.shift, end - config.window)
        out.append(np.stack([starts, starts + config.window], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2))
