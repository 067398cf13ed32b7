"""Each pipeline stage on its own: detector on real speech, windows, clustering, resegmentation."""

import numpy as np
import pytest

from mung import audio
from mung.diarization.clustering import (
    ClusteringConfig,
    closest_clusters,
    cluster,
    count_margin,
    merge_close,
)
from mung.diarization.resegment import ResegmentConfig, resegment, window_turns
from mung.diarization.rttm import read_rttm
from mung.diarization.vad import VADConfig, detect_speech, join_close
from mung.diarization.windows import WindowConfig, sliding_windows
from mung.errors import MungError


def _frames(spans, n):
    mask = np.zeros(n, bool)
    for s, e in spans:
        mask[int(s * 100) : int(e * 100)] = True
    return mask


@pytest.mark.parametrize("method", ["webrtc", "silero"])
@pytest.mark.parametrize("folder,name", [("ami", "EN2001e_0000-0030"), ("calls", "spokenwoz_SNG1263")])
def test_detector_finds_speech_where_reference_says(request, method, folder, name):
    root = request.getfixturevalue(f"{folder}_dir")
    wav = audio.load(root / f"{name}.ogg")
    ref = read_rttm(next(root.glob("*.rttm")))[name]
    regions = detect_speech(wav, VADConfig(method=method, max_gap=0.5))
    n = len(wav) // 160
    r, h = _frames([(t.start, t.end) for t in ref.turns], n), _frames(regions, n)
    recall, precision = (r & h).sum() / r.sum(), (r & h).sum() / h.sum()
    assert recall > 0.8 and precision > 0.8, (recall, precision)


def test_silence_has_no_speech():
    assert len(detect_speech(np.zeros(16000 * 5, np.float32))) == 0


@pytest.mark.parametrize("bad, message", [
    ({"frame_ms": 25}, r"The 'vad.frame_ms' parameter must be an int among \{10, 20, 30\}. Got 25 instead."),
    ({"threshold": 1.5}, r"The 'vad.threshold' parameter must be a float in \(0, 1\). Got 1.5 instead."),
    ({"pad": -0.1}, r"The 'vad.pad' parameter must be a float in \[0, inf\). Got -0.1 instead."),
    ({"max_gap": "x"}, r"The 'vad.max_gap' parameter must be a float in \[0, inf\). Got 'x' instead."),
    ({"method": "energy"}, r"The 'vad.method' parameter must be a str among \{'silero', 'webrtc'\}"),
])
def test_vad_config_errors_are_clear(bad, message):
    with pytest.raises(MungError, match=message):  # at construction ...
        VADConfig(**bad)
    cfg = VADConfig()
    for k, v in bad.items():
        setattr(cfg, k, v)
    with pytest.raises(MungError, match=message):  # ... and when a stage is handed a changed one
        detect_speech(np.zeros(16000, np.float32), cfg)


def test_join_close():
    r = np.array([[0.0, 1.0], [1.3, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(join_close(r, 0.5), [[0.0, 2.0], [3.0, 4.0]])


def test_windows_cover_regions_and_short_regions_get_one():
    w = sliding_windows(np.array([[0.0, 3.2], [5.0, 5.6]]), WindowConfig(1.5, 0.75))
    assert w[0, 0] == 0.0 and w[-2, 1] == pytest.approx(3.2) and tuple(w[-1]) == (5.0, 5.6)
    assert np.all(w[:-1, 1] - w[:-1, 0] == pytest.approx(1.5))
    with pytest.raises(MungError, match="'windows.window' parameter must be at least 'windows.shift'"):
        sliding_windows(np.array([[0.0, 3.0]]), WindowConfig(1.0, 2.0))


def _blobs(sizes, dim=32, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    x = np.concatenate([c + noise * rng.normal(size=(n, dim)) * np.linalg.norm(c) / np.sqrt(dim)
                        for c, n in zip(centres, sizes, strict=True)])
    return x, np.repeat(np.arange(len(sizes)), sizes)


@pytest.mark.parametrize("linkage", ["average", "complete", "single"])
def test_ahc_recovers_well_separated_speakers(linkage):
    x, truth = _blobs([30, 20, 25])
    labels = cluster(x, ClusteringConfig(method="ahc", linkage=linkage, threshold=0.5))
    assert len(set(labels)) == 3
    for k in range(3):  # each true speaker maps to one cluster
        assert len(set(labels[truth == k])) == 1


def test_speaker_count_constraints_and_spectral():
    x, _ = _blobs([30, 20, 25])
    assert len(set(cluster(x, ClusteringConfig(num_speakers=2)))) == 2
    assert len(set(cluster(x, ClusteringConfig(threshold=1.9, min_speakers=3)))) == 3
    assert len(set(cluster(x, ClusteringConfig(threshold=0.01, max_speakers=4)))) <= 4
    assert len(set(cluster(x, ClusteringConfig(method="spectral", max_speakers=6)))) == 3
    labels = cluster(x, ClusteringConfig())  # default ahc+spectral
    assert len(set(labels)) == 3 and len(set(labels[:30])) == 1
    one, _ = _blobs([40])
    assert len(set(cluster(one, ClusteringConfig()))) == 1  # AHC says "one speaker": spectral not asked


def test_count_margin_known_answer():
    """Two points per speaker, the speakers 90 degrees apart: every tree's last merge is at cosine
    distance 1 (both points of a speaker are identical), so the margin is 1 - threshold."""
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert count_margin(x, ClusteringConfig(threshold=0.7)) == pytest.approx(0.3)
    assert count_margin(x, ClusteringConfig(method="ahc", threshold=1.2)) == pytest.approx(-0.2)
    for config in (ClusteringConfig(num_speakers=2), ClusteringConfig(min_speakers=2),
                   ClusteringConfig(max_speakers=1), ClusteringConfig(method="spectral")):
        assert count_margin(x, config) is None  # AHC does not decide the count there
    assert count_margin(x[:2], ClusteringConfig()) is None


def test_closest_clusters_known_answer():
    """Cluster means along 0, 60 and 180 degrees: the closest pair is 0/60 at 1 - cos 60 = 0.5."""
    c60 = np.array([0.5, np.sqrt(3) / 2])
    x = np.array([[1.0, 0.0], [1.0, 0.0], c60, c60, [-1.0, 0.0]])
    distance, a, b = closest_clusters(x, np.array([2, 2, 5, 5, 7]))
    assert distance == pytest.approx(0.5) and {a, b} == {2, 5}
    assert closest_clusters(x, np.zeros(5, int)) is None


def test_merge_close_known_answer():
    """Cluster means along 0, 30 and 180 degrees: 0/30 are 1 - cos 30 = 0.134 apart."""
    c30 = np.array([np.sqrt(3) / 2, 0.5])
    x = np.array([[1.0, 0.0], [1.0, 0.0], c30, c30, [-1.0, 0.0]])
    labels = np.array([0, 0, 1, 1, 2])
    assert merge_close(x, labels, 0.2).tolist() == [0, 0, 0, 0, 2]
    assert merge_close(x, labels, 0.1).tolist() == labels.tolist()
    assert merge_close(x, labels, 2.5).tolist() == [0] * 5  # everything, down to one
    assert len(set(merge_close(x, labels, 2.5, min_count=2))) == 2  # never below min_count
    phone = np.array([False, False, True, True, False])  # cluster 1 is telephone-band speech
    assert merge_close(x, labels, 0.2, mergeable=~phone).tolist() == labels.tolist()
    assert merge_close(x, labels, 2.5, mergeable=~phone).tolist() == [0, 0, 1, 1, 0]
    blobs = np.concatenate([x[:2], x[2:4]])
    assert len(set(cluster(blobs, ClusteringConfig(method="ahc", threshold=0.05)))) == 2
    assert len(set(cluster(blobs, ClusteringConfig(method="ahc", threshold=0.05, merge_threshold=0.2)))) == 1
    config = ClusteringConfig(method="ahc", threshold=0.05, merge_threshold=0.2, num_speakers=2)
    assert len(set(cluster(blobs, config))) == 2  # a given count is kept


def test_tiny_clusters_are_folded_not_invented():
    x, truth = _blobs([40, 40, 2])
    labels = cluster(x, ClusteringConfig(method="ahc", threshold=0.5, min_cluster_fraction=0.05))
    assert len(set(labels)) == 2


def test_clusters_under_min_seconds_are_folded_whatever_counted_them():
    """Three well-separated speakers, the third with 0.8 s of speech (weights in seconds):
    kept at ``min_cluster_seconds`` 0.5, folded at 1.0 — by the default method too, whose
    spectral eigen-gap count is otherwise not folded."""
    x, _ = _blobs([20, 20, 2])
    w = np.full(len(x), 0.4)
    for method in ("ahc", "ahc+spectral"):
        kept = cluster(x, ClusteringConfig(method=method, threshold=0.5, min_cluster_fraction=0.0,
                                           min_cluster_seconds=0.5), weights=w)
        folded = cluster(x, ClusteringConfig(method=method, threshold=0.5, min_cluster_fraction=0.0,
                                             min_cluster_seconds=1.0), weights=w)
        assert (len(set(kept)), len(set(folded))) == (3, 2), method
        fixed = cluster(x, ClusteringConfig(method=method, num_speakers=3, min_cluster_seconds=1.0),
                        weights=w)
        assert len(set(fixed)) == 3  # a known count is never folded


def test_resegment_cuts_at_middle_of_overlap():
    windows = np.array([[0.0, 1.5], [0.75, 2.25], [1.5, 3.0], [2.25, 3.75]])
    turns = resegment(windows, np.array([0, 0, 1, 1]), ResegmentConfig(max_gap=0.0))
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.0, 1.875, "spk00"), (1.875, 3.75, "spk01")]


def test_min_duration_smoothing_absorbs_short_turn():
    windows = np.array([[0.0, 2.0], [2.0, 2.3], [2.3, 5.0]])
    assert len(window_turns(windows, np.array([0, 1, 0]))) == 3
    turns = resegment(windows, np.array([0, 1, 0]), ResegmentConfig(min_duration=0.5))
    assert [(t.start, t.end) for t in turns] == [(0.0, 5.0)]
