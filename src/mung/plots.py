"""The one figure helper: a headless matplotlib figure written atomically as PNG on exit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mung.outputs import write_with


@contextmanager
def figure(path: str | os.PathLike, figsize: tuple[float, float], ncols: int = 1,
           force: bool = False) -> Iterator[tuple[Any, Any]]:
    """``with figure(path, (w, h)) as (fig, ax):`` draw; on exit the figure is laid out, saved to
    ``path`` (PNG, 100 dpi, never over an existing file without ``force``) and closed. With
    ``ncols > 1``, ``ax`` is the array of axes."""
    import matplotlib  # imported here: matplotlib takes ~0.5 s and only plotting commands need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, ncols, figsize=figsize)
    try:
        yield fig, ax
        fig.tight_layout()
        write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), force)
    finally:
        plt.close(fig)


def colours(name: str = "tab10") -> Any:
    """A matplotlib colour map by name."""
    import matplotlib

    return matplotlib.colormaps[name]
