"""Known speakers: a voiceprint database (one JSON file per speaker in a folder) and identification.

A voiceprint is the unit-norm mean of the partial-window embeddings of all the speech a speaker
was enrolled from (:class:`~mung.speaker.utterance.UtteranceEmbedder`), stored with the encoder's
name and dimension (a database is used with that encoder only) and the seconds of speech it came
from. JSON, never pickle: a voiceprint file is safe to read from anyone. Every write is atomic.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mung import audio
from mung.arrays import l2_normalize
from mung.errors import MungError
from mung.outputs import write_json
from mung.speaker.utterance import UtteranceEmbedder

FORMAT = "mung-voiceprint"
VERSION = 1
MIN_SPEECH_SECONDS = 1.0  # enrolment needs at least this much detected speech
_NAME = re.compile(r"^[\w][\w.\-]{0,63}$")
_CLUSTER_LABEL = re.compile(r"^spk\d+$")


@dataclass
class Voiceprint:
    """One enrolled speaker."""

    name: str
    encoder: str
    dim: int
    seconds: float
    embedding: np.ndarray
    sources: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "encoder": self.encoder,
                "dim": self.dim, "seconds": round(self.seconds, 3), "sources": self.sources,
                "embedding": [round(float(x), 7) for x in self.embedding]}


def check_name(name: str) -> str:
    """A speaker name usable as an RTTM label and a file name (letters, digits, ``_ . -``)."""
    if not _NAME.match(name):
        raise MungError(f"speaker name {name!r}: use 1-64 letters, digits, '_', '.' or '-' (no spaces), "
                        "starting with a letter or digit")
    if _CLUSTER_LABEL.match(name):
        raise MungError(f"speaker name {name!r} looks like an unnamed cluster label (spkNN); choose another")
    return name


def _parse(path: Path) -> Voiceprint:
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, not {FORMAT!r}")
        emb = np.asarray(data["embedding"], np.float32)
        vp = Voiceprint(str(data["name"]), str(data["encoder"]), int(data["dim"]), float(data["seconds"]),
                        emb, [str(s) for s in data.get("sources", [])])
        if emb.shape != (vp.dim,) or not np.isfinite(emb).all() or np.linalg.norm(emb) < 1e-6:
            raise ValueError(f"embedding is not a finite non-zero vector of {vp.dim} numbers")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MungError(f"{path}: not a valid voiceprint file ({exc})") from None
    if vp.name != path.stem:
        raise MungError(f"{path}: holds speaker {vp.name!r}; the file name must be {vp.name}.json")
    vp.embedding = l2_normalize(emb)
    return vp


class VoiceprintDB:
    """A folder of ``NAME.json`` voiceprints. Reading checks every file; a missing folder is an
    empty database (``enroll`` creates it) unless ``must_exist``."""

    def __init__(self, path: str | os.PathLike, must_exist: bool = False) -> None:
        self.path = Path(path)
        if must_exist and not self.path.exists():
            raise MungError(f"{self.path}: voiceprint database folder not found")
        if self.path.exists() and not self.path.is_dir():
            raise MungError(f"{self.path}: a voiceprint database is a folder, this is a file")
        files = sorted(self.path.glob("*.json")) if self.path.is_dir() else []
        self.voiceprints = {vp.name: vp for vp in map(_parse, files)}
        encoders = {(vp.encoder, vp.dim) for vp in self.voiceprints.values()}
        if len(encoders) > 1:
            found = ", ".join(f"{e} ({d}-d)" for e, d in sorted(encoders))
            raise MungError(f"{self.path}: voiceprints from several encoders ({found}); "
                            "keep one encoder per database")

    def __len__(self) -> int:
        return len(self.voiceprints)

    @property
    def names(self) -> list[str]:
        return sorted(self.voiceprints)

    @property
    def encoder(self) -> tuple[str, int] | None:
        """(encoder name, dimension) of the stored voiceprints; ``None`` when empty."""
        vp = next(iter(self.voiceprints.values()), None)
        return None if vp is None else (vp.encoder, vp.dim)

    def check_new(self, name: str, force: bool = False) -> None:
        """Refuse to enrol ``name`` again unless ``force`` (it then replaces the voiceprint)."""
        if name in self.voiceprints and not force:
            raise MungError(f"{self.path}: speaker {name!r} is already enrolled (use --force to replace)")

    def check_encoder(self, name: str, dim: int) -> None:
        """Refuse to compare with embeddings of another encoder."""
        if self.encoder not in (None, (name, dim)):
            enc, d = self.encoder
            raise MungError(f"{self.path}: voiceprints were made with encoder '{enc}' ({d}-d), not '{name}' "
                            f"({dim}-d); use that encoder or enrol the speakers again into another database")

    def matrix(self) -> tuple[list[str], np.ndarray]:
        """Names and their voiceprints as rows ``[n, dim]``."""
        names = self.names
        dim = self.encoder[1] if self.encoder else 0
        rows = [self.voiceprints[n].embedding for n in names]
        return names, np.stack(rows) if rows else np.zeros((0, dim), np.float32)

    def file(self, name: str) -> Path:
        return self.path / f"{name}.json"

    def add(self, vp: Voiceprint, force: bool = False) -> Path:
        """Write ``vp`` atomically (an existing name needs ``force``)."""
        check_name(vp.name)
        self.check_encoder(vp.encoder, vp.dim)
        self.check_new(vp.name, force)
        path = write_json(self.file(vp.name), vp.to_json(), force=True)
        self.voiceprints[vp.name] = vp
        return path

    def remove(self, name: str) -> None:
        if name not in self.voiceprints:
            known = ", ".join(self.names) or "none"
            raise MungError(f"{self.path}: no speaker {name!r} enrolled (enrolled: {known})")
        self.file(name).unlink()
        del self.voiceprints[name]


def voiceprint(name: str, paths: list[str | os.PathLike], embedder: UtteranceEmbedder,
               min_speech: float = MIN_SPEECH_SECONDS) -> Voiceprint:
    """A speaker's voiceprint from one or more recordings of them alone."""
    check_name(name)
    if not paths:
        raise MungError(f"{name}: no audio given to enrol from")
    files = audio.find_audio(list(paths))
    result = embedder.embed_waveforms([audio.load(f) for f in files])
    for f, s in zip(files, result.speech_seconds, strict=True):
        if s <= 0:
            raise MungError(f"{f}: no speech detected; cannot enrol {name} from it")
    total = float(result.speech_seconds.sum())
    if total < min_speech:
        raise MungError(f"{name}: only {total:.2f} s of speech in {', '.join(map(str, files))}; "
                        f"enrolment needs at least {min_speech:g} s")
    profile = l2_normalize(np.concatenate(result.partials).mean(0))
    return Voiceprint(name, embedder.name, embedder.dim, total, profile, [str(f) for f in files])


def enroll(name: str, paths: list[str | os.PathLike], db: str | os.PathLike | VoiceprintDB,
           embedder: UtteranceEmbedder, force: bool = False,
           min_speech: float = MIN_SPEECH_SECONDS) -> Voiceprint:
    """Enrol ``name`` from ``paths`` into ``db`` (refused if enrolled already, unless ``force``)."""
    db = db if isinstance(db, VoiceprintDB) else VoiceprintDB(db)
    db.check_encoder(embedder.name, embedder.dim)
    db.check_new(name, force)
    vp = voiceprint(name, paths, embedder, min_speech)
    db.add(vp, force=force)
    return vp


def list_speakers(db: str | os.PathLike | VoiceprintDB) -> list[Voiceprint]:
    db = db if isinstance(db, VoiceprintDB) else VoiceprintDB(db)
    return [db.voiceprints[n] for n in db.names]


def remove(name: str, db: str | os.PathLike | VoiceprintDB) -> None:
    db = db if isinstance(db, VoiceprintDB) else VoiceprintDB(db)
    db.remove(name)


@dataclass
class Identification:
    """The closest enrolled speakers of one recording (best first) and the decision."""

    source: str
    matches: list[tuple[str, float]]
    threshold: float

    @property
    def name(self) -> str:
        """The best match if its score reaches the threshold, else ``unknown``."""
        if self.matches and self.matches[0][1] >= self.threshold:
            return self.matches[0][0]
        return "unknown"


def identify(paths: list[str | os.PathLike], db: str | os.PathLike | VoiceprintDB,
             embedder: UtteranceEmbedder, top: int = 3,
             threshold: float | None = None) -> list[Identification]:
    """For each recording: the ``top`` enrolled speakers by cosine score, named if above ``threshold``
    (``None``: the encoder's calibrated ``identify_threshold``)."""
    db = db if isinstance(db, VoiceprintDB) else VoiceprintDB(db)
    if not len(db):
        raise MungError(f"{db.path}: no speaker enrolled (mung speaker enroll NAME AUDIO... --db {db.path})")
    db.check_encoder(embedder.name, embedder.dim)
    files = audio.find_audio(list(paths))
    emb = embedder.embed_waveforms([audio.load(f) for f in files]).embeddings
    names, prints = db.matrix()
    threshold = embedder.identify_threshold if threshold is None else threshold
    out = []
    for f, scores in zip(files, emb @ prints.T, strict=True):
        order = np.argsort(-scores)[:top]
        out.append(Identification(str(f), [(names[i], float(scores[i])) for i in order], threshold))
    return out
