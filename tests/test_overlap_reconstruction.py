"""Overlap-aware reconstruction, local-speaker linking and detection scores on synthetic arrays
with known answers (no model, no audio)."""

from __future__ import annotations

import numpy as np
import pytest

from mung.diarization.clustering import ClusteringConfig
from mung.diarization.detection import detection, speakers_per_frame
from mung.diarization.overlap import (
    LocalSpeakers,
    SegmentationConfig,
    assign_local_speakers,
    chunk_starts,
    local_turns,
    propagate,
)
from mung.diarization.reconstruct import binarize, clustered_scores, frames_to_turns, speaker_count
from mung.diarization.rttm import Diarization, Turn
from mung.errors import MungError

FS = 0.04  # frame step (s)
F, STEP = 125, 25  # 5-s chunks every second


def _layout(duration: float, turns: dict[int, list[tuple[float, float]]]) -> np.ndarray:
    """Global 0/1 activity [frames, speakers] on the FS grid."""
    n = int(round(duration / FS))
    act = np.zeros((n, len(turns)), np.float32)
    for k, spans in turns.items():
        for s, e in spans:
            act[int(round(s / FS)) : int(round(e / FS)), k] = 1
    return act


def _chunks(glob: np.ndarray, swap_odd: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Chunk activities [C, F, 3] cut from ``glob`` (local order reversed in odd chunks) and the
    true global speaker of each local speaker [C, 3] (-1: unused slot)."""
    n, k = glob.shape
    c = (n - F) // STEP + 1
    acts = np.zeros((c, F, 3), np.float32)
    truth = np.full((c, 3), -1)
    for i in range(c):
        order = list(range(k))[::-1] if swap_odd and i % 2 else list(range(k))
        for j, g in enumerate(order):
            acts[i, :, j] = glob[i * STEP : i * STEP + F, g]
            truth[i, j] = g
    return acts, truth


def test_two_speaker_overlap_gives_overlapping_turns_and_exclusive_does_not():
    glob = _layout(12.0, {0: [(0.0, 7.0)], 1: [(5.0, 12.0)]})
    acts, truth = _chunks(glob)
    count = speaker_count(acts, STEP)
    assert count.max() == pytest.approx(2) and count[:100].max() == pytest.approx(1)
    scores = clustered_scores(acts, truth, 2, STEP)
    turns = frames_to_turns(binarize(scores, count), FS, 12.0)
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.0, 7.0, "spk00"), (5.0, 12.0, "spk01")]
    exclusive = frames_to_turns(binarize(scores, count, exclusive=True), FS, 12.0)
    ends = sorted((t.start, t.end) for t in exclusive)
    assert all(a[1] <= b[0] for a, b in zip(ends, ends[1:], strict=False))
    assert sum(t.duration for t in exclusive) == pytest.approx(12.0)
    capped = frames_to_turns(binarize(scores, count, max_per_frame=1), FS, 12.0)
    assert sum(t.duration for t in capped) == pytest.approx(12.0)


def test_count_rounding_and_zero_scores():
    scores = np.array([[0.9, 0.2, 0.0], [0.9, 0.0, 0.0], [0.1, 0.6, 0.3]])
    count = np.array([1.4, 2.0, 1.6])
    assert binarize(scores, count).tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]
    assert binarize(scores, count, rounding=0.7).tolist() == [[1, 1, 0], [1, 0, 0], [0, 1, 1]]
    assert binarize(scores, count, rounding=0.0).sum() == 3


def test_frames_to_turns_fills_gaps_drops_short_and_clips():
    b = np.zeros((50, 2), bool)
    b[0:10, 1], b[12:20, 1], b[30:31, 0], b[45:50, 0] = True, True, True, True
    turns = frames_to_turns(b, 0.1, 4.8, max_gap=0.25, min_duration=0.2)
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.0, 2.0, "spk00"), (4.5, 4.8, "spk01")]


def test_chunk_starts_cover_the_recording():
    assert chunk_starts(1000, 80000, 16000).tolist() == [0]
    starts = chunk_starts(16000 * 12 + 5, 80000, 16000)
    assert starts[-1] + 80000 >= 16000 * 12 + 5 and starts[-2] + 80000 < 16000 * 12 + 5


def _local(acts: np.ndarray, truth: np.ndarray, every: int, seed: int = 0) -> LocalSpeakers:
    """Local speakers with noisy embeddings of two orthogonal voices on every ``every``-th chunk."""
    rng = np.random.default_rng(seed)
    voices = np.eye(8)[:2]
    rows = [(i, j) for i in range(0, len(acts), every) for j in range(3)
            if truth[i, j] >= 0 and acts[i, :, j].sum() * FS >= 0.2]
    emb = np.stack([voices[truth[i, j]] + 0.1 * rng.standard_normal(8) for i, j in rows])
    speech = np.array([acts[i, :, j].sum() * FS for i, j in rows])
    return LocalSpeakers("syn", len(acts) - 1 + 5.0, FS, STEP, every, acts, emb, np.array(rows), speech)


def test_linking_and_clustering_recover_both_speakers_with_overlap():
    glob = _layout(30.0, {0: [(0.0, 9.0), (14.0, 22.0)], 1: [(7.0, 15.0), (21.0, 30.0)]})
    acts, truth = _chunks(glob)
    local = _local(acts, truth, every=5)
    labels, k = assign_local_speakers(local, ClusteringConfig(method="ahc"), 1.0, 0.5)
    assert k == 2
    filled = propagate(acts, labels, STEP, 5, 0.5, 5)
    active = acts.max(1) > 0.5
    # one consistent global name per true speaker, for every active local speaker
    pairs = {(int(t), int(f)) for t, f in zip(truth[active], filled[active], strict=True)}
    assert len(pairs) == 2 and len({f for _, f in pairs}) == 2
    turns = local_turns(local, SegmentationConfig(), ClusteringConfig(), 0.5)
    assert len({t.speaker for t in turns}) == 2
    overlap = [(a, b) for a in turns for b in turns
               if a.speaker < b.speaker and a.start < b.end and b.start < a.end]
    assert overlap, "the overlaps at 7-9 s and 21-22 s must give overlapping turns"


def test_cannot_link_keeps_two_local_speakers_of_one_chunk_apart():
    acts = np.zeros((3, F, 3), np.float32)
    acts[:, :60, 0], acts[:, 60:, 1] = 1, 1
    rows = np.array([(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)])
    a, b = np.eye(4)[0], np.eye(4)[1]
    emb = np.stack([a, b, a, b, a, 0.8 * a + 0.6 * b])  # chunk 2: both lean to voice a
    local = LocalSpeakers("c", 7.0, FS, STEP, 1, acts, emb, rows, np.full(6, 2.0))
    labels, k = assign_local_speakers(local, ClusteringConfig(method="ahc", num_speakers=2), 1.0, 0.0)
    assert k == 2 and labels[2, 0] != labels[2, 1]


def test_segmentation_config_validation():
    with pytest.raises(MungError, match="segmentation.step"):
        SegmentationConfig(step=0).validate()
    with pytest.raises(MungError, match="segmentation.clustering"):
        SegmentationConfig(clustering="uisrnn").validate()
    assert not SegmentationConfig(model="none").enabled


def test_detection_known_answer():
    ref = Diarization("u", [Turn(0.0, 4.0, "a"), Turn(3.0, 6.0, "b"), Turn(5.0, 5.5, "a")], 6.0)
    hyp = Diarization("u", [Turn(1.0, 3.5, "x"), Turn(3.0, 4.5, "y")], 6.0)
    assert speakers_per_frame(ref, 0.0, 6.0).sum() == 400 + 300 + 50
    speech = detection({"u": ref}, {"u": hyp}, {"u": [(0.0, 6.0)]}, min_speakers=1)
    assert (speech.true_positive, speech.false_positive, speech.false_negative) == (350, 0, 250)
    overlap = detection({"u": ref}, {"u": hyp}, {"u": [(0.0, 6.0)]}, min_speakers=2)
    assert overlap.precision == pytest.approx(0.5 / 0.5) and overlap.recall == pytest.approx(0.5 / 1.5)


def test_second_speaker_is_the_nearest_other_speaker_in_time():
    from mung.diarization.overlapped import add_second_speaker

    turns = [Turn(0.0, 4.0, "A"), Turn(4.0, 6.0, "B"), Turn(7.0, 10.0, "C")]
    # 3.5-4.5 s: A then B hold the floor → B is added over A's part, A over B's part;
    # 9-9.5 s inside C: B (gap 1 s) is nearer than A; 6.2-6.8 s is silence: nothing added
    # (each added piece continues its speaker's own turn, so the two are one turn)
    out = add_second_speaker(turns, [(3.5, 4.5), (9.0, 9.5), (6.2, 6.8)], 10.0)
    assert [(t.start, t.end, t.speaker) for t in out] == [
        (0.0, 4.5, "A"), (3.5, 6.0, "B"), (7.0, 10.0, "C"), (9.0, 9.5, "B")]
    assert add_second_speaker([Turn(0, 5, "A")], [(1.0, 2.0)], 5.0) == [Turn(0, 5, "A")]
    assert add_second_speaker(turns, [], 10.0) == sorted(turns, key=lambda t: t.start)


def test_join_touching_joins_one_speakers_touching_turns_only():
    from mung.diarization.overlapped import join_touching

    turns = [Turn(2.0, 3.0, "A"), Turn(0.0, 1.0, "A"), Turn(1.0, 1.5, "A"), Turn(1.2, 2.5, "B"),
             Turn(1.4, 1.45, "A"), Turn(3.0, 4.0, "B"), Turn(3.005, 3.5, "A"), Turn(4.01, 5.0, "B")]
    # gaps under one 10-ms grid step close (2.5 → 3.0 is a pause; 3.0 → 3.005 is rounding)
    assert join_touching(turns) == [Turn(0.0, 1.5, "A"), Turn(1.2, 2.5, "B"), Turn(2.0, 3.5, "A"),
                                    Turn(3.0, 4.0, "B"), Turn(4.01, 5.0, "B")]
    assert join_touching([]) == []


def test_overlapped_regions_threshold_and_min_duration():
    from mung.diarization.overlapped import overlapped_regions

    p = np.array([0.1, 0.7, 0.8, 0.2, 0.9, 0.1])  # frames 0.1 s apart, centred on i * 0.1
    regions = overlapped_regions(p, 0.1, 0.5)
    assert np.allclose(regions, [(0.05, 0.25), (0.35, 0.45)])
    assert np.allclose(overlapped_regions(p, 0.1, 0.5, min_duration=0.15), [(0.05, 0.25)])
    assert overlapped_regions(p, 0.1, 0.95) == []


def test_overlap_threshold_weighs_a_false_alarm_above_a_hit():
    from mung.diarization.train_segmentation import overlap_threshold

    truth = np.array([True] * 4 + [False] * 6)
    prob = np.array([0.9, 0.8, 0.42, 0.42, 0.42, 0.1, 0.1, 0.1, 0.1, 0.1])
    # above 0.1 … 0.4: 4 hits (3.0) and 1 false alarm → 2.0 (the highest wins); above 0.45: 1.5
    assert overlap_threshold(prob, truth) == 0.4
    assert overlap_threshold(prob, np.zeros(10, bool)) >= 0.9  # no overlap: as high as the grid goes
