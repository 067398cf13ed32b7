"""mung: offline audio toolkit — who spoke when, who is speaking, and what the music feels like."""

from mung.errors import MungError

__all__ = ["MungError", "__version__"]
__version__ = "0.1.0"
