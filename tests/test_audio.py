"""The audio front-end on real files and on every bad input it must explain."""

import numpy as np
import pytest
import soundfile as sf

from mung import audio
from mung.errors import MungError


def test_real_ogg_decodes_to_16k_mono(ami_dir):
    wav = audio.load(ami_dir / "EN2001a_0000-0030.ogg")
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert len(wav) == 30 * 16000
    assert 0.001 < np.sqrt(np.mean(wav**2)) < 0.5


@pytest.mark.parametrize(
    "rate,channels,subtype,ext",
    [(8000, 1, "PCM_16", "wav"), (44100, 2, "PCM_16", "flac"), (22050, 2, None, "mp3")],
)
def test_any_rate_and_channels_convert(tmp_path, ami_dir, rate, channels, subtype, ext):
    src = audio.load(ami_dir / "EN2001a_0000-0030.ogg", duration=5.0)
    resampled = audio.load(ami_dir / "EN2001a_0000-0030.ogg", sample_rate=rate, duration=5.0)
    data = np.stack([resampled] * channels, axis=1) if channels > 1 else resampled
    path = tmp_path / f"x.{ext}"
    sf.write(path, data, rate, subtype=subtype)
    back = audio.load(path)
    assert abs(len(back) - len(src)) < 16000 * 0.1  # mp3 adds encoder padding
    n = min(len(back), len(src))
    if ext != "mp3":
        assert np.corrcoef(back[:n], src[:n])[0, 1] > 0.9


def test_stream_equals_load(sim_dir):
    path = sim_dir / "sim-dev-002.ogg"
    blocks = list(audio.stream(path, block_seconds=7.0))
    assert len(blocks) > 5
    joined = np.concatenate(blocks)
    part = audio.load(path, offset=0.0, duration=1000.0)  # single read, no blocks
    assert len(joined) == len(part)
    np.testing.assert_allclose(joined, part, atol=1e-6)


def test_missing_file(tmp_path):
    with pytest.raises(MungError, match="nope.wav: file not found"):
        audio.load(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00junk" * 10)
    with pytest.raises(MungError, match="bad.wav: not a readable audio file"):
        audio.load(bad)


def test_text_file_is_not_audio(tmp_path):
    bad = tmp_path / "notes.mp3"
    bad.write_text("hello")
    with pytest.raises(MungError, match="notes.mp3"):
        audio.load(bad)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(MungError, match="empty.wav: audio file is empty"):
        audio.load(empty)
