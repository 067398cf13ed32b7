"""Speaker diarization: ``diarize(audio, config) -> Diarization`` and its stages.

The pipeline names are imported on first use, so that importing a torch-free stage
(``mung.diarization.clustering``, ``rttm``, ``scoring`` …) does not load torch."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"DiarizationConfig": "pipeline", "Diarizer": "pipeline", "diarize": "pipeline",
         "Diarization": "rttm", "Turn": "rttm", "read_rttm": "rttm", "read_uem": "rttm"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'mung.diarization' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mung.diarization.{_LAZY[name]}"), name)
