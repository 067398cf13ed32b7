"""Speaker diarization: ``diarize(audio, config) -> Diarization`` and its stages."""

from mung.diarization.pipeline import DiarizationConfig, Diarizer, diarize
from mung.diarization.rttm import Diarization, Turn, read_rttm, read_uem

__all__ = ["Diarization", "DiarizationConfig", "Diarizer", "Turn", "diarize", "read_rttm", "read_uem"]
