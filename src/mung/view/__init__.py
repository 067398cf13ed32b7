"""Results pages: a self-contained ``index.html`` beside the outputs (assets shipped in the
package, no network) to look at and listen to diarization and music-tagging results."""

from mung.view.diarization import write_diarization_page
from mung.view.music import write_music_page
from mung.view.serve import make_server

__all__ = ["make_server", "write_diarization_page", "write_music_page"]
