"""Local speaker segmentation: a small network that maps a few seconds of audio to per-frame
activities of up to three *local* speakers, overlaps included.

The output is a 7-class *powerset* per frame — {none, A, B, C, A+B, A+C, B+C} — so argmax gives
speaker activities and overlap with no detection threshold (Plaquet & Bredin, Interspeech 2023,
"Powerset multi-class cross entropy loss for neural speaker diarization"). Local speaker
identities are arbitrary within a chunk, so the loss and every evaluation take the best of the 3! =
6 speaker orders (permutation-invariant training; Bredin & Laurent, Interspeech 2021).

A model can instead be trained for the *speaker count* alone (``output: count``: 3 classes per
frame, no speaker, one, two or more; plain cross entropy, no speaker order to search): all that
overlapped-speech detection needs, and an easier target for a small network trained on a CPU. Such
a model serves the diarization pipeline's overlap mode, not its local-speaker mode.

Network (about 0.8 M parameters): 64-band log-mel (25 ms window, 10 ms hop) → two 1-D
convolutions with stride 2 (40 ms output frames: halves the BiLSTM's cost, the dominant one on a
CPU, against 20 ms) → 2-layer BiLSTM (128 per direction)
→ 2 linear layers → 7 logits per frame. Weights are a self-describing safetensors file; the
metadata (sample rate, chunk length, local speakers, front end, powerset) is checked on load.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mung import checkpoint
from mung.audio import SAMPLE_RATE, slaney_mel_filterbank
from mung.errors import MungError

KIND = "mung-segmentation"
WHAT = "mung segmentation model"
FORMAT_VERSION = 1
FRONT_END = "logmel64-fft512-win400-hop160"
N_SPEAKERS = 3
FRAME_SAMPLES = 640  # output frame step: 10 ms mel hop x two stride-2 convolutions
MAX_SIMULTANEOUS = 2
# Powerset classes: every set of at most two of the three local speakers.
POWERSET: tuple[tuple[int, ...], ...] = tuple(
    s for k in range(MAX_SIMULTANEOUS + 1) for s in itertools.combinations(range(N_SPEAKERS), k)
)
PERMUTATIONS: tuple[tuple[int, ...], ...] = tuple(itertools.permutations(range(N_SPEAKERS)))
OUTPUTS = {"powerset": len(POWERSET), "count": MAX_SIMULTANEOUS + 1}  # output kind -> classes per frame


def powerset_matrix() -> np.ndarray:
    """``[7, 3]`` 0/1 matrix: row c marks the speakers of powerset class c."""
    m = np.zeros((len(POWERSET), N_SPEAKERS), np.float32)
    for c, speakers in enumerate(POWERSET):
        m[c, list(speakers)] = 1
    return m


_BITS_TO_CLASS = np.full(2**N_SPEAKERS, -1, np.int64)
for _c, _s in enumerate(POWERSET):
    _BITS_TO_CLASS[sum(1 << i for i in _s)] = _c


_PAIRS = np.array([len(s) == MAX_SIMULTANEOUS for s in POWERSET])


def overlap_probability(powerset: np.ndarray) -> np.ndarray:
    """``[..., 7]`` powerset probabilities → ``[...]`` probability of two speakers at once."""
    return powerset[..., _PAIRS].sum(-1)


def multilabel_to_powerset(labels: np.ndarray) -> np.ndarray:
    """``[..., 3]`` 0/1 activities → ``[...]`` powerset class indices. Frames with all three
    speakers active (not representable) raise :class:`ValueError`."""
    bits = (np.asarray(labels) > 0.5).astype(np.int64) @ (1 << np.arange(N_SPEAKERS))
    classes = _BITS_TO_CLASS[bits]
    if (classes < 0).any():
        raise ValueError("a frame has three active local speakers; the powerset holds at most two")
    return classes


def powerset_to_multilabel(scores: np.ndarray, soft: bool = True) -> np.ndarray:
    """``[..., 7]`` powerset probabilities → ``[..., 3]`` per-speaker activities: marginal
    probabilities (``soft``) or the 0/1 speakers of the argmax class."""
    scores = np.asarray(scores, np.float32)
    if not soft:
        scores = np.eye(len(POWERSET), dtype=np.float32)[scores.argmax(-1)]
    return scores @ powerset_matrix()


def best_permutation(reference: np.ndarray, hypothesis: np.ndarray) -> tuple[int, ...]:
    """The order of ``hypothesis``'s speaker columns (``[frames, 3]``, 0/1 or probabilities) that
    agrees best with ``reference``'s (fewest frame-speaker errors)."""
    ref = np.asarray(reference, np.float32)
    hyp = np.asarray(hypothesis, np.float32)
    costs = [np.abs(ref - hyp[:, list(p)]).sum() for p in PERMUTATIONS]
    return PERMUTATIONS[int(np.argmin(costs))]


def pit_powerset_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
                      ) -> torch.Tensor:
    """Permutation-invariant powerset cross entropy. ``logits [B, T, 7]``, ``labels [B, T, 3]`` 0/1
    (at most two active per frame), ``weight [B, T]`` (optional frame weights, e.g. 0 for padding):
    per example, the cross entropy under the best of the 6 speaker orders; mean over the batch."""
    bits = torch.as_tensor(1 << np.arange(N_SPEAKERS), device=labels.device)
    table = torch.as_tensor(_BITS_TO_CLASS, device=labels.device).clamp(min=0)
    logp = torch.log_softmax(logits, -1)
    w = torch.ones(labels.shape[:2], device=labels.device) if weight is None else weight
    per_perm = []
    for perm in PERMUTATIONS:
        target = table[(labels[..., list(perm)].long() * bits).sum(-1)]
        nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        per_perm.append((nll * w).sum(1) / w.sum(1).clamp(min=1))
    return torch.stack(per_perm, 1).min(1).values.mean()


def count_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross entropy of ``logits [B, T, 3]`` against the number of active speakers (0, 1, 2+) in
    ``labels [B, T, 3]``: the speaker-count objective, the same for any order of the speakers."""
    target = labels.sum(-1).clamp(max=MAX_SIMULTANEOUS).long()
    return nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten())


def count_to_multilabel(probs: np.ndarray) -> np.ndarray:
    """``[..., 3]`` speaker-count probabilities → ``[..., 3]`` 0/1 activities with the argmax
    count as the first speakers (for speech / overlap scoring only: no identities)."""
    count = np.asarray(probs).argmax(-1)
    return (np.arange(N_SPEAKERS) < count[..., None]).astype(np.float32)


@dataclass
class FrameCounts:
    """Frame counts for speech detection (any speaker), overlap (two or more) and a local
    frame error (missed + false + confused speaker-frames under the best speaker order)."""

    speech_tp: int = 0
    speech_fp: int = 0
    speech_fn: int = 0
    overlap_tp: int = 0
    overlap_fp: int = 0
    overlap_fn: int = 0
    errors: int = 0
    reference: int = 0

    def add(self, reference: np.ndarray, hypothesis: np.ndarray) -> None:
        """Count one chunk: ``[frames, 3]`` 0/1 reference and hypothesis."""
        ref = np.asarray(reference) > 0.5
        hyp = np.asarray(hypothesis) > 0.5
        hyp = hyp[:, list(best_permutation(ref, hyp))]
        for name, r, h in (("speech", ref.sum(1) >= 1, hyp.sum(1) >= 1),
                           ("overlap", ref.sum(1) >= 2, hyp.sum(1) >= 2)):
            setattr(self, f"{name}_tp", getattr(self, f"{name}_tp") + int((r & h).sum()))
            setattr(self, f"{name}_fp", getattr(self, f"{name}_fp") + int((~r & h).sum()))
            setattr(self, f"{name}_fn", getattr(self, f"{name}_fn") + int((r & ~h).sum()))
        self.errors += int((ref != hyp).sum())
        self.reference += int(ref.sum())

    def metrics(self) -> dict[str, float]:
        """Precision/recall in %, and the local frame error rate in %."""
        def ratio(a: int, b: int) -> float:
            return round(100.0 * a / b, 2) if b else float("nan")

        return {"speech_precision": ratio(self.speech_tp, self.speech_tp + self.speech_fp),
                "speech_recall": ratio(self.speech_tp, self.speech_tp + self.speech_fn),
                "overlap_precision": ratio(self.overlap_tp, self.overlap_tp + self.overlap_fp),
                "overlap_recall": ratio(self.overlap_tp, self.overlap_tp + self.overlap_fn),
                "frame_error": ratio(self.errors, self.reference)}


@dataclass(frozen=True)
class SegmentationSpec:
    """What a segmentation file must agree on with the code that runs it."""

    sample_rate: int = SAMPLE_RATE
    chunk_seconds: float = 5.0
    n_speakers: int = N_SPEAKERS
    powerset: bool = True  # kept for older readers: true exactly when ``output`` is "powerset"
    output: str = "powerset"  # or "count": the number of speakers per frame only
    front_end: str = FRONT_END
    n_mels: int = 64
    conv: int = 128
    hidden: int = 128
    layers: int = 2
    dropout: float = 0.1

    @classmethod
    def for_output(cls, output: str) -> SegmentationSpec:
        """The default network with ``output`` ("powerset" or "count") and its matching flag."""
        return cls(powerset=output == "powerset", output=output)


class SegmentationNet(nn.Module):
    """log-mel → 2 convolutions (stride 2) → BiLSTM → linear → 7 powerset logits (or 3
    speaker-count logits) per 40 ms frame."""

    n_fft, win, hop = 512, 400, 160

    def __init__(self, spec: SegmentationSpec) -> None:
        super().__init__()
        fbank = torch.from_numpy(slaney_mel_filterbank(spec.sample_rate, self.n_fft, spec.n_mels))
        self.register_buffer("fbank", fbank, persistent=False)
        self.register_buffer("window", torch.hann_window(self.win), persistent=False)
        self.norm = nn.BatchNorm1d(spec.n_mels)
        self.conv = nn.Sequential(
            nn.Conv1d(spec.n_mels, spec.conv, 5, stride=2, padding=2), nn.BatchNorm1d(spec.conv), nn.ReLU(),
            nn.Conv1d(spec.conv, spec.conv, 5, stride=2, padding=2), nn.BatchNorm1d(spec.conv), nn.ReLU(),
        )
        self.lstm = nn.LSTM(spec.conv, spec.hidden, spec.layers, batch_first=True, bidirectional=True,
                            dropout=spec.dropout if spec.layers > 1 else 0.0)
        self.head = nn.Sequential(nn.Linear(2 * spec.hidden, spec.hidden), nn.ReLU(),
                                  nn.Linear(spec.hidden, OUTPUTS[spec.output]))

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """``[B, samples]`` → log-mel ``[B, n_mels, frames]``, each chunk shifted to mean 0 (a gain
        change is a constant offset in the log domain, so the level does not matter)."""
        spec = torch.stft(wav, self.n_fft, self.hop, self.win, self.window, center=True, return_complex=True)
        mel = torch.log(torch.matmul(self.fbank, spec.real**2 + spec.imag**2) + 1e-6)
        return mel - mel.mean(dim=(1, 2), keepdim=True)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.norm(self.features(wav)))
        x, _ = self.lstm(x.transpose(1, 2))
        return self.head(x)


def num_frames(samples: int) -> int:
    """Output frames for a chunk of ``samples`` (centred STFT frames, then two stride-2 convolutions)."""
    mel_frames = samples // SegmentationNet.hop + 1
    return ((mel_frames - 1) // 2) // 2 + 1


class SegmentationModel:
    """A loaded segmentation network with its metadata; runs on ``[B, samples]`` chunks."""

    frame_samples = FRAME_SAMPLES  # samples between output frames
    trainable = True  # train-segmentation can fine-tune it (--init)

    def __init__(self, net: SegmentationNet, spec: SegmentationSpec, meta: dict | None = None,
                 path: Path | None = None) -> None:
        self.net, self.spec, self.path = net.eval(), spec, path
        self.meta = {**(meta or {}), **asdict(spec)}

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def chunk_samples(self) -> int:
        return int(round(self.spec.chunk_seconds * self.spec.sample_rate))

    @property
    def frame_step(self) -> float:
        """Seconds between output frames (frame i is centred at ``i * frame_step``)."""
        return self.frame_samples / self.spec.sample_rate

    @property
    def frame_duration(self) -> float:
        """Seconds of audio one output frame's label covers."""
        return self.frame_step

    @property
    def num_frames(self) -> int:
        """Output frames per full chunk."""
        return self.frames(self.chunk_samples)

    def frames(self, samples: int) -> int:
        """Output frames for a chunk of ``samples``."""
        return num_frames(samples)

    def frame_times(self, samples: int | None = None) -> np.ndarray:
        """Centre time (s) of each output frame of a chunk of ``samples`` (default: a full chunk)."""
        return np.arange(self.frames(samples or self.chunk_samples)) * self.frame_step

    @property
    def local_speakers(self) -> bool:
        """Whether the model tells local speakers apart (powerset output), as the local-speaker
        pipeline needs; a speaker-count model only finds speech and overlap."""
        return self.spec.output == "powerset"

    def infer_powerset(self, chunks: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """``[B, samples]`` float32 chunks → ``[B, frames, 7]`` powerset probabilities."""
        if not self.local_speakers:
            raise MungError(f"{self.path or 'segmentation model'}: a speaker-count model has no local "
                            "speakers; the local-speaker pipeline needs a powerset model")
        return self.infer_classes(chunks, batch_size)

    def infer_classes(self, chunks: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """``[B, samples]`` float32 chunks → ``[B, frames, classes]`` probabilities of the output
        classes (powerset, or speaker count)."""
        chunks = np.asarray(chunks, np.float32)
        if chunks.ndim != 2:
            raise MungError(f"segmentation: chunks must be [batch, samples], got shape {chunks.shape}")
        out = []
        with torch.inference_mode():
            for i in range(0, len(chunks), batch_size):
                out.append(self._probabilities(torch.from_numpy(chunks[i : i + batch_size])))
        return (np.concatenate(out) if out
                else np.zeros((0, self.frames(chunks.shape[1]), OUTPUTS[self.spec.output]), np.float32))

    def _probabilities(self, chunks: torch.Tensor) -> np.ndarray:
        """``[B, samples]`` → ``[B, frames, classes]`` class probabilities."""
        return torch.softmax(self.net(chunks), -1).numpy()

    def overlap_from(self, probs: np.ndarray) -> np.ndarray:
        """``[..., classes]`` output probabilities → ``[...]`` probability that two speakers talk
        (the sum of the pair classes, or the two-speaker class of a speaker-count model)."""
        return overlap_probability(probs) if self.local_speakers else probs[..., MAX_SIMULTANEOUS]

    def hard_from(self, probs: np.ndarray) -> np.ndarray:
        """``[..., classes]`` output probabilities → ``[..., 3]`` 0/1 activities of the most likely
        class (a speaker-count model's count as the first speakers: speech and overlap only)."""
        if self.local_speakers:
            return powerset_to_multilabel(probs, soft=False)
        return count_to_multilabel(probs)

    def infer_overlap(self, chunks: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """``[B, samples]`` chunks → ``[B, frames]`` overlap probability (:meth:`overlap_from`)."""
        return self.overlap_from(self.infer_classes(chunks, batch_size))

    def infer_count(self, chunks: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """``[B, samples]`` chunks → ``[B, frames]`` number of speakers (0, 1, 2) of the most
        likely class."""
        return self.hard_from(self.infer_classes(chunks, batch_size)).sum(-1).astype(np.int64)

    @property
    def overlap_threshold(self) -> float:
        """The overlap probability above which a frame is taken as overlapped: chosen when the
        model was trained, on held-out simulated chunks (``trained.overlap_threshold``), else 0.5."""
        return float(self.meta.get("trained", {}).get("overlap_threshold", 0.5))

    def infer(self, chunks: np.ndarray, hard: bool = False, batch_size: int = 32) -> np.ndarray:
        """``[B, samples]`` chunks → ``[B, frames, 3]`` per-local-speaker activity: marginal
        probabilities, or with ``hard`` the 0/1 speakers of the most likely powerset class."""
        return powerset_to_multilabel(self.infer_powerset(chunks, batch_size), soft=not hard)

    def save(self, path: str | os.PathLike, extra: dict | None = None, force: bool = False,
             half: bool = False) -> Path:
        """Write weights and metadata atomically; ``half``: weights as float16 (half the size;
        batch-norm statistics stay float32), as for the shipped file."""
        state = checkpoint.state_tensors(self.net)
        if half:
            state = checkpoint.half(state, {k for k, _ in self.net.named_parameters()})
        meta = {**self.meta, **(extra or {}), "kind": KIND, "format_version": FORMAT_VERSION,
                "frame_samples": FRAME_SAMPLES, **asdict(self.spec)}
        self.meta = meta
        return checkpoint.save(path, state, meta, force)

    @classmethod
    def create(cls, spec: SegmentationSpec | None = None, seed: int = 0) -> SegmentationModel:
        """A freshly initialised model."""
        spec = spec or SegmentationSpec()
        torch.manual_seed(seed)
        return cls(SegmentationNet(spec), spec)

    @classmethod
    def load(cls, path: str | os.PathLike = "mung") -> SegmentationModel:
        """Load ``path`` (or ``"mung"``: the model trained here and shipped in the package; which
        model ``default`` means is :func:`mung.diarization.models.load_segmentation`'s to say). A
        file of another kind or with metadata this code cannot run raises :class:`MungError`."""
        path = default_path() if str(path) == "mung" else Path(path)
        spec = _check_spec(path, read_meta(path))
        state, meta = checkpoint.load(path, WHAT)
        net = SegmentationNet(spec)
        try:
            net.load_state_dict({k: v.float() for k, v in state.items()})
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise MungError(f"{path}: weights do not match the described segmentation model ({first})"
                            ) from None
        return cls(net, spec, meta, path)


def default_path() -> Path:
    """The segmentation model shipped inside the package."""
    path = Path(str(resources.files("mung.diarization") / "weights" / "segmentation.safetensors"))
    if not path.exists():
        raise MungError(f"{path}: shipped segmentation model missing from the package")
    return path


def read_meta(path: str | os.PathLike) -> dict:
    """A segmentation file's metadata, without loading the weights."""
    meta = checkpoint.read_meta(path, WHAT)
    if meta.get("kind") != KIND:
        raise MungError(f"{path}: not a {WHAT} (kind: {meta.get('kind', meta.get('task', 'unknown'))})")
    return meta


def _check_spec(path: Path, meta: dict) -> SegmentationSpec:
    """The file's spec, or one line saying what this code cannot run."""
    output = meta.get("output", "powerset")  # files written before speaker-count models say nothing
    if output not in OUTPUTS:
        raise MungError(f"{path}: incompatible segmentation model: output is {output!r}, "
                        f"this version of mung runs {' or '.join(map(repr, OUTPUTS))}")
    want = {"sample_rate": SAMPLE_RATE, "n_speakers": N_SPEAKERS, "powerset": output == "powerset",
            "front_end": FRONT_END, "frame_samples": FRAME_SAMPLES}
    for key, value in want.items():
        if meta.get(key) != value:
            raise MungError(f"{path}: incompatible segmentation model: {key} is {meta.get(key)!r}, "
                            f"this version of mung runs {value!r}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise MungError(f"{path}: segmentation format version {meta['format_version']} is newer than "
                        f"this mung ({FORMAT_VERSION})")
    fields = SegmentationSpec.__dataclass_fields__
    try:
        return SegmentationSpec(**{k: meta[k] for k in fields if k in meta})
    except TypeError as exc:
        raise MungError(f"{path}: segmentation metadata is invalid ({exc})") from None
