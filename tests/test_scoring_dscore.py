"""`score()` and `mung score` against the reference scorer (dscore / NIST md-eval): every file of
the three shared sets, with and without a collar, DER and JER; one-sided uris warned about;
strict RTTM / UEM."""

from __future__ import annotations

import csv
import json
import math

import pytest
from conftest import data_dir, run_cli

from mung.diarization.rttm import Diarization, Turn, read_rttm, read_rttms, read_uem, write_uem
from mung.diarization.scoring import UnscoredWarning, score
from mung.errors import MungError

SETS = ("ami-excerpts", "real-conversations", "sim-dev")


def _known() -> dict[tuple[str, float], dict[str, tuple[float, float]]]:
    out: dict = {}
    with open(data_dir("scoring", "dscore.tsv")) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            out.setdefault((r["set"], float(r["collar"])), {})[r["file"]] = (float(r["DER"]), float(r["JER"]))
    return out


def _set(name: str):
    root = data_dir("diarization", name)
    refs, uem = read_rttm(root / f"{name}.rttm"), read_uem(root / f"{name}.uem")
    return refs, uem, read_rttm(data_dir("scoring", f"{name}.hyp.rttm"))


@pytest.mark.parametrize("collar", [0.25, 0.0])
@pytest.mark.parametrize("name", SETS)
def test_every_file_matches_dscore(name, collar):
    """dscore prints two decimals: agreement to 0.006 points, per file and overall."""
    expected = _known()[(name, collar)]
    refs, uem, hyps = _set(name)
    rows, total = score(refs, hyps, uem, collar=collar)
    got = {r.uri: (100 * r.der, 100 * r.jer) for r in rows} | {"OVERALL": (100 * total.der, 100 * total.jer)}
    assert set(got) == set(expected)
    for uri, (der, jer) in expected.items():
        assert got[uri][0] == pytest.approx(der, abs=0.006), (uri, "DER")
        assert got[uri][1] == pytest.approx(jer, abs=0.006), (uri, "JER")


def test_en2005a_mapping_is_chosen_before_the_collar_like_md_eval():
    """md-eval maps speakers on the whole scored region, then cuts the collars; mapping after
    cutting them (pyannote.metrics' order) gave 48.51 % instead of 49.86 %."""
    refs, uem, hyps = _set("ami-excerpts")
    uri = "EN2005a_0000-0030"
    rows, _ = score({uri: refs[uri]}, {uri: hyps[uri]}, {uri: uem[uri]}, collar=0.25)
    assert 100 * rows[0].der == pytest.approx(49.86, abs=0.006)
    assert 100 * rows[0].confusion == pytest.approx(100 * 8.629 / 24.79, abs=0.01)  # md-eval's seconds


def test_jer_never_uses_the_collar():
    refs, uem, hyps = _set("real-conversations")
    _, with_collar = score(refs, hyps, uem, collar=0.25)
    _, without = score(refs, hyps, uem, collar=0.0)
    assert with_collar.jer == without.jer and with_collar.der < without.der


def test_cli_and_library_agree_on_a_folder_with_extra_files_and_a_uem(tmp_path, capsys):
    refs, uem, hyps = _set("ami-excerpts")
    keep = sorted(uem)[:5]
    (tmp_path / "five.uem").write_text(write_uem({u: uem[u] for u in keep}))
    folder = tmp_path / "hyp"
    folder.mkdir()
    for uri in sorted(uem)[1:]:  # the first UEM uri has no hypothesis; three are outside the UEM
        (folder / f"{uri}.rttm").write_text(hyps[uri].to_rttm())
    (folder / "unrelated.rttm").write_text(Diarization("zzz", [Turn(0, 1, "s")]).to_rttm())
    code, out, err = run_cli(capsys, "score", "--ref", data_dir("diarization", "ami-excerpts",
                             "ami-excerpts.rttm"), "--hyp", folder, "--uem", tmp_path / "five.uem", "--json")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 3, err
    assert any("3 reference uri(s) not in the UEM" in w for w in warnings)
    assert any("4 hypothesis uri(s) not in the UEM, not scored" in w and "zzz" in w for w in warnings)
    assert any(f"1 uri(s) with no hypothesis, scored as all missed: {keep[0]}" in w for w in warnings)
    with pytest.warns(UnscoredWarning):
        rows, total = score(refs, read_rttms(folder), read_uem(tmp_path / "five.uem"))
    result = json.loads(out)
    assert [f["uri"] for f in result["files"]] == keep == [r.uri for r in rows]
    assert result["total"] == pytest.approx(total.as_dict())
    assert result["files"][0]["miss"] == 1.0 and result["total"]["der"] > 0


def test_reference_without_hypothesis_warns_without_uem():
    ref = {"a": Diarization("a", [Turn(0, 2, "A")]), "b": Diarization("b", [Turn(0, 2, "B")])}
    with pytest.warns(UnscoredWarning, match="with no hypothesis, scored as all missed: b"):
        rows, total = score(ref, {"a": Diarization("a", [Turn(0, 2, "x")])}, collar=0.0)
    assert [r.der for r in rows] == [0.0, 1.0] and total.der == 0.5


def test_negative_collar_is_one_line(tmp_path, capsys):
    (tmp_path / "r.rttm").write_text("SPEAKER a 1 0.0 1.0 <NA> <NA> s <NA> <NA>\n")
    code, _, err = run_cli(capsys, "score", "--ref", tmp_path / "r.rttm", "--hyp", tmp_path / "r.rttm",
                           "--collar", "-1")
    assert code == 2 and "Invalid value for '--collar': -1.0 is not in the range x>=0" in err
    with pytest.raises(MungError, match="collar: must be"):
        score({}, {}, collar=-1)


@pytest.mark.parametrize("bad", ["my talk", "", "a\tb"])
def test_writers_refuse_what_cannot_be_read_back(bad):
    with pytest.raises(MungError, match="contains whitespace"):
        Diarization(bad, [Turn(0, 1, "s")]).to_rttm()
    with pytest.raises(MungError, match="contains whitespace"):
        Diarization("ok", [Turn(0, 1, bad)]).to_rttm()
    with pytest.raises(MungError, match="contains whitespace"):
        write_uem({bad: [(0.0, 1.0)]})


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_writers_refuse_non_finite_times(value):
    with pytest.raises(MungError, match="not a finite"):
        Diarization("a", [Turn(0, value, "s")]).to_rttm()
    with pytest.raises(MungError, match="not a finite"):
        write_uem({"a": [(0.0, value)]})


@pytest.mark.parametrize(
    "line, message",
    [
        ("SPEAKER my talk 1 0.0 1.0 <NA> <NA> s <NA> <NA>", "RTTM line has 11 fields, at most 10 .a uri"),
        ("SPEAKER a 1 inf 1.0 <NA> <NA> s <NA> <NA>", "onset must be a finite non-negative number"),
        ("SPEAKER a 1 0.0 nan <NA> <NA> s <NA> <NA>", "duration must be a finite non-negative number"),
    ],
)
def test_rttm_reader_is_strict(tmp_path, line, message):
    (tmp_path / "x.rttm").write_text(line + "\n")
    with pytest.raises(MungError, match=rf"x.rttm:1: {message}"):
        read_rttm(tmp_path / "x.rttm")


@pytest.mark.parametrize("line, message", [("my talk 1 0 10", "UEM line has 5 fields, at most 4"),
                                           ("a 1 0 inf", "end must be a finite")])
def test_uem_reader_is_strict(tmp_path, line, message):
    (tmp_path / "x.uem").write_text(line + "\n")
    with pytest.raises(MungError, match=rf"x.uem:1: {message}"):
        read_uem(tmp_path / "x.uem")


def test_a_uri_in_two_hypothesis_files_is_an_error(tmp_path):
    for name in ("one", "two"):
        (tmp_path / f"{name}.rttm").write_text("SPEAKER a 1 0.0 1.0 <NA> <NA> s <NA> <NA>\n")
    with pytest.raises(MungError, match=r"uri a is in both .*one.rttm and .*two.rttm"):
        read_rttms(tmp_path)


def test_file_name_with_spaces_gives_a_scorable_rttm(tmp_path, capsys):
    """`my talk.ogg` → uri my_talk (whitespace → '_'), which RTTM readers and `mung score` accept."""
    import shutil

    src = data_dir("diarization", "real-conversations")
    shutil.copy(src / "spokenwoz_SNG1263.ogg", tmp_path / "my talk.ogg")
    code, out, err = run_cli(capsys, "diarize", tmp_path / "my talk.ogg", "--out", tmp_path / "o")
    assert code == 0, err
    rttm = tmp_path / "o" / "my_talk.rttm"
    assert list(read_rttm(rttm)) == ["my_talk"]
    ref = read_rttm(src / "real-conversations.rttm")["spokenwoz_SNG1263"]
    (tmp_path / "ref.rttm").write_text(Diarization("my_talk", ref.turns).to_rttm())
    code, out, err = run_cli(capsys, "score", "--ref", tmp_path / "ref.rttm", "--hyp", rttm)
    assert code == 0 and "my_talk" in out and "warning" not in err, err
