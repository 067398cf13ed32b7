"""Writing a results page: ``OUT/index.html``, its data as JavaScript files and the shipped assets.

Data travel as ``.js`` files (``window.MUNG_INDEX = ...``) rather than JSON so that the page also
works when opened straight from disk: browsers refuse ``fetch`` on ``file://`` but load scripts.
The index holds one small summary row per item; per-item details (turns, envelope) go in one file
each and are loaded only when the item is opened, so 1,000 recordings cost one small index.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from mung.errors import MungError
from mung.outputs import check_writable, write_text

ASSETS_DIR = "view-assets"
DATA_DIR = "view-data"
INDEX = "index.html"
AUDIO_LIST = "audio.json"
AUDIO_DIR = "audio"
ASSET_FILES = ("view.css", "common.js", "diarization.js", "music.js")


def audio_ref(out_dir: Path, path: os.PathLike | None, copy: bool = False) -> tuple[str | None, str | None]:
    """(URL of ``path`` relative to the page, note) — the note says why there is no audio."""
    if path is None:
        return None, "no audio file was given for this item"
    path = Path(path)
    if not path.is_file():
        return None, f"audio file not found when the page was written: {path}"
    if copy:
        target = out_dir / AUDIO_DIR / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.stat().st_size != path.stat().st_size:
            shutil.copyfile(path, target)
        path = target
    return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix(), None


def _js(name: str, obj: object) -> str:
    return f"window.{name} = {json.dumps(obj, separators=(',', ':'), ensure_ascii=False)};\n"


def _replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)


def write_page(out_dir: os.PathLike, kind: str, title: str, index: dict, details: list[dict] | None = None,
               audio: list[str | None] | None = None, force: bool = False) -> Path:
    """Write ``out_dir/index.html`` for ``kind`` ('diarization' or 'music'): ``index`` is the page's
    summary data, ``details[i]`` the data loaded when item ``i`` is opened, ``audio`` the relative
    audio URLs the page uses (``mung view`` serves those outside the folder, and only those).
    Refuses to overwrite an existing page unless ``force``; the page file is replaced last."""
    out = Path(out_dir)
    page = out / INDEX
    check_writable(page, force)
    out.mkdir(parents=True, exist_ok=True)
    data_tmp = Path(tempfile.mkdtemp(prefix=f".{DATA_DIR}.", dir=out))
    assets_tmp = Path(tempfile.mkdtemp(prefix=f".{ASSETS_DIR}.", dir=out))
    try:
        (data_tmp / "index.js").write_text(_js("MUNG_INDEX", {"kind": kind, "title": title, **index}))
        for i, detail in enumerate(details or []):
            (data_tmp / f"item-{i}.js").write_text(f"window.MUNG_DETAIL({i}, {json.dumps(detail)});\n")
        outside = sorted({a for a in audio or [] if a and a.startswith("../")})
        (data_tmp / AUDIO_LIST).write_text(json.dumps(outside, indent=0) + "\n")
        shipped = resources.files("mung.view") / "assets"
        for name in ASSET_FILES:
            (assets_tmp / name).write_bytes((shipped / name).read_bytes())
        umask = os.umask(0)
        os.umask(umask)
        for tmp in (data_tmp, assets_tmp):  # mkdtemp makes 0700 folders; give the usual permissions
            os.chmod(tmp, 0o777 & ~umask)
        _replace_dir(data_tmp, out / DATA_DIR)
        _replace_dir(assets_tmp, out / ASSETS_DIR)
    finally:
        for tmp in (data_tmp, assets_tmp):
            if tmp.exists():
                shutil.rmtree(tmp)
    template = (resources.files("mung.view") / "assets" / "page.html").read_text()
    text = template.replace("{{TITLE}}", html.escape(title)).replace("{{KIND}}", kind)
    return write_text(page, text, force=True)


def check_results_dir(path: os.PathLike) -> Path:
    """The folder ``mung view`` serves (it must exist and be a directory)."""
    path = Path(path)
    if not path.is_dir():
        raise MungError(f"{path}: not a folder (give the --out folder of mung diarize or the --html folder)")
    return path
