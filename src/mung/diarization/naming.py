"""Known speakers in diarization: each cluster is given the name of at most one enrolled speaker.

A cluster's profile is embedded like a voiceprint: partial windows over the cluster's turns, the
speech's loudness raised as a whole (:class:`~mung.speaker.utterance.UtteranceEmbedder`), all its
windows averaged; without the audio, the mean of its diarization window embeddings. Clusters and
voiceprints are paired by an optimal assignment on cosine similarity (Hungarian method,
``scipy.optimize.linear_sum_assignment``), so two clusters never get one name and a strong match
is not taken by a greedy earlier pick; a pair is named only when its score reaches ``threshold``,
the rest keep ``spkNN``. Since names replace labels one-to-one, the DER is unchanged. The default
threshold was calibrated on simulated conversations of speakers disjoint from those reported
(``benchmarks/naming.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from mung.arrays import l2_normalize
from mung.config import NONE, Config, Interval, Type, param
from mung.diarization.clustering import cluster_means
from mung.diarization.rttm import Diarization, Turn
from mung.diarization.vad import VADConfig, detect_speech
from mung.speaker.encoders import load_encoder
from mung.speaker.utterance import UtteranceEmbedder
from mung.speaker.voiceprints import VoiceprintDB


@dataclass
class NamingConfig(Config):
    """``speakers``: a voiceprint database folder (``mung speaker enroll``); ``threshold``: the
    cosine score a cluster needs to be given an enrolled name (``None``: the one calibrated for
    the encoder the voiceprints were made with)."""

    section: ClassVar[str] = "naming"

    speakers: str | None = param(None, NONE, Type(str))
    threshold: float | None = param(None, Interval(float, -1, 1), None)


@dataclass
class Naming:
    """Which cluster label got which name, and every cluster's best score per enrolled name."""

    names: dict[str, str] = field(default_factory=dict)  # spkNN → name
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # spkNN → {name: score}


def window_profiles(embeddings: np.ndarray, labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Cluster labels (``spkNN``) and their unit-norm mean window embeddings ``[k, dim]``."""
    ids = sorted(int(i) for i in np.unique(labels))
    return [label(i) for i in ids], cluster_means(embeddings, labels, ids)


def speech_profiles(embedder: UtteranceEmbedder, wav: np.ndarray, diarization: Diarization,
                    regions: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
    """Speaker labels of ``diarization`` and a profile per label from the audio of its turns
    (``regions``: the recording's speech regions, so the detector need not run again)."""
    labels = diarization.speakers
    if not labels:
        return [], np.zeros((0, embedder.dim), np.float32)
    turns = sorted(diarization.turns)
    result = embedder.embed(wav, np.array([[t.start, t.end] for t in turns]), regions)
    rows = [np.concatenate([p for p, t in zip(result.partials, turns, strict=True) if t.speaker == s])
            for s in labels]
    return labels, l2_normalize(np.stack([r.mean(0) for r in rows]))


def match(profiles: np.ndarray, prints: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """(profile row, voiceprint row, score) of the optimal one-to-one pairs scoring ≥ ``threshold``."""
    if len(profiles) == 0 or len(prints) == 0:
        return []
    return assign(profiles @ prints.T, threshold)


def assign(scores: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """(row, column, score) of the one-to-one pairing of highest total ``scores``, keeping the
    pairs that reach ``threshold``."""
    rows, cols = linear_sum_assignment(scores, maximize=True)
    return [(int(r), int(c), float(scores[r, c])) for r, c in zip(rows, cols, strict=True)
            if scores[r, c] >= threshold]


def label(k: int) -> str:
    """The unnamed label of cluster ``k`` (as resegmentation writes it)."""
    return f"spk{k:02d}"


def name_profiles(labels: list[str], profiles: np.ndarray, db: VoiceprintDB, threshold: float) -> Naming:
    """Names for the clusters ``labels`` with unit-norm ``profiles`` (rows)."""
    if not labels or len(db) == 0:
        return Naming()
    names, prints = db.matrix()
    scores = profiles @ prints.T
    table = {k: {n: round(float(s), 4) for n, s in zip(names, row, strict=True)}
             for k, row in zip(labels, scores, strict=True)}
    pairs = assign(scores, threshold)
    return Naming({labels[r]: names[c] for r, c, _ in pairs}, table)


def rename(diarization: Diarization, names: dict[str, str]) -> Diarization:
    """``diarization`` with speaker labels replaced by ``names`` (others unchanged)."""
    turns = [Turn(t.start, t.end, names.get(t.speaker, t.speaker)) for t in diarization.turns]
    return replace(diarization, turns=turns)


def speech_detector(vad: VADConfig | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """mung's speech detector as a function (``vad``: the diarization default if ``None``)."""
    vad = vad or VADConfig()
    vad.validate()
    return functools.partial(detect_speech, config=vad)  # picklable: batch workers receive it


def utterance_embedder(model: str = "default", device: str = "cpu", vad: VADConfig | None = None,
                       segment_aggregation: bool = False) -> UtteranceEmbedder:
    """The embedder of enrolment, identification, ``speaker embed`` and ``speaker eval``:
    ``model`` partial windows over the speech mung's detector finds."""
    encoder = load_encoder(model, device, segment_aggregation=segment_aggregation)
    return UtteranceEmbedder(encoder, speech=speech_detector(vad))
