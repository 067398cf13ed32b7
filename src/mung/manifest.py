"""Inputs at catalogue scale: audio files, folders, globs and manifests, turned into
:class:`~mung.batch.BatchItem` s with unique uris.

A manifest is a text file with one path per line (``#`` comments and blank lines ignored), a CSV
file or a Parquet file with a ``path`` column; relative paths are relative to the manifest's
folder. Missing files are not an error here: they are returned apart, so that a job over millions
of files records them in its failures table instead of refusing to start."""

from __future__ import annotations

import csv
import glob
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from mung.audio import find_audio
from mung.batch import BatchItem, safe_uri, unique_files
from mung.errors import MungError

MANIFEST_SUFFIXES = (".txt", ".lst", ".csv", ".parquet")
GLOB_CHARS = set("*?[")


@dataclass
class Inputs:
    items: list[BatchItem]  # existing files, unique uris
    missing: list[Path]  # named (in a manifest or on the command line) but not there


def read_manifest(path: Path) -> list[Path]:
    """The paths a manifest names, resolved against the manifest's folder."""
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            if "path" not in table.column_names:
                cols = ", ".join(table.column_names)
                raise MungError(f"{path}: manifest has no 'path' column (columns: {cols})")
            names = [str(v) for v in table.column("path").to_pylist() if v]
        elif path.suffix == ".csv":
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                if "path" not in (reader.fieldnames or []):
                    raise MungError(f"{path}: manifest has no 'path' column (header: {reader.fieldnames})")
                names = [row["path"].strip() for row in reader if (row["path"] or "").strip()]
        else:
            lines = path.read_text().splitlines()
            names = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MungError(f"{path}: cannot read manifest ({exc})") from None
    except Exception as exc:  # pyarrow raises its own exception types for a corrupt file
        if isinstance(exc, MungError):
            raise
        raise MungError(f"{path}: cannot read Parquet manifest ({type(exc).__name__}: {exc})") from None
    return [p if p.is_absolute() else path.parent / p for p in map(Path, names)]


def expand(specs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[Path]]:
    """(files, missing) for files, folders (audio files below them), globs and manifests."""
    files: list[Path] = []
    missing: list[Path] = []
    for spec in map(str, specs):
        p = Path(spec)
        if p.is_dir():
            files += find_audio([p])
        elif GLOB_CHARS & set(spec) and not p.exists():
            found = sorted(Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file())
            if not found:
                raise MungError(f"{spec}: no file matches this pattern")
            files += found
        elif p.suffix.lower() in MANIFEST_SUFFIXES:
            if not p.is_file():
                raise MungError(f"{p}: manifest not found")
            for q in read_manifest(p):
                (files if q.is_file() else missing).append(q)
        else:
            (files if p.is_file() else missing).append(p)
    return files, missing


def unique_uris(files: Sequence[Path]) -> list[str]:
    """The file stem where it is unique; otherwise the path below the files' common folder with
    ``/`` as ``__`` (``a/x.mp3``, ``b/x.mp3`` → ``a__x``, ``b__x``), whitespace as ``_``."""
    stems = Counter(safe_uri(f.stem) for f in files)
    root = Path(os.path.commonpath([str(f.resolve().parent) for f in files])) if files else Path()
    uris = []
    for f in files:
        uri = safe_uri(f.stem)
        if stems[uri] > 1:
            rel = f.resolve().relative_to(root)
            uri = safe_uri(str(rel.with_suffix("")).replace(os.sep, "__"))
        uris.append(uri)
    clashes = [u for u, n in Counter(uris).items() if n > 1]
    if clashes:
        first = [str(f) for f, u in zip(files, uris, strict=True) if u == clashes[0]]
        raise MungError(f"{' and '.join(first)} would get the same uri {clashes[0]!r}; rename one")
    return uris


def read_inputs(specs: Sequence[str | os.PathLike]) -> Inputs:
    """Batch items for every existing file ``specs`` name (each file once), and the missing ones."""
    if not specs:
        raise MungError("no input given (files, folders, globs or a manifest .txt/.csv/.parquet)")
    files, missing = expand(specs)
    unique = unique_files(files)
    if not unique and not missing:
        raise MungError("no input files")
    return Inputs([BatchItem(f, u) for f, u in zip(unique, unique_uris(unique), strict=True)], missing)
