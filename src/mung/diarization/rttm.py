"""RTTM / UEM reading and writing, and the :class:`Diarization` result type.

Both formats are whitespace-separated, so a field can hold no whitespace: writers refuse a uri
or speaker label that contains any (the batch runner names recordings with
:func:`mung.batch.safe_uri`: ``my talk.wav`` → uri ``my_talk``), and readers refuse a line
with more fields than the format has (the usual sign of a name with spaces). Times must be
finite and non-negative, so everything written reads back the same (to the millisecond)."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mung.errors import MungError


@dataclass(frozen=True, order=True)
class Turn:
    """One speaker turn, in seconds from the start of the recording."""

    start: float
    end: float
    speaker: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Diarization:
    """Who spoke when in one recording (``uri`` = file stem, as RTTM expects)."""

    uri: str
    turns: list[Turn] = field(default_factory=list)
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)  # warnings about this result (not in the RTTM)

    @property
    def speakers(self) -> list[str]:
        return sorted({t.speaker for t in self.turns})

    def to_rttm(self) -> str:
        """RTTM lines (``SPEAKER uri 1 onset duration <NA> <NA> speaker <NA> <NA>``)."""
        check_field(self.uri, "uri")
        for t in self.turns:
            check_field(t.speaker, f"{self.uri}: speaker label")
            check_span(t.start, t.end, f"{self.uri}: turn")
        return "".join(
            f"SPEAKER {self.uri} 1 {t.start:.3f} {t.duration:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
            for t in sorted(self.turns)
        )

    def to_json(self) -> dict:
        return {
            "uri": self.uri,
            "duration": round(self.duration, 3),
            "speakers": self.speakers,
            "turns": [asdict(t) for t in sorted(self.turns)],
            **({"notes": self.notes} if self.notes else {}),
        }

    def to_annotation(self):  # -> pyannote.core.Annotation
        from pyannote.core import Annotation, Segment

        ann = Annotation(uri=self.uri)
        for i, t in enumerate(self.turns):
            ann[Segment(t.start, t.end), i] = t.speaker
        return ann


def check_field(value: str, what: str) -> str:
    """``value`` if it can be one RTTM / UEM field (non-empty, no whitespace)."""
    if not value or any(c.isspace() for c in value):
        raise MungError(f"{what} {value!r} is empty or contains whitespace, which RTTM / UEM cannot hold "
                        "(use mung.batch.safe_uri: spaces become '_')")
    return value


def check_span(start: float, end: float, what: str) -> None:
    """Refuse a span RTTM / UEM cannot round-trip: non-finite, negative or reversed."""
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end):
        raise MungError(f"{what} {start}..{end} is not a finite, ordered time span")


def _fields(path: Path, lineno: int, line: str, n: int, what: str, most: int | None = None) -> list[str]:
    parts = line.split()
    if len(parts) < n:
        raise MungError(f"{path}:{lineno}: malformed {what} line (expected {n} fields): {line!r}")
    if most is not None and len(parts) > most:
        raise MungError(f"{path}:{lineno}: {what} line has {len(parts)} fields, at most {most} "
                        f"(a uri or name with spaces?): {line!r}")
    return parts


def _float(path: Path, lineno: int, value: str, name: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise MungError(f"{path}:{lineno}: {name} is not a number: {value!r}") from None
    if not (math.isfinite(x) and x >= 0):
        raise MungError(f"{path}:{lineno}: {name} must be a finite non-negative number, got {value}")
    return x


def _lines(path: str | os.PathLike) -> Iterable[tuple[int, str]]:
    path = Path(path)
    if not path.is_file():
        raise MungError(f"{path}: file not found")
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if line and not line.startswith((";", "#")):
            yield lineno, line


def read_rttm(path: str | os.PathLike) -> dict[str, Diarization]:
    """Parse an RTTM file into one :class:`Diarization` per uri (only ``SPEAKER`` lines)."""
    path = Path(path)
    out: dict[str, Diarization] = {}
    for lineno, line in _lines(path):
        f = _fields(path, lineno, line, 8, "RTTM")
        if f[0] != "SPEAKER":
            continue
        _fields(path, lineno, line, 8, "RTTM", most=10)
        start = _float(path, lineno, f[3], "onset")
        dur = _float(path, lineno, f[4], "duration")
        d = out.setdefault(f[1], Diarization(f[1]))
        d.turns.append(Turn(start, start + dur, f[7]))
        d.duration = max(d.duration, start + dur)
    return out


def read_uem(path: str | os.PathLike) -> dict[str, list[tuple[float, float]]]:
    """Parse a UEM file (``uri channel start end``) into scored regions per uri."""
    path = Path(path)
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for lineno, line in _lines(path):
        f = _fields(path, lineno, line, 4, "UEM", most=4)
        start, end = _float(path, lineno, f[2], "start"), _float(path, lineno, f[3], "end")
        if end < start:
            raise MungError(f"{path}:{lineno}: UEM end {end} is before start {start}")
        out[f[0]].append((start, end))
    return dict(out)


def write_uem(regions: dict[str, list[tuple[float, float]]]) -> str:
    """UEM text for ``regions``."""
    for u, spans in regions.items():
        check_field(u, "uri")
        for s, e in spans:
            check_span(s, e, f"{u}: UEM region")
    return "".join(f"{u} 1 {s:.3f} {e:.3f}\n" for u, spans in regions.items() for s, e in spans)


def read_rttms(path: str | os.PathLike) -> dict[str, Diarization]:
    """An RTTM file, or every ``*.rttm`` in a folder; a uri found in two files is an error."""
    path = Path(path)
    files = sorted(path.glob("*.rttm")) if path.is_dir() else [path]
    if not files:
        raise MungError(f"{path}: directory holds no .rttm files")
    out: dict[str, Diarization] = {}
    source: dict[str, Path] = {}
    for f in files:
        for uri, d in read_rttm(f).items():
            if uri in out:
                raise MungError(f"uri {uri} is in both {source[uri]} and {f}")
            out[uri], source[uri] = d, f
    return out
