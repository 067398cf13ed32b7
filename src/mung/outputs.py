"""Output helpers shared by every command: atomic writes that refuse to overwrite by default."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mung.errors import MungError


def check_writable(path: Path, force: bool) -> None:
    """Refuse to overwrite an existing output unless ``force``."""
    if path.is_dir():
        raise MungError(f"{path}: output path is a directory")
    if path.exists() and not force:
        raise MungError(f"{path}: output exists (use --force to overwrite)")


def check_folder(folder: Path) -> None:
    """``folder`` exists (created if needed) and a file can be created in it."""
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise MungError(f"{parent}: output folder is an existing file")
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise MungError(f"{folder}: output folder is not writable ({exc.strerror or exc})") from None


@contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    check_writable(path, force)
    if not path.parent.is_dir():  # a folder that exists is tested by mkstemp itself
        check_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:  # e.g. a full disk
        raise MungError(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str, force: bool = False) -> Path:
    """Write ``text`` atomically."""
    with atomic_path(path, force) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, force: bool = False) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return write_text(path, json.dumps(obj, indent=2, default=str) + "\n", force)


def write_with(path: str | os.PathLike, writer: Callable[[Path], None], force: bool = False) -> Path:
    """Atomically write ``path`` with ``writer(tmp_path)`` (for savefig, np.save, torch.save…)."""
    with atomic_path(path, force) as tmp:
        writer(tmp)
    return Path(path)
