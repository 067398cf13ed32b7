"""The package's import graph: no cycles anywhere (function-level imports included), every
registry entry of a kind reachable by name."""

from __future__ import annotations

import grimp
import pytest

import mung
import mung.diarization.pipeline  # noqa: F401 - these import every registering module
import mung.music.models  # noqa: F401
import mung.speaker.losses  # noqa: F401
from mung import registry


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for m in sorted(graph.modules):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycles():
    assert _cycles(grimp.build_graph("mung", cache_dir=None)) == []


@pytest.mark.parametrize("kind", ["vad", "clustering", "encoder", "music_model", "speaker_loss"])
def test_every_registry_kind_is_populated_and_unknown_names_are_user_errors(kind):
    assert registry.names(kind)
    with pytest.raises(mung.MungError, match=f"unknown {kind} 'nope'; choose one of: "):
        registry.create(kind, "nope")


def test_torch_free_stages_do_not_load_torch():
    """The clustering, scoring and RTTM code runs without torch (the package's own names are
    imported lazily), so a process that only scores never pays for it."""
    import subprocess
    import sys

    code = ("import sys, mung.diarization.clustering, mung.diarization.scoring, mung.diarization.rttm, "
            "mung.diarization.windows, mung.diarization.resegment; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
