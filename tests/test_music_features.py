"""Music front-end: offline featurize vs on-the-fly features, mel validation, crop rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
from music_fixtures import MUSIC, rows

from mung.arrays import fit_length, tile
from mung.errors import MungError
from mung.music.batch_tasks import featurize
from mung.music.data import MelCache, eval_crops, random_crop
from mung.music.features import MelConfig, load_mel, load_npy, normalise


def test_featurize_equals_on_the_fly(tmp_path):
    clips = [MUSIC / r["file"] for r in rows(1)[:2]]
    report = featurize(clips, tmp_path, progress=False)
    assert report.done == [c.stem for c in clips]
    written = [tmp_path / f"{c.stem}.npy" for c in clips]
    cache = MelCache(MelConfig(), tmp_path / "cache")
    for clip, npy in zip(clips, written, strict=True):
        offline = load_npy(npy)
        assert offline.shape[:2] == (1, 128) and offline.dtype == np.float32
        assert 900 <= offline.shape[2] <= 1010  # 30-s clips, 32 ms hop
        on_the_fly = cache.get(clip)  # the training path (normalised, cached)
        np.testing.assert_allclose(on_the_fly, normalise(offline), atol=2e-3)  # float16 memory cache
        np.testing.assert_array_equal(load_mel(clip), offline)
    assert featurize(clips[:1], tmp_path, progress=False).skipped == [clips[0].stem]  # a re-run resumes


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((2, 128, 10), np.float32), "shape"),
        (np.zeros((1, 64, 10), np.float32), "shape"),
        (np.zeros((1, 128, 0), np.float32), "zero-length"),
        (np.full((128, 10), np.nan, np.float32), "NaN"),
        (np.full((128, 10), np.inf, np.float32), "infinite"),
        (np.array([["a"] * 10] * 128), "numeric"),
        (-np.ones((128, 10), np.float32), "negative"),
    ],
)
def test_bad_npy_is_a_clear_error(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(MungError, match=message) as info:
        load_npy(path)
    assert "bad.npy" in str(info.value)


def test_two_dim_npy_accepted(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((128, 5), np.float32))
    assert load_npy(tmp_path / "a.npy").shape == (1, 128, 5)


def test_crops_tile_and_cover():
    mel = np.arange(10, dtype=np.float32).reshape(1, 1, 10)
    assert tile(mel, 25).shape[-1] == 30
    assert fit_length(mel, 25).shape[-1] == 25 and fit_length(mel, 5) is mel
    np.testing.assert_array_equal(fit_length(np.arange(3.0), 7), [0, 1, 2, 0, 1, 2, 0])
    crop = random_crop(mel, 25, np.random.default_rng(0))
    assert crop.shape[-1] == 25
    crops = eval_crops(np.arange(100, dtype=np.float32).reshape(1, 1, 100), 30)
    assert crops.shape == (4, 1, 1, 30)
    covered = set(np.concatenate([c.ravel() for c in crops]).astype(int))
    assert covered == set(range(100))
    assert eval_crops(mel, 25).shape == (1, 1, 1, 25)


def test_competition_layout(tmp_path):
    from mung.music.data import read_competition_test, read_dataset

    mel_dir = tmp_path / "train" / "train_data" / "mel_spectrogram"
    mel_dir.mkdir(parents=True)
    chosen = rows(2)
    for i, r in enumerate(chosen):
        np.save(mel_dir / f"{i}.npy", load_mel(MUSIC / r["file"]))
    label = {"track_index": {str(i): str(i) for i in range(len(chosen))},
             "station_name": {str(i): r["station"] for i, r in enumerate(chosen)}}
    (tmp_path / "train" / "train_label").write_text(json.dumps(label))
    ds = read_dataset(tmp_path)
    assert ds.stations == ["Q1", "Q2", "Q3", "Q4"] and len(ds.tracks) == 8
    assert {t.split for t in ds.tracks} == {"train", "val"}
    meta = tmp_path / "test" / "test_data" / "meta"
    meta.mkdir(parents=True)
    (meta / "q_test.json").write_text(json.dumps({"track_index": {"0": "7", "1": "3"}}))
    assert [p.stem for p in read_competition_test(meta / "q_test.json")] == ["7", "3"]
    (tmp_path / "train" / "train_label").write_text(json.dumps({"track_index": {"0": "99"}}))
    with pytest.raises(MungError, match="99"):
        read_dataset(tmp_path)
