"""Grid search of the diarization settings on a dev set (audio + RTTM + UEM).

The expensive stages (speech detection, windows, embeddings) run once per front-end setting;
every clustering setting is then scored on the cached embeddings.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mung.config import merge
from mung.diarization.pipeline import DiarizationConfig, Diarizer, Embedded
from mung.diarization.rttm import Diarization
from mung.diarization.scoring import Score, score
from mung.errors import MungError


@dataclass
class TuneGrid:
    """Values tried for each setting (dotted config keys). ``front_end`` keys change what is
    embedded; ``back_end`` keys only change clustering / resegmentation."""

    front_end: dict[str, list] = field(
        default_factory=lambda: {
            "vad.method": ["silero", "webrtc"],
            "vad.pad": [0.0, 0.1],
            "windows.window": [1.0, 1.5],
        }
    )
    back_end: dict[str, list] = field(
        default_factory=lambda: {
            "embedding.center": [0.3, 0.5],
            "clustering.threshold": [0.6, 0.65, 0.7, 0.75, 0.8],
        }
    )


def _combinations(grid: dict[str, list]) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


@dataclass
class Trial:
    settings: dict
    total: Score
    files: list[Score]


def tune(
    audio_files: list[Path],
    refs: dict[str, Diarization],
    uem: dict[str, list[tuple[float, float]]] | None,
    base: DiarizationConfig,
    grid: TuneGrid,
    objective: str = "der",
    collar: float = 0.25,
    progress: Callable = lambda it, **kw: it,
) -> list[Trial]:
    """Every combination scored; trials sorted best first by ``objective`` (der | combined)."""
    if objective not in ("der", "combined"):
        raise MungError(f"objective must be 'der' or 'combined', got {objective!r}")
    missing = [p.stem for p in audio_files if p.stem not in refs]
    if missing:
        raise MungError(f"no reference turns for: {', '.join(missing[:5])}")
    sub_refs = {p.stem: refs[p.stem] for p in audio_files}
    if uem:
        missing = [u for u in sub_refs if u not in uem]
        if missing:
            raise MungError(f"no UEM regions for: {', '.join(missing[:5])}")
        uem = {u: uem[u] for u in sub_refs}
    trials: list[Trial] = []
    fronts = _combinations(grid.front_end)
    for front in progress(fronts, desc="front-end settings", unit="setting"):
        config = merge(base, front)
        diarizer = Diarizer(config)
        embedded: list[Embedded] = [diarizer.embed(p) for p in audio_files]
        for back in _combinations(grid.back_end):
            trial_config = merge(config, back)
            hyps = {e.uri: diarizer.assign(e, trial_config) for e in embedded}
            rows, total = score(sub_refs, hyps, uem, collar=collar)
            trials.append(Trial({**front, **back}, total, rows))
    key = (lambda t: t.total.der) if objective == "der" else (lambda t: t.total.combined)
    return sorted(trials, key=key)
