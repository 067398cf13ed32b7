"""Utterance embedding (partial windows) and known speakers on real LibriSpeech speech: short spans
equal the single-window embedding, the new embedding beats the whole-span one on split-utterance
trials, enroll → identify round trip, diarize --speakers names enrolled speakers of a simulated
conversation, and every bad input gives one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import data_dir, run_cli

from mung.arrays import l2_normalize
from mung.audio import SAMPLE_RATE, load
from mung.diarization.naming import match, name_profiles, rename, utterance_embedder, window_profiles
from mung.diarization.rttm import Diarization, Turn
from mung.diarization.simulate import SimulationConfig, simulate
from mung.speaker.embedding import embed_wav
from mung.speaker.encoders import load_encoder
from mung.speaker.halves import split_eer
from mung.speaker.utterance import UtteranceConfig, UtteranceEmbedder
from mung.speaker.voiceprints import Voiceprint, VoiceprintDB

# two women and two men (speakers.csv), so a short simulated conversation separates them reliably
ENROLLED, OTHER = ["103", "1034"], "1040"


@pytest.fixture(scope="module")
def speech() -> Path:
    return data_dir("speech", "librispeech-train-clean-100")


@pytest.fixture(scope="module")
def embedder(one_thread) -> UtteranceEmbedder:
    return utterance_embedder()


def utterance(speech: Path, spk: str) -> np.ndarray:
    return load(next((speech / spk).glob("*.ogg")))


@pytest.fixture(scope="module")
def split_audio(speech, tmp_path_factory) -> tuple[Path, Path]:
    """(enrol folder with SPK.flac = first 45 % of each utterance, speech folder SPK/rest.flac)."""
    root = tmp_path_factory.mktemp("split")
    for spk in [*ENROLLED, OTHER, "1081"]:
        wav = utterance(speech, spk)
        cut = int(0.45 * len(wav))
        (root / "enrol").mkdir(exist_ok=True)
        (root / "rest" / spk).mkdir(parents=True)
        sf.write(root / "enrol" / f"{spk}.flac", wav[:cut], SAMPLE_RATE)
        sf.write(root / "rest" / spk / "rest.flac", wav[cut:], SAMPLE_RATE)
    return root / "enrol", root / "rest"


def test_span_shorter_than_a_window_equals_the_single_window_embedding(speech, one_thread):
    wav, encoder = utterance(speech, "103"), load_encoder()
    levelled = UtteranceEmbedder(encoder, config=UtteranceConfig(loudness="window"))
    plain = UtteranceEmbedder(encoder)  # no speech detector: the span as it is
    assert levelled.encoder.span_loudness and not plain.encoder.span_loudness
    for a, b in ((2.0, 3.2), (5.0, 5.9), (0.0, 1.6)):  # not longer than one 1.6-s window
        span = [[a, b]]
        np.testing.assert_allclose(levelled(wav, span), levelled.encoder.embed_spans(wav, span), atol=1e-5)
        loud = wav * (0.1 / np.sqrt(np.mean(wav[int(a * SAMPLE_RATE) : int(b * SAMPLE_RATE)] ** 2)))
        np.testing.assert_allclose(plain(loud, span), plain.encoder.embed_spans(loud, span), atol=1e-5)
    long = np.array([[1.0, 5.0]])  # 4 s: windows at 1.0, 1.8, 2.6 and the last aligned to the end, 3.4
    windows = np.array([[1.0, 2.6], [1.8, 3.4], [2.6, 4.2], [3.4, 5.0]])
    expected = l2_normalize(levelled.encoder.embed_spans(wav, windows).mean(0))
    np.testing.assert_allclose(levelled(wav, long)[0], expected, atol=1e-5)
    assert not np.allclose(levelled(wav, long)[0], levelled.encoder.embed_spans(wav, long)[0], atol=1e-3)


def test_utterance_embedding_beats_the_whole_span_embedding_on_real_trials(speech, embedder):
    wavs = [load(f) for f in sorted(speech.glob("*/*.ogg"))[:40]]
    old = split_eer(wavs, lambda ws: np.stack([embed_wav(embedder.encoder, w) for w in ws]),
                    lambda ws: np.concatenate([embedder.encoder.embed_spans(w, [[0, len(w) / SAMPLE_RATE]])
                                               for w in ws]))
    new = split_eer(wavs, lambda ws: embedder.embed_waveforms(ws).embeddings)
    assert new[1.0] < old[1.0] and new[3.0] <= old[3.0], (old, new)


def test_matching_is_one_to_one_and_renaming_keeps_turns():
    profiles = l2_normalize(np.array([[1.0, 0.1, 0], [0.9, 0.3, 0], [0, 0, 1]]))
    prints = l2_normalize(np.array([[1.0, 0.2, 0], [0.8, 0.6, 0]]))
    pairs = match(profiles, prints, threshold=0.5)
    assert sorted((r, c) for r, c, _ in pairs) == [(0, 0), (1, 1)]  # greedy would give both row 0's pick
    assert match(profiles, prints, threshold=0.9999) == []
    d = Diarization("x", [Turn(0, 1, "spk00"), Turn(1, 2, "spk01")], 2.0)
    assert [t.speaker for t in rename(d, {"spk01": "ann"}).turns] == ["spk00", "ann"]


def test_enroll_list_identify_remove_round_trip(split_audio, embedder, tmp_path, capsys):
    enrol, rest = split_audio
    db = tmp_path / "db"
    for spk in [*ENROLLED, OTHER]:
        code, out, err = run_cli(capsys, "speaker", "enroll", f"s{spk}", enrol / f"{spk}.flac", "--db", db)
        assert code == 0, err
        assert f"enrolled s{spk}" in out
    data = json.loads((db / "s103.json").read_text())
    assert data["encoder"] == "resemblyzer" and data["dim"] == 256 and len(data["embedding"]) == 256
    assert 2.0 < data["seconds"] < 7.0
    code, out, err = run_cli(capsys, "speaker", "list", "--db", db)
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == ["s103", "s1034", "s1040"]
    tests = [rest / spk / "rest.flac" for spk in [*ENROLLED, OTHER, "1081"]]
    code, out, err = run_cli(capsys, "speaker", "identify", *tests, "--db", db)
    assert code == 0, err
    best = [line.split("\t")[2].split()[0] for line in out.splitlines()]
    assert best[:3] == ["s103", "s1034", "s1040"], out
    assert out.splitlines()[0].split("\t")[1] == "s103", out  # 0.91 here: named
    code, out, err = run_cli(capsys, "speaker", "remove", "s1040", "--db", db)
    assert code == 0 and not (db / "s1040.json").exists()
    result = run_cli(capsys, "speaker", "identify", tests[2], "--db", db, "--threshold", "0.9")[1]
    assert result.split("\t")[1] == "unknown"


@pytest.mark.parametrize("model", ["default", "campplus"])
def test_diarize_with_speakers_names_enrolled_and_leaves_the_other(split_audio, tmp_path, capsys, model):
    """GE2E voiceprints (enrolment's default) are matched by GE2E profiles of the CAM++ clusters;
    CAM++ voiceprints by CAM++ ones, each at its own calibrated threshold."""
    enrol, rest = split_audio
    db = tmp_path / "db"
    for spk in ENROLLED:
        args = ("speaker", "enroll", f"s{spk}", enrol / f"{spk}.flac", "--db", db, "--model", model)
        assert run_cli(capsys, *args)[0] == 0
    speech3 = tmp_path / "speech3"
    for spk in [*ENROLLED, OTHER]:
        (speech3 / spk).mkdir(parents=True)
        (speech3 / spk / "rest.flac").symlink_to(rest / spk / "rest.flac")
    config = SimulationConfig(min_speakers=3, max_speakers=3, duration=(30, 36), overlap_prob=0.0,
                              whole_turn_prob=1.0)
    rec = next(simulate(speech3, 1, seed=3, config=config))
    wav_path = tmp_path / "conv.flac"
    sf.write(wav_path, rec.wav, SAMPLE_RATE)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "diarize", wav_path, "--speakers", db, "--out", out, "--json",
                           "--num-speakers", "3")
    assert code == 0, err
    hyp = json.loads((out / "conv.json").read_text())
    assert {"s103", "s1034"} <= set(hyp["speakers"]), hyp["speakers"]
    assert len(hyp["speakers"]) == 3 and any(s.startswith("spk") for s in hyp["speakers"])
    assert "s103" in (out / "conv.rttm").read_text()
    # each label sits on the speaker whose reference speech it overlaps most
    def overlap(label: str, spk: str) -> float:
        return sum(max(0.0, min(r.end, h["end"]) - max(r.start, h["start"]))
                   for r in rec.reference.turns if r.speaker == spk
                   for h in hyp["turns"] if h["speaker"] == label)

    truth = {label: max([*ENROLLED, OTHER], key=lambda spk: overlap(label, spk)) for label in hyp["speakers"]}
    assert sorted(truth.items()) == sorted({"s103": "103", "s1034": "1034"}.items()
                                           | {(k, OTHER) for k in truth if k.startswith("spk")}), truth


def test_bad_inputs_give_one_line(split_audio, speech, tmp_path, capsys):
    enrol, _ = split_audio
    db = tmp_path / "db"
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(3 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    code, _, err = run_cli(capsys, "speaker", "enroll", "ann", silence, "--db", db)
    assert code == 1 and "no speech detected" in err and str(silence) in err and "Traceback" not in err
    short = tmp_path / "short.wav"
    wav = utterance(speech, "103")
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)  # 0.7 s of speech (about 0.95 s detected) in 1.7 s
    sf.write(short, np.concatenate([gap, wav[5 * SAMPLE_RATE : int(5.7 * SAMPLE_RATE)], gap]), SAMPLE_RATE)
    code, _, err = run_cli(capsys, "speaker", "enroll", "ann", short, "--db", db)
    assert code == 1 and "s of speech" in err and "at least 1 s" in err, err
    code, _, err = run_cli(capsys, "speaker", "enroll", "ann smith", enrol / "103.flac", "--db", db)
    assert code == 1 and "no spaces" in err
    assert not db.exists() or not list(db.glob("*.json"))  # nothing written by failed enrolments
    assert run_cli(capsys, "speaker", "enroll", "ann", enrol / "103.flac", "--db", db)[0] == 0
    code, _, err = run_cli(capsys, "speaker", "enroll", "ann", enrol / "1034.flac", "--db", db)
    assert code == 1 and "already enrolled" in err and "--force" in err
    before = (db / "ann.json").read_text()
    assert run_cli(capsys, "speaker", "enroll", "ann", enrol / "1034.flac", "--db", db, "--force")[0] == 0
    assert (db / "ann.json").read_text() != before
    code, _, err = run_cli(capsys, "speaker", "remove", "bob", "--db", db)
    assert code == 1 and "no speaker 'bob'" in err

    other = tmp_path / "other"
    VoiceprintDB(other).add(Voiceprint("zed", "resnetse34l", 512, 3.0, l2_normalize(np.ones(512))))
    for args in (["speaker", "enroll", "ann", enrol / "103.flac", "--db", other],
                 ["speaker", "identify", enrol / "103.flac", "--db", other],
                 ["diarize", enrol / "103.flac", "--speakers", other, "--out", tmp_path / "o1"]):
        code, _, err = run_cli(capsys, *args)
        assert code == 1 and "encoder 'resnetse34l' (512-d)" in err and "Traceback" not in err, (args, err)

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "bob.json").write_text("{not json")
    for args in (["speaker", "list", "--db", corrupt],
                 ["diarize", enrol / "103.flac", "--speakers", corrupt, "--out", tmp_path / "o2"]):
        code, _, err = run_cli(capsys, *args)
        assert code == 1 and f"{corrupt / 'bob.json'}: not a valid voiceprint file" in err, err
        assert len(err.strip().splitlines()) == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    one = enrol / "103.flac"
    code, _, err = run_cli(capsys, "diarize", one, "--speakers", empty, "--out", tmp_path / "o3")
    assert code == 0 and "no speaker enrolled" in err
    assert (tmp_path / "o3" / "103.rttm").read_text().count("spk00") >= 1
    code, _, err = run_cli(capsys, "diarize", one, "--speakers", tmp_path / "nope", "--out", "-")
    assert code == 1 and "voiceprint database folder not found" in err
    assert "no speaker enrolled" in run_cli(capsys, "speaker", "identify", short, "--db", empty)[2]


def test_naming_skips_empty_inputs_and_scores_every_pair(tmp_path):
    labels, profiles = window_profiles(np.eye(3)[[0, 0, 1]], np.array([0, 0, 1]))
    assert labels == ["spk00", "spk01"]
    assert name_profiles(labels, profiles, VoiceprintDB(tmp_path / "none"), 0.5).names == {}
    db = VoiceprintDB(tmp_path / "db")
    db.add(Voiceprint("ann", "x", 3, 2.0, np.eye(3)[1]))
    naming = name_profiles(labels, profiles, db, 0.5)
    assert naming.names == {"spk01": "ann"}
    assert naming.scores == {"spk00": {"ann": 0.0}, "spk01": {"ann": 1.0}}
