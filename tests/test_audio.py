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


@pytest.mark.parametrize("offset", [0.2234, 20.0317])
def test_partial_read_is_the_whole_files_samples(sim_dir, tmp_path, offset):
    """A span is the whole file's samples: Opus (FFmpeg, 48 kHz → 16 kHz; 20 s in it seeks with
    pre-roll) and a 44.1 kHz WAV, at offsets off both sample grids."""
    opus = sim_dir / "sim-dev-002.ogg"
    wav44 = tmp_path / "x.wav"
    sf.write(wav44, audio.load(opus, sample_rate=44100), 44100)
    for path in (opus, wav44):
        whole = audio.load(path)
        part = audio.load(path, offset=offset, duration=0.5)
        first = round(offset * 16000)
        ref = whole[first : first + 8000]
        assert len(part) == len(ref) == 8000
        assert 10 * np.log10(np.sum(ref**2) / np.sum((part - ref) ** 2)) > 60  # dB


def test_opus_matches_libsndfile(ami_dir):
    """The FFmpeg decoder's Opus is libsndfile's to within -30 dB, same length and alignment."""
    path = ami_dir / "EN2001a_0000-0030.ogg"
    ours, (theirs, rate) = audio.load(path), sf.read(path, dtype="float32")
    assert rate == 16000 and len(ours) == len(theirs)
    assert 10 * np.log10(np.sum(theirs**2) / np.sum((ours - theirs) ** 2)) > 30


def test_m4a_aac_decodes(tmp_path, ami_dir):
    """A container libsndfile cannot open (AAC in MP4, as phones and Zoom record) goes to FFmpeg."""
    import av

    src = audio.load(ami_dir / "EN2001a_0000-0030.ogg", sample_rate=44100, duration=5.0)
    path = tmp_path / "memo.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.stack([src, src]), format="fltp", layout="stereo")
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    assert audio.info(path).sample_rate == 44100
    back, ref = audio.load(path), audio.load(ami_dir / "EN2001a_0000-0030.ogg", duration=5.0)
    assert abs(len(back) - len(ref)) < 16000 * 0.1  # AAC adds encoder priming
    lag = int(np.argmax(np.correlate(back[:32000], ref[:16000], "valid")))
    assert np.corrcoef(back[lag : lag + 16000], ref[:16000])[0, 1] > 0.9


def test_video_without_sound_is_one_line(tmp_path):
    import av

    path = tmp_path / "silent-film.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height = 32, 32
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(MungError, match=r"silent-film.mp4: not a readable audio file \(no audio stream\)"):
        audio.load(path)


def test_cut_off_opus_decodes_what_is_there(tmp_path, ami_dir):
    """A download cut off half way decodes to its first half; a file cut inside its header is
    one line (both go through FFmpeg)."""
    data = (ami_dir / "EN2001a_0000-0030.ogg").read_bytes()
    half, header = tmp_path / "half.ogg", tmp_path / "header.ogg"
    half.write_bytes(data[: len(data) // 2])
    header.write_bytes(data[:200])
    assert 10 < len(audio.load(half)) / 16000 < 20
    with pytest.raises(MungError, match="header.ogg: not a readable audio file"):
        audio.load(header)


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


def test_high_band_level_tells_telephone_from_wide_band(ami_dir, calls_dir):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(16000 * 3).astype(np.float32)
    # white noise: the band above 4 kHz holds (8000 - 4000) / (8000 - 300) of the power above 300 Hz
    assert audio.high_band_db(noise) == pytest.approx(10 * np.log10(4000 / 7700), abs=0.3)
    tone = np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000).astype(np.float32)
    assert audio.high_band_db(tone) < -60
    assert audio.high_band_db(np.zeros(16000, np.float32)) == -np.inf
    assert audio.high_band_db(noise, np.zeros((0, 2))) == -np.inf  # no speech regions
    assert audio.high_band_db(audio.load(calls_dir / "spokenwoz_SNG0072.ogg")) < -45  # a real call
    assert audio.high_band_db(audio.load(ami_dir / "EN2009b_0000-0030.ogg")) > -35  # a real meeting
