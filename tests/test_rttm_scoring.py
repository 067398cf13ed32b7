"""RTTM/UEM parsing and DER/JER known answers."""

import pytest

from mung.diarization.rttm import Diarization, Turn, read_rttm, read_uem, write_uem
from mung.diarization.scoring import score
from mung.errors import MungError


def _d(uri, *turns):
    return Diarization(uri, [Turn(s, e, k) for s, e, k in turns], max(e for _, e, _ in turns))


def test_rttm_round_trip(tmp_path, ami_dir):
    refs = read_rttm(ami_dir / "ami-excerpts.rttm")
    assert len(refs) == 8
    path = tmp_path / "x.rttm"
    path.write_text("".join(d.to_rttm() for d in refs.values()))
    again = read_rttm(path)
    for uri, d in refs.items():
        assert [(round(t.start, 3), round(t.end, 3), t.speaker) for t in sorted(d.turns)] == [
            (round(t.start, 3), round(t.end, 3), t.speaker) for t in sorted(again[uri].turns)
        ]


def test_uem_round_trip(tmp_path, ami_dir):
    uem = read_uem(ami_dir / "ami-excerpts.uem")
    path = tmp_path / "x.uem"
    path.write_text(write_uem(uem))
    assert read_uem(path) == uem


def test_malformed_rttm_names_line(tmp_path):
    path = tmp_path / "bad.rttm"
    path.write_text("SPEAKER a 1 0.0 1.0 <NA> <NA> s1 <NA> <NA>\nSPEAKER a 1 zero 1.0 <NA> <NA> s1\n")
    with pytest.raises(MungError, match=r"bad.rttm:2: onset is not a number"):
        read_rttm(path)
    path.write_text("SPEAKER a 1\n")
    with pytest.raises(MungError, match=r"bad.rttm:1: malformed RTTM line"):
        read_rttm(path)


def test_malformed_uem_names_line(tmp_path):
    path = tmp_path / "bad.uem"
    path.write_text("a 1 0 10\nb 1 5\n")
    with pytest.raises(MungError, match=r"bad.uem:2: malformed UEM line"):
        read_uem(path)


def test_der_perfect_and_label_invariant():
    ref = _d("a", (0, 10, "A"), (10, 20, "B"))
    hyp = _d("a", (0, 10, "x"), (10, 20, "y"))
    _, total = score({"a": ref}, {"a": hyp}, collar=0.0)
    assert total.der == pytest.approx(0.0) and total.jer == pytest.approx(0.0)


def test_der_known_answer():
    # 20 s of reference; hyp misses 2 s, labels 3 s wrongly, adds 1 s of false alarm.
    ref = _d("a", (0, 10, "A"), (10, 20, "B"))
    hyp = _d("a", (0, 8, "x"), (10, 17, "y"), (17, 20, "x"), (20, 21, "y"))
    rows, total = score({"a": ref}, {"a": hyp}, collar=0.0)
    assert total.miss == pytest.approx(2 / 20)
    assert total.false_alarm == pytest.approx(1 / 20)
    assert total.confusion == pytest.approx(3 / 20)
    assert total.der == pytest.approx(6 / 20)


def test_collar_is_per_side_like_dscore():
    ref = _d("a", (0, 10, "A"), (10, 20, "B"))
    hyp = _d("a", (0, 10.2, "x"), (10.2, 20, "y"))  # boundary 0.2 s late
    _, none = score({"a": ref}, {"a": hyp}, collar=0.0)
    _, quarter = score({"a": ref}, {"a": hyp}, collar=0.25)
    assert none.confusion == pytest.approx(0.2 / 20)
    assert quarter.der == pytest.approx(0.0)


def test_one_speaker_baseline_matches_data_readme(ami_dir):
    """The data README's one-speaker baseline on ami-excerpts: 16.02 % (±0.25 s collar)."""
    refs = read_rttm(ami_dir / "ami-excerpts.rttm")
    uem = read_uem(ami_dir / "ami-excerpts.uem")
    hyps = {}
    for uri, d in refs.items():
        merged = []
        for t in sorted(d.turns):
            if merged and t.start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], t.end)
            else:
                merged.append([t.start, t.end])
        hyps[uri] = Diarization(uri, [Turn(s, e, "one") for s, e in merged])
    _, total = score(refs, hyps, uem, collar=0.25)
    assert total.der == pytest.approx(0.1602, abs=0.0005)


def test_unknown_hypothesis_uri():
    with pytest.raises(MungError, match=r"no hypothesis uri is scored \(hypotheses: zzz; scored: a\)"), \
            pytest.warns(UserWarning, match="not in the reference"), \
            pytest.warns(UserWarning, match="with no hypothesis, scored as all missed"):
        score({"a": _d("a", (0, 1, "A"))}, {"zzz": _d("zzz", (0, 1, "A"))})


def test_score_with_uem_ignores_hypotheses_outside_it(tmp_path, capsys, ami_dir):
    """A hypothesis folder may hold more recordings than the UEM lists: only the listed ones count."""
    from conftest import run_cli

    refs = read_rttm(ami_dir / "ami-excerpts.rttm")
    uem = read_uem(ami_dir / "ami-excerpts.uem")
    keep = sorted(uem)[:2]
    (tmp_path / "two.uem").write_text(write_uem({u: uem[u] for u in keep}))
    hyp_dir = tmp_path / "hyp"
    hyp_dir.mkdir()
    for uri in sorted(uem)[:3]:
        (hyp_dir / f"{uri}.rttm").write_text(refs[uri].to_rttm())
    code, out, err = run_cli(capsys, "score", "--ref", ami_dir / "ami-excerpts.rttm", "--hyp", hyp_dir,
                             "--uem", tmp_path / "two.uem", "--json")
    assert code == 0, err
    import json

    result = json.loads(out)
    assert sorted(f["uri"] for f in result["files"]) == keep
    assert result["total"]["der"] == 0.0
