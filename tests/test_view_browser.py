"""Results pages in real headless Chromium (Debian's package, driven by Playwright): loading without
console errors, playback from a clicked turn, keyboard, renaming into the downloaded RTTM, the DER
of the reference view, sorting and filtering the music table, and the bad inputs."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
import view_fixtures
from conftest import data_dir, run_cli
from view_fixtures import item_data, page_data

from mung.diarization.rttm import Diarization, Turn, read_rttm
from mung.view import make_server, write_diarization_page, write_music_page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--autoplay-policy=no-user-gesture-required", "--mute-audio"]

diar_page, music_page = view_fixtures.diar_page, view_fixtures.music_page


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium chromium-driver (as .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e .[dev]")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Page:
    """A tab on a results page that records console errors and uncaught exceptions."""

    def __init__(self, browser, url: str) -> None:
        self.ctx = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        self.page = self.ctx.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.page.wait_for_function("window.mungReady === true", timeout=15000)

    def player(self, expr: str):
        return self.page.evaluate(f"(p => {expr})(document.getElementById('player'))")


@pytest.fixture
def open_page(browser):
    pages: list[Page] = []

    def open_(target) -> Page:
        url = target if isinstance(target, str) else (Path(target) / "index.html").as_uri()
        pages.append(Page(browser, url))
        return pages[-1]

    yield open_
    for p in pages:
        p.ctx.close()


def test_diarization_page_loads_without_console_errors(open_page, diar_page, tmp_path):
    out, _, uri = diar_page
    p = open_page(out)
    detail = item_data(out, 0)
    assert p.page.locator("#detail h2").inner_text() == uri
    assert p.page.locator(".lane-label.hyp").count() == len(detail["speakers"])
    assert p.page.locator(".lane-label.ref").count() == len(detail["ref"]["speakers"])
    assert p.page.locator(".turn").count() == len(detail["turns"])
    assert p.page.locator("#audio-note").is_hidden()
    p.page.screenshot(path=tmp_path / "diarization.png", full_page=True)
    assert p.errors == []


def test_clicking_a_turn_plays_from_its_start(open_page, diar_page):
    out, _, _ = diar_page
    p = open_page(out)
    p.page.wait_for_function("document.getElementById('player').readyState >= 1")
    turn = p.page.locator(".turn").nth(1)
    start = float(turn.get_attribute("data-start"))
    assert start > 1
    turn.click()
    p.page.wait_for_function("!document.getElementById('player').paused")
    t = p.player("p.currentTime")
    assert start - 0.05 <= t < start + 1.5
    p.page.wait_for_function(f"document.getElementById('player').currentTime > {start + 0.2}")
    assert p.errors == []


def test_keyboard_space_and_arrows(open_page, diar_page):
    p = open_page(diar_page[0])
    p.page.wait_for_function("document.getElementById('player').readyState >= 1")
    p.page.locator("h1").click()  # focus on the page, not on a control
    p.page.keyboard.press("ArrowRight")
    p.page.keyboard.press("ArrowRight")
    assert p.player("p.currentTime") == pytest.approx(10, abs=0.05)
    p.page.keyboard.press("ArrowLeft")
    assert p.player("p.currentTime") == pytest.approx(5, abs=0.05)
    p.page.keyboard.press(" ")
    p.page.wait_for_function("!document.getElementById('player').paused")
    p.page.keyboard.press(" ")
    p.page.wait_for_function("document.getElementById('player').paused")
    assert p.errors == []


def test_renaming_a_speaker_changes_the_downloaded_rttm(open_page, diar_page, tmp_path):
    out, _, uri = diar_page
    p = open_page(out)
    hyp = read_rttm(out / f"{uri}.rttm")[uri]
    old = hyp.speakers[0]
    p.page.locator(f'input.name[data-speaker="{old}"]').fill("Alice Smith")
    assert p.page.locator(f'.lane-label.hyp[data-speaker="{old}"]').inner_text() == "Alice Smith"
    with p.page.expect_download() as info:
        p.page.locator("#download").click()
    info.value.save_as(tmp_path / "renamed.rttm")
    assert info.value.suggested_filename == f"{uri}.rttm"
    got = read_rttm(tmp_path / "renamed.rttm")[uri]
    want = [(round(t.start, 3), round(t.end, 3), "Alice_Smith" if t.speaker == old else t.speaker)
            for t in sorted(hyp.turns)]
    assert [t.speaker for t in sorted(got.turns)] == [w[2] for w in want]
    assert [t.start for t in sorted(got.turns)] == pytest.approx([w[0] for w in want], abs=1e-3)
    assert [t.end for t in sorted(got.turns)] == pytest.approx([w[1] for w in want], abs=2e-3)


def test_reference_view_shows_the_der_of_mung_score(open_page, diar_page, capsys):
    out, ref, uri = diar_page
    code, stdout, _ = run_cli(capsys, "score", "--ref", ref, "--hyp", out / f"{uri}.rttm", "--json")
    assert code == 0
    der = next(r["der"] for r in json.loads(stdout)["files"] if r["uri"] == uri)
    p = open_page(out)
    assert p.page.locator("#der strong").inner_text() == f"DER {100 * der:.2f}%"
    for lane in ("missed", "false_alarm", "confusion"):
        assert p.page.locator(f".lane.err.{lane}").count() == 1


@pytest.fixture
def ami_page(tmp_path):
    """A three-recording page: hypotheses made from the AMI reference with known errors."""
    ami = data_dir("diarization", "ami-excerpts")
    refs = read_rttm(ami / "ami-excerpts.rttm")
    hyps = []
    for k, uri in enumerate(sorted(refs)[:3]):
        r = refs[uri]
        turns = sorted(r.turns)[k:]  # drop k turns: 0, 1 and 2 missed turns
        hyps.append(Diarization(uri, [Turn(t.start, t.end, f"s{t.speaker}") for t in turns], r.duration))
    write_diarization_page(tmp_path, hyps, {u: ami / f"{u}.ogg" for u in refs}, ref=refs)
    return tmp_path


def test_recording_list_sorts_and_opens(open_page, ami_page):
    p = open_page(ami_page)
    ders = {r["uri"]: r["der"] for r in page_data(ami_page)["recordings"]}
    p.page.locator('th button.sort[data-key="der"]').click()  # numbers sort largest first
    first = p.page.locator("tbody tr").first.get_attribute("data-uri")
    assert first == max(ders, key=ders.get)
    p.page.locator('th button.sort[data-key="der"]').click()
    assert p.page.locator("tbody tr").first.get_attribute("data-uri") == min(ders, key=ders.get)
    p.page.locator(f'button.open[data-uri="{first}"]').click()
    p.page.wait_for_function(f"document.querySelector('#detail h2')?.textContent === {json.dumps(first)}")
    assert p.page.locator("#der strong").inner_text() == f"DER {100 * ders[first]:.2f}%"
    assert p.errors == []


def test_music_table_sorts_and_filters(open_page, music_page, tmp_path):
    out, tags = music_page
    p = open_page(out)
    rows = p.page.locator("table.data tbody tr")
    assert rows.count() == len(tags)
    p.page.locator('th button.sort[data-key="p"]').click()
    probs = [float(x) for x in p.page.locator("table.data tbody td.num").all_inner_texts()]
    assert probs == sorted(probs, reverse=True) and len(probs) == len(tags)
    p.page.locator('th button.sort[data-key="p"]').click()
    probs = [float(x) for x in p.page.locator("table.data tbody td.num").all_inner_texts()]
    assert probs == sorted(probs)
    p.page.select_option("#filter-station", label="Q2")
    shown = p.page.locator("table.data tbody .station").all_inner_texts()
    assert shown == ["Q2"] * sum(r["station"] == "Q2" for r in tags) and shown
    p.page.select_option("#filter-station", label="all stations")
    mood = next(m for r in tags for m in r["moods"])  # a mood some clip was tagged with
    p.page.select_option("#filter-mood", label=mood)
    ids = p.page.locator("table.data tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
    assert sorted(ids) == sorted(Path(r["file"]).stem for r in tags if mood in r["moods"])
    index = page_data(out)
    cells = p.page.locator("#confusion tbody td").all_inner_texts()
    assert [int(c) for c in cells] == [v for row in index["confusion"] for v in row]
    p.page.screenshot(path=tmp_path / "music.png", full_page=True)
    assert p.errors == []


def test_music_play_button(open_page, music_page):
    p = open_page(music_page[0])
    p.page.locator("button.play").first.click()
    # `paused` turns false at play(); the button is redrawn by the "play" event a task later.
    p.page.wait_for_function("!document.getElementById('player').paused")
    p.page.wait_for_selector('button.play[aria-pressed="true"]', timeout=10_000)
    assert "Pause" in p.page.locator("button.play").first.inner_text()
    assert p.errors == []


def test_empty_results_say_so(open_page, tmp_path):
    write_diarization_page(tmp_path / "d", [])
    write_music_page(tmp_path / "m", [])
    for folder, what in (("d", "0 recordings"), ("m", "0 tracks")):
        p = open_page(tmp_path / folder)
        assert "No results" in p.page.locator(".empty").inner_text()
        assert what in p.page.locator(".empty").inner_text()
        assert p.errors == []


def test_moved_audio_keeps_the_timeline_with_a_note(open_page, tmp_path):
    ami = data_dir("diarization", "ami-excerpts")
    uri = "EN2009b_0000-0030"
    shutil.copyfile(ami / f"{uri}.ogg", tmp_path / f"{uri}.ogg")
    hyp = read_rttm(ami / "ami-excerpts.rttm")[uri]
    write_diarization_page(tmp_path / "page", [hyp], {uri: tmp_path / f"{uri}.ogg"})
    (tmp_path / f"{uri}.ogg").unlink()  # the user moved the audio after writing the page
    p = open_page(tmp_path / "page")
    p.page.wait_for_selector("#audio-note", state="visible")
    assert "Audio missing" in p.page.locator("#audio-note").inner_text()
    assert p.page.locator(".turn").count() == len(hyp.turns)
    assert p.page.locator("canvas.envelope").count() == 1


@pytest.fixture
def serve():
    servers = []

    def serve_(folder) -> str:
        servers.append(make_server(folder, port=0))
        threading.Thread(target=servers[-1].serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{servers[-1].server_address[1]}/"

    yield serve_
    for s in servers:
        s.shutdown()
        s.server_close()


def test_served_page_seeks_audio_outside_the_folder(open_page, diar_page, serve):
    out = diar_page[0]
    p = open_page(serve(out))
    assert p.player("p.src").split("/")[3] == "_outside"
    p.page.wait_for_function("document.getElementById('player').readyState >= 1")
    turn = p.page.locator(".turn").nth(1)
    start = float(turn.get_attribute("data-start"))
    turn.click()
    p.page.wait_for_function("!document.getElementById('player').paused")
    assert start - 0.05 <= p.player("p.currentTime") < start + 1.5
    assert p.errors == []


def test_view_of_a_folder_without_a_page(browser, serve, tmp_path):
    page = browser.new_page()
    page.goto(serve(tmp_path))
    assert "no mung results page" in page.locator("#empty").inner_text()
    page.close()
