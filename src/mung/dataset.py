"""Outputs at catalogue scale: a Parquet dataset (a folder of part files) that a job streams its
rows into, and that a re-run resumes from.

Layout of ``OUT/`` (every file written atomically)::

    _mung.json            kind of table, model name and version (another model → refused)
    TABLE/part-*.parquet  the rows (tracks: one per track; turns: one per turn; embeddings)
    items/part-*.parquet  one row per finished input: path, uri, fingerprint, rows  (commit log)
    failures/part-*.parquet  path, uri, error — the inputs that failed in the latest run

A part of ``items`` is written after the ``TABLE`` part of the same name, so it is the commit:
rows whose items part is missing (the driver was killed between the two writes) are deleted
when the dataset is opened, and their inputs are done again. The driver holds at most
``part_items`` inputs' rows (or ``part_seconds`` of work) before writing a part, so memory stays
bounded however large the catalogue is. Failed inputs are tried again by the next run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mung.batch import BatchItem, BatchReport, run_batch, warn
from mung.errors import MungError
from mung.manifest import read_inputs
from mung.outputs import write_json, write_with

FORMAT_VERSION = 1
META = "_mung.json"
ITEMS = pa.schema([("path", pa.string()), ("uri", pa.string()), ("fingerprint", pa.string()),
                   ("rows", pa.int32())])
FAILURES = pa.schema([("path", pa.string()), ("uri", pa.string()), ("error", pa.string())])
EDGE_BYTES = 1 << 18


def fingerprint(path: os.PathLike) -> str:
    """Content fingerprint: BLAKE2b of the size, the first and the last 256 KiB. Two reads per
    file whatever its length (a 2-hour WAV is 230 MB), so a re-run can check millions of done
    inputs; it misses an edit inside a long file that keeps its size (re-run with --force)."""
    h = hashlib.blake2b(digest_size=16)
    size = os.path.getsize(path)
    h.update(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        h.update(f.read(EDGE_BYTES))
        if size > 2 * EDGE_BYTES:
            f.seek(size - EDGE_BYTES)
            h.update(f.read(EDGE_BYTES))
    return h.hexdigest()


def files_digest(paths: Sequence[os.PathLike], extra: str = "") -> str:
    """Short version string of model files (their bytes) and settings (``extra``)."""
    h = hashlib.blake2b(extra.encode(), digest_size=6)
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelId:
    name: str
    version: str


class TableTask:
    """Base of the tasks whose results are table rows: ``load`` (decode) then ``infer`` (model),
    so an engine can decode the next input while the model runs on this one. Subclasses set
    ``name``, ``table``, ``schema`` (their row fields) and implement the methods below; the
    state ``setup`` loads (``self.state``) never travels to workers."""

    name: str = "task"
    table: str = "rows"
    schema: pa.Schema = pa.schema([])
    state: Any = None

    def model_id(self) -> ModelId:
        raise NotImplementedError

    def setup(self) -> None:
        raise NotImplementedError

    def load(self, item: BatchItem) -> Any:
        raise NotImplementedError

    def infer(self, item: BatchItem, loaded: Any) -> Any:
        raise NotImplementedError

    def rows(self, item: BatchItem, result: Any) -> list[dict]:
        raise NotImplementedError

    def process(self, item: BatchItem) -> Any:
        return self.infer(item, self.load(item))

    def outputs(self, item: BatchItem) -> list[Path]:
        return []

    def write(self, item: BatchItem, result: Any) -> None:
        """Files besides the rows (RTTM); none by default."""

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "state"}


def _part_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except Exception as exc:  # pyarrow's own error types
        raise MungError(f"{path}: unreadable part file ({type(exc).__name__}: {exc}); "
                        "remove it to redo its inputs") from None


class ParquetDataset:
    """The output folder of one table-writing job (see the module docstring)."""

    def __init__(self, root: os.PathLike, table: str, schema: pa.Schema, model: ModelId,
                 force: bool = False, part_items: int = 1000, part_seconds: float = 60.0) -> None:
        self.root, self.table, self.model = Path(root), table, model
        self.schema = pa.schema([*schema, ("fingerprint", pa.string()), ("model", pa.string()),
                                 ("model_version", pa.string())])
        self.part_items, self.part_seconds = part_items, part_seconds
        self.rows: list[dict] = []
        self.items: list[dict] = []
        self.failures: list[dict] = []
        self.last_flush = time.monotonic()
        self.run_id = uuid.uuid4().hex[:8]
        self.n_parts = 0
        self._open(force)

    def _open(self, force: bool) -> None:
        meta_path = self.root / META
        want = {"format_version": FORMAT_VERSION, "table": self.table, "model": self.model.name,
                "model_version": self.model.version}
        if self.root.exists() and not self.root.is_dir():
            raise MungError(f"{self.root}: output folder is an existing file")
        if meta_path.exists():
            try:
                have = json.loads(meta_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise MungError(f"{meta_path}: unreadable ({exc}); use --force to start over") from None
            if have != want and not force:
                raise MungError(
                    f"{self.root}: written by {have.get('table')} model {have.get('model')} version "
                    f"{have.get('model_version')}; this run is {self.table} model {self.model.name} "
                    f"version {self.model.version} (use --force to start the dataset over)")
        elif self.root.is_dir() and any(self.root.iterdir()) and not force:
            raise MungError(f"{self.root}: folder exists and is not a mung dataset (use --force)")
        if force:
            for sub in (self.table, "items", "failures"):
                shutil.rmtree(self.root / sub, ignore_errors=True)
        for sub in (self.table, "items", "failures"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        write_json(meta_path, want, force=True)
        committed = {p.name for p in _part_files(self.root / "items")}
        for p in _part_files(self.root / self.table):
            if p.name not in committed:  # written, never committed: its inputs are redone
                p.unlink()
        self.done: dict[str, tuple[str, str]] = {}  # path -> (fingerprint, items part)
        for p in _part_files(self.root / "items"):
            t = _read(p, ["path", "fingerprint"])
            for path, fp in zip(t.column("path").to_pylist(), t.column("fingerprint").to_pylist(),
                                strict=True):
                self.done[path] = (fp, p.name)

    def pending(self, items: Sequence[BatchItem]) -> tuple[list[BatchItem], list[BatchItem]]:
        """(to do, skipped): an input is skipped when its path is done with the same content
        fingerprint; a changed file has its old rows removed and is done again."""
        todo, skipped, changed = [], [], set()
        for it in items:
            key = str(it.path)
            if key in self.done and self.done[key][0] == fingerprint(it.path):
                skipped.append(it)
            else:
                if key in self.done:
                    changed.add(key)
                todo.append(it)
        if changed:
            self._drop(changed)
        return todo, skipped

    def _drop(self, paths: set[str]) -> None:
        for name in sorted({self.done[p][1] for p in paths}):
            for sub in (self.table, "items"):
                part = self.root / sub / name
                t = _read(part)
                keep = t.filter(pc.invert(pc.is_in(t.column("path"), pa.array(sorted(paths)))))
                write_with(part, lambda tmp, k=keep: pq.write_table(k, tmp), force=True)
        for p in paths:
            del self.done[p]

    def add(self, item: BatchItem, fp: str, rows: list[dict]) -> None:
        extra = {"fingerprint": fp, "model": self.model.name, "model_version": self.model.version}
        self.rows += [{**r, **extra} for r in rows]
        self.items.append({"path": str(item.path), "uri": item.uri, "fingerprint": fp, "rows": len(rows)})
        if len(self.items) >= self.part_items or time.monotonic() - self.last_flush > self.part_seconds:
            self.flush()

    def fail(self, path: os.PathLike, uri: str, error: str) -> None:
        self.failures.append({"path": str(path), "uri": uri, "error": error.splitlines()[0]})

    def flush(self) -> None:
        """Write the buffered rows, then commit their inputs (see the module docstring)."""
        self.last_flush = time.monotonic()
        if not self.items:
            return
        name = f"part-{self.run_id}-{self.n_parts:05d}.parquet"
        rows = pa.Table.from_pylist(self.rows, schema=self.schema)
        items = pa.Table.from_pylist(self.items, schema=ITEMS)
        write_with(self.root / self.table / name, lambda tmp: pq.write_table(rows, tmp))
        write_with(self.root / "items" / name, lambda tmp: pq.write_table(items, tmp))
        self.n_parts += 1
        self.rows, self.items = [], []

    def close(self) -> None:
        """Flush, and replace the failures table by this run's failures."""
        self.flush()
        for p in _part_files(self.root / "failures"):
            p.unlink()
        if self.failures:
            table = pa.Table.from_pylist(self.failures, schema=FAILURES)
            write_with(self.root / "failures" / f"part-{self.run_id}.parquet",
                       lambda tmp: pq.write_table(table, tmp))


def read_table(root: os.PathLike, name: str) -> pa.Table:
    """One table of a dataset (``tracks``, ``turns``, ``embeddings``, ``items``, ``failures``)."""
    parts = _part_files(Path(root) / name)
    return pa.concat_tables([_read(p) for p in parts]) if parts else pa.table({})


class _Fingerprinted:
    """Wraps a :class:`TableTask` for :func:`mung.batch.run_batch`: the worker also returns the
    input's fingerprint, and ``write`` (here, in the driver) streams the rows into the dataset."""

    def __init__(self, task: TableTask, dataset: ParquetDataset | None) -> None:
        self.task, self.dataset, self.name = task, dataset, task.name

    def __getstate__(self) -> dict:
        return {"task": self.task, "dataset": None, "name": self.name}

    def setup(self) -> None:
        self.task.setup()

    def outputs(self, item: BatchItem) -> list[Path]:
        return []  # done-ness is the dataset's commit log, not files

    def load(self, item: BatchItem) -> tuple[str, Any]:
        return fingerprint(item.path), self.task.load(item)

    def infer(self, item: BatchItem, loaded: tuple[str, Any]) -> tuple[str, Any]:
        return loaded[0], self.task.infer(item, loaded[1])

    def process(self, item: BatchItem) -> tuple[str, Any]:
        return self.infer(item, self.load(item))

    def write(self, item: BatchItem, result: tuple[str, Any]) -> None:
        fp, value = result
        self.task.write(item, value)
        self.dataset.add(item, fp, self.task.rows(item, value))


@dataclass
class TableReport:
    batch: BatchReport
    missing: int
    out: Path

    @property
    def ok(self) -> bool:
        return self.batch.ok and not self.missing

    def summary(self) -> str:
        text = self.batch.summary()
        if self.missing:
            text += f", {self.missing} not found"
        if self.batch.failed or self.missing:
            text += f" (see {self.out / 'failures'})"
        return text


def run_table(task: TableTask, inputs: Sequence[str | os.PathLike], out: os.PathLike, *,
              engine: str = "local", address: str | None = None, jobs: int = 1, force: bool = False,
              progress: bool = True, part_items: int = 1000) -> TableReport:
    """Run ``task`` over files, folders, globs or manifests into the Parquet dataset ``out``:
    inputs done before (same path and content) are skipped, missing and failing inputs go to
    the failures table, the rest is done once."""
    found = read_inputs(inputs)
    dataset = ParquetDataset(out, task.table, task.schema, task.model_id(), force, part_items)
    for path in found.missing:
        dataset.fail(path, "", f"{path}: file not found")
    if found.missing:
        warn(f"{len(found.missing)} input(s) not found, e.g. {found.missing[0]} (recorded in failures)")
    todo, skipped = dataset.pending(found.items)
    by_uri = {it.uri: it for it in todo}
    try:
        report = run_batch(_Fingerprinted(task, dataset), todo, jobs=jobs, force=True, progress=progress,
                           engine=engine, address=address)
    finally:
        dataset.flush()
    report.skipped += [it.uri for it in skipped]
    for uri, err in report.failed.items():
        dataset.fail(by_uri[uri].path, uri, err)
    dataset.close()
    return TableReport(report, len(found.missing), Path(out))
