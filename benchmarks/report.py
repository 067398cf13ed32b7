"""What every benchmark script ends with: print its table and write it as a results page."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from mung.errors import MungError
from mung.outputs import write_text


def publish(title: str, table: str, setup: str, out: str | os.PathLike) -> None:
    """Print ``table`` and ``setup``, and write them under ``# title`` to ``out`` (Markdown)."""
    print("\n" + table + "\n\n" + setup)
    write_text(out, f"# {title}\n\n{table}\n\n{setup}\n", force=True)


def run(main: Callable[[], None]) -> None:
    """Run a benchmark's ``main``; a user error (bad data folder, …) is one line, not a traceback."""
    try:
        main()
    except MungError as exc:
        sys.exit(f"error: {exc}")
