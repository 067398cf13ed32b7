"""``mung view``: serve a results folder on localhost, for browsers that refuse pages on disk.

Byte ranges are honoured because Chromium seeks in audio only when the server answers ``Range``
requests. Audio that lies outside the folder (pages reference it by relative path) is served under
``/_outside/<relative path>``, and only the files the page lists in ``view-data/audio.json``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mung.errors import MungError
from mung.view.page import AUDIO_LIST, DATA_DIR, INDEX, check_results_dir

OUTSIDE = "/_outside/"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
NO_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>mung view: no results</title>
</head><body style="font-family:sans-serif;margin:2em"><h1>No results page here</h1>
<p id="empty">This folder holds no mung results page (<code>index.html</code>).
Write one with <code>mung diarize AUDIO --out DIR --html</code> or
<code>mung music tag AUDIO --html DIR</code>, then run <code>mung view DIR</code>.</p></body></html>"""


class _Handler(SimpleHTTPRequestHandler):
    """Static files from ``directory`` with byte ranges, the outside-audio allow-list and no log."""

    def log_message(self, format, *args) -> None:
        pass

    def _outside(self, url_path: str) -> str | None:
        rel = unquote(url_path[len(OUTSIDE):])
        try:
            allowed = json.loads((Path(self.directory) / DATA_DIR / AUDIO_LIST).read_text())
        except (OSError, ValueError):
            return None
        return str(Path(self.directory) / rel) if rel in allowed else None

    def send_head(self):
        url_path = urlsplit(self.path).path
        root = Path(self.directory)
        if url_path in ("/", f"/{INDEX}") and not (root / INDEX).is_file():
            body = NO_PAGE.encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return _Bytes(body)
        if url_path.startswith(OUTSIDE):
            path = self._outside(url_path)
            if path is None or not os.path.isfile(path):
                self.send_error(HTTPStatus.NOT_FOUND, "File not found")
                return None
        else:
            path = self.translate_path(self.path)
            if os.path.isdir(path) or not os.path.isfile(path):
                return super().send_head()
        return self._file(path)

    def _file(self, path: str):
        size = os.path.getsize(path)
        start, end = 0, size - 1
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and (match[1] or match[2]):
            if match[1]:
                start, end = int(match[1]), int(match[2]) if match[2] else size - 1
            else:
                start = max(0, size - int(match[2]))
            end = min(end, size - 1)
            if start > end:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return None
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        f = open(path, "rb")  # closed by do_GET after copyfile
        f.seek(start)
        return _Slice(f, end - start + 1)

    def copyfile(self, source, outputfile) -> None:
        try:
            shutil.copyfileobj(source, outputfile)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser cancelled a media request: normal while seeking


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int = -1) -> bytes:
        data, self.data = (self.data, b"") if n < 0 else (self.data[:n], self.data[n:])
        return data

    def close(self) -> None:
        pass


class _Slice:
    """The first ``length`` bytes of an open file, from its current position."""

    def __init__(self, f, length: int) -> None:
        self.f, self.left = f, length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


def make_server(folder: os.PathLike, port: int = 8765, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A server for ``folder`` on ``host:port`` (port 0 = any free port); a busy port is one clear
    :class:`MungError`."""
    root = check_results_dir(folder)
    try:
        return ThreadingHTTPServer((host, port), partial(_Handler, directory=str(root.resolve())))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise MungError(f"port {port} on {host} is already in use: pick another with --port") from None
        raise MungError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def has_page(folder: os.PathLike) -> bool:
    """Whether ``folder`` holds a written results page."""
    return (Path(folder) / INDEX).is_file()
