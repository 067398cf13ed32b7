"""Fixed-length windows over speech regions: the unit that gets one speaker embedding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mung.errors import MungError


@dataclass
class WindowConfig:
    """``window`` and ``shift`` in seconds (team: 1.0 / 0.5; organisers: 1.5 / 0.5). A region
    shorter than ``window`` gets one window of its own length."""

    window: float = 1.5
    shift: float = 0.75

    def validate(self) -> None:
        if self.window <= 0 or self.shift <= 0:
            raise MungError("windows.window and windows.shift must be positive")
        if self.shift > self.window:
            raise MungError(f"windows.shift ({self.shift}) must not exceed windows.window ({self.window})")


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
