"""Timeline picture of a diarization (and optionally its reference)."""

from __future__ import annotations

import os

from mung.diarization.rttm import Diarization
from mung.plots import colours, figure


def plot_timeline(
    hyp: Diarization, path: str | os.PathLike, ref: Diarization | None = None, force: bool = False
) -> None:
    """Save a PNG: one row per speaker, coloured bars for their turns (reference rows above)."""
    rows = [("hyp", s, [t for t in hyp.turns if t.speaker == s]) for s in hyp.speakers]
    if ref is not None:
        rows = [("ref", s, [t for t in ref.turns if t.speaker == s]) for s in ref.speakers] + rows
    cmap = colours("tab10")
    with figure(path, (12, 0.5 * max(len(rows), 1) + 1.2), force=force) as (_, ax):
        for i, (kind, spk, turns) in enumerate(rows):
            colour = "0.5" if kind == "ref" else cmap(hyp.speakers.index(spk) % 10)
            ax.broken_barh([(t.start, t.duration) for t in turns], (i - 0.4, 0.8), color=colour)
        ax.set_yticks(range(len(rows)), [f"{k}: {s}" for k, s, _ in rows])
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.invert_yaxis()
        ax.set_xlim(0, max(hyp.duration, ref.duration if ref else 0, 1e-3))
        ax.set_xlabel("time (s)")
        ax.set_title(f"{hyp.uri}: {len(hyp.speakers)} speaker(s)")
        ax.grid(axis="x", alpha=0.3)
