"""Results pages without a browser: known-answer error lanes and envelope, the page's DER equals
`mung score`, the page data for music, the server (byte ranges, outside audio, busy port)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import view_fixtures
from conftest import run_cli
from music_fixtures import music_dir
from view_fixtures import item_data, page_data

from mung.diarization.rttm import Diarization, Turn, read_rttm
from mung.errors import MungError
from mung.view import make_server, write_diarization_page
from mung.view.diarization import envelope, error_regions
from mung.view.music import confusion, micro_f1

diar_page, music_page = view_fixtures.diar_page, view_fixtures.music_page


def test_error_regions_known_answer():
    ref = Diarization("r", [Turn(0, 10, "A"), Turn(5, 15, "B")], 15)
    hyp = Diarization("r", [Turn(0, 6, "x"), Turn(6, 10, "z"), Turn(10, 20, "y")], 20)
    err = error_regions(ref, hyp)
    assert err["missed"] == [[5.0, 10.0]]  # two reference speakers, one detected
    assert err["false_alarm"] == [[15.0, 20.0]]  # nobody speaks in the reference
    assert err["confusion"] == [[6.0, 10.0]]  # z is not mapped to A


def test_envelope_follows_energy(tmp_path):
    sr = 16000
    t = np.arange(sr) / sr
    wav = np.concatenate([0.001 * np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 220 * t)])
    sf.write(tmp_path / "x.wav", wav.astype(np.float32), sr)
    env = envelope(tmp_path / "x.wav")
    v = np.array(env["values"])
    assert env["hop"] == pytest.approx(0.05) and len(v) == 40
    assert v[:19].max() < 60 and v[21:].min() == 100  # 54 dB quieter, out of a 60 dB range


def test_music_metrics_known_answer():
    assert confusion([("Q1", "Q1"), ("Q1", "Q2"), ("Q2", "Q2")], ["Q1", "Q2"]) == [[1, 1], [0, 1]]
    assert micro_f1([({"a", "b"}, {"a"}), ({"c"}, {"c", "d"})]) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert micro_f1([(set(), set())]) is None


def test_cli_page_der_equals_mung_score(diar_page, capsys):
    out, ref, uri = diar_page
    code, stdout, _ = run_cli(capsys, "score", "--ref", ref, "--hyp", out / f"{uri}.rttm", "--json")
    assert code == 0
    der = next(r["der"] for r in json.loads(stdout)["files"] if r["uri"] == uri)
    index = page_data(out)
    assert index["recordings"][0]["der"] == pytest.approx(der, abs=1e-12)
    assert index["total"]["der"] == pytest.approx(der, abs=1e-12)


def test_detail_holds_turns_reference_and_envelope(diar_page):
    out, ref, uri = diar_page
    d = item_data(out, 0)
    hyp = read_rttm(out / f"{uri}.rttm")[uri]
    assert len(d["turns"]) == len(hyp.turns) and d["speakers"] == hyp.speakers
    assert d["ref"]["speakers"] == read_rttm(ref)[uri].speakers
    assert len(d["envelope"]["values"]) == pytest.approx(30 / 0.05, abs=2)
    assert (out / d["audio"]).resolve() == (ref.parent / f"{uri}.ogg").resolve()


def test_html_needs_out_dir(capsys, ami_dir):
    code, _, err = run_cli(capsys, "diarize", ami_dir / "EN2009b_0000-0030.ogg", "--html")
    assert code == 1
    assert err.strip() == "error: --html needs --out DIR (the page is written to DIR/index.html)"


def test_existing_page_needs_force(tmp_path):
    write_diarization_page(tmp_path, [])
    with pytest.raises(MungError, match="index.html: output exists"):
        write_diarization_page(tmp_path, [])
    write_diarization_page(tmp_path, [], force=True)
    assert page_data(tmp_path)["recordings"] == []


def test_missing_audio_is_noted(tmp_path):
    d = Diarization("gone", [Turn(0, 1, "A")], 1)
    write_diarization_page(tmp_path, [d], {"gone": tmp_path / "nowhere.wav"})
    text = (tmp_path / "view-data" / "item-0.js").read_text()
    assert '"audio": null' in text and "audio file not found when the page was written" in text


def test_music_page_data(music_page):
    out, tags = music_page
    index = page_data(out)
    assert [t["id"] for t in index["tracks"]] == [Path(r["file"]).stem for r in tags]
    assert index["stations"] == ["Q1", "Q2", "Q3", "Q4"] and index["has_labels"]
    assert sum(map(sum, index["confusion"])) == index["labelled"] == len(tags)
    right = sum(t["st"] == t["ts"] for t in index["tracks"])
    assert index["accuracy"] == pytest.approx(right / len(tags))
    assert all(len(t["top"]) == 5 and t["top"][0][1] >= t["top"][-1][1] for t in index["tracks"])


def _get(url: str, headers: dict | None = None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
        return r.status, dict(r.headers), r.read()


@pytest.fixture
def served(diar_page):
    server = make_server(diar_page[0], port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", diar_page
    server.shutdown()
    server.server_close()


def test_server_ranges_and_outside_audio(served):
    base, (out, ref, uri) = served
    status, _, body = _get(base)
    assert status == 200 and b"view-data/index.js" in body
    audio = (ref.parent / f"{uri}.ogg").read_bytes()
    rel = Path(json.loads((out / "view-data" / "audio.json").read_text())[0])
    url = base + "_outside/" + urllib.request.quote(rel.as_posix(), safe="")
    status, headers, body = _get(url, {"Range": "bytes=100-199"})
    assert status == 206 and body == audio[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(audio)}"
    with pytest.raises(urllib.error.HTTPError, match="404"):  # only the page's own audio
        _get(base + "_outside/" + urllib.request.quote("../../../etc/passwd", safe=""))


def test_view_on_folder_without_page_and_busy_port(tmp_path, capsys):
    server = make_server(tmp_path, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _, _, body = _get(f"http://127.0.0.1:{server.server_address[1]}/")
        assert b"No results page here" in body
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, out, err = run_cli(capsys, "view", tmp_path, "--port", port)
    assert code == 1 and out == ""
    assert err == f"error: port {port} on 127.0.0.1 is already in use: pick another with --port\n"
    code, _, err = run_cli(capsys, "view", tmp_path / "missing")
    assert code == 1 and "missing: not a folder" in err


def test_mung_view_serves_and_prints_its_address(diar_page):
    proc = subprocess.Popen([sys.executable, "-m", "mung", "view", str(diar_page[0]), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {diar_page[0]} at http://127.0.0.1:") and "(Ctrl-C to stop)" in line
        status, _, body = _get(line.split(" at ")[1].split()[0])
        assert status == 200 and b"view-assets/diarization.js" in body
    finally:
        proc.terminate()
        proc.wait(10)


def test_music_tag_html_option_writes_page(tmp_path, capsys):
    clip = music_dir() / "audio" / "MT0000082187.ogg"
    code, out, err = run_cli(capsys, "music", "tag", clip, "--html", tmp_path / "page", "--format", "json")
    assert code == 0 and (tmp_path / "page" / "index.html").is_file()
    assert json.loads(out)[0]["station"] == page_data(tmp_path / "page")["stations"][
        page_data(tmp_path / "page")["tracks"][0]["st"]]
    assert "page written to" in err
