"""``mung diarize`` as a batch task: OUT/<uri>.rttm (+ .json, .png) per recording."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from mung import outputs
from mung.batch import BatchItem, warn
from mung.diarization.pipeline import DiarizationConfig, Diarizer
from mung.diarization.plot import plot_timeline
from mung.diarization.rttm import Diarization


def summary(d: Diarization) -> str:
    """Who spoke when, as readable lines."""
    lines = [f"{d.uri}: {len(d.speakers)} speaker(s), {d.duration:.1f} s"]
    lines += [f"  {t.start:7.2f} – {t.end:7.2f}  {t.speaker}" for t in sorted(d.turns)]
    return "\n".join(lines)


@dataclass
class DiarizeTask:
    """Diarize each item; ``out_dir=None`` prints the RTTM to stdout instead of writing files."""

    config: DiarizationConfig
    out_dir: Path | None = None
    json: bool = False
    plot: bool = False
    print_summary: bool = False
    name: str = "diarize"

    def __post_init__(self) -> None:
        self._diarizer: Diarizer | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_diarizer": None}  # workers load their own model

    def setup(self) -> None:
        if self._diarizer is None:
            self._diarizer = Diarizer(self.config)

    def outputs(self, item: BatchItem) -> list[Path]:
        if self.out_dir is None:
            return []
        exts = [".rttm", *([".json"] if self.json else []), *([".png"] if self.plot else [])]
        return [self.out_dir / f"{item.uri}{e}" for e in exts]

    def process(self, item: BatchItem) -> Diarization:
        assert self._diarizer is not None, "setup() first"
        return self._diarizer(item.path, uri=item.uri)

    def write(self, item: BatchItem, d: Diarization) -> None:
        """Runs only for items the batch runner lets through, so existing outputs may be replaced."""
        if not d.turns:
            warn(f"{item.path}: no speech detected; the RTTM is empty")
        for note in d.notes:
            warn(note)
        if self.out_dir is None:
            sys.stdout.write(d.to_rttm())
        else:
            rttm, *rest = self.outputs(item)
            outputs.write_text(rttm, d.to_rttm(), force=True)
            for path in rest:
                if path.suffix == ".json":
                    outputs.write_json(path, d.to_json(), force=True)
                else:
                    plot_timeline(d, path, force=True)
        if self.print_summary:
            print(summary(d), file=sys.stderr if self.out_dir is None else sys.stdout)
