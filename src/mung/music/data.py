"""Music data: labelled track lists (labels CSV or the competition layout), label vocabularies,
mel loading with an optional on-disk cache, and the crop rules (random training crops;
deterministic covering crops at evaluation)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mung.arrays import tile
from mung.errors import MungError
from mung.music.features import MelConfig, load_mel, normalise

TASKS = ("station", "mood", "multi")


@dataclass(frozen=True)
class Track:
    """One labelled (or unlabelled) track: audio file or competition ``.npy`` mel."""

    id: str
    path: Path
    station: str | None = None
    moods: tuple[str, ...] = ()
    split: str | None = None


@dataclass
class Dataset:
    """Tracks plus the label vocabularies they use (sorted)."""

    tracks: list[Track]
    stations: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Track]:
        return [t for t in self.tracks if t.split == name]


def _vocab(tracks: list[Track]) -> tuple[list[str], list[str]]:
    stations = sorted({t.station for t in tracks if t.station})
    moods = sorted({m for t in tracks for m in t.moods})
    return stations, moods


def read_labels_csv(path: str | os.PathLike, check_files: bool = True) -> Dataset:
    """Read ``file,station,moods[,split]`` (moods ``|``-separated; paths relative to the CSV).
    A row with an empty ``moods`` field is kept as an all-negative mood target (documented
    choice: the 4Q data has such rows); a row without a station is an error."""
    path = Path(path)
    if not path.exists():
        raise MungError(f"{path}: labels file not found")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file", "station"} - set(reader.fieldnames or [])
        if missing:
            raise MungError(f"{path}: labels CSV lacks column(s) {', '.join(sorted(missing))}")
        rows = list(reader)
    tracks = []
    for i, row in enumerate(rows, start=2):
        file = (row.get("file") or "").strip()
        station = (row.get("station") or "").strip()
        if not file or not station:
            raise MungError(f"{path}:{i}: row has no file or no station")
        audio = (path.parent / file) if not Path(file).is_absolute() else Path(file)
        if check_files and not audio.exists():
            raise MungError(f"{path}:{i}: listed file {file} is missing")
        moods = tuple(sorted({m.strip().lower() for m in (row.get("moods") or "").split("|") if m.strip()}))
        split = (row.get("split") or "").strip() or None
        tracks.append(Track(Path(file).stem, audio, station, moods, split))
    if not tracks:
        raise MungError(f"{path}: labels CSV has no rows")
    _assign_val_split(tracks)
    return Dataset(tracks, *_vocab(tracks))


def _assign_val_split(tracks: list[Track], fraction: float = 0.2, seed: int = 0) -> None:
    """Without a ``split`` column, hold out a deterministic ~20 % per station as ``val``."""
    if any(t.split for t in tracks):
        return
    rng = np.random.default_rng(seed)
    by_station: dict[str, list[int]] = {}
    for i, t in enumerate(tracks):
        by_station.setdefault(t.station or "", []).append(i)
    for idx in by_station.values():
        idx = list(rng.permutation(idx))
        n_val = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        for k, i in enumerate(idx):
            t = tracks[i]
            tracks[i] = Track(t.id, t.path, t.station, t.moods, "val" if k < n_val else "train")


def _columns(obj: object, name: str) -> list[dict]:
    """Competition JSON as records: a dict of columns (pandas ``to_json``) or a list of records."""
    if isinstance(obj, list):
        return [r if isinstance(r, dict) else {"track_index": r} for r in obj]
    if isinstance(obj, dict) and "track_index" in obj:
        col = obj["track_index"]
        keys = list(col.keys()) if isinstance(col, dict) else list(range(len(col)))
        out = []
        for k in keys:
            out.append({c: (v[k] if isinstance(v, dict) else v[int(k)]) for c, v in obj.items()
                        if (isinstance(v, dict) and k in v) or isinstance(v, list)})
        return out
    raise MungError(f"{name}: expected a JSON list or an object with a 'track_index' column")


def read_competition(root: str | os.PathLike) -> Dataset:
    """Competition layout: ``<root>/train/train_data/mel_spectrogram/<id>.npy`` and
    ``<root>/train/train_label`` (``track_index`` + ``station_name`` or ``mood_tag``)."""
    root = Path(root)
    label_file = root / "train" / "train_label"
    mel_dir = root / "train" / "train_data" / "mel_spectrogram"
    if not label_file.exists():
        raise MungError(f"{label_file}: competition label file not found")
    try:
        records = _columns(json.loads(label_file.read_text()), str(label_file))
    except json.JSONDecodeError as exc:
        raise MungError(f"{label_file}: not valid JSON ({exc})") from None
    tracks = []
    for r in records:
        tid = str(r.get("track_index"))
        npy = mel_dir / f"{tid}.npy"
        if not npy.exists():
            raise MungError(f"{label_file}: track {tid} is listed but {npy} is missing")
        station = r.get("station_name")
        moods = r.get("mood_tag") or []
        if isinstance(moods, str):
            moods = [moods]
        tracks.append(Track(tid, npy, str(station) if station is not None else "-",
                            tuple(sorted({str(m).strip().lower() for m in moods})), None))
    if not tracks:
        raise MungError(f"{label_file}: no tracks listed")
    _assign_val_split(tracks)
    return Dataset(tracks, *_vocab(tracks))


def read_competition_test(meta: str | os.PathLike) -> list[Path]:
    """Tracks of ``<root>/test/test_data/meta/<q>_test.json`` → ``test_data/mel_spectrogram/<id>.npy``
    in the listed (test-index) order."""
    meta = Path(meta)
    try:
        records = _columns(json.loads(meta.read_text()), str(meta))
    except json.JSONDecodeError as exc:
        raise MungError(f"{meta}: not valid JSON ({exc})") from None
    mel_dir = meta.parent.parent / "mel_spectrogram"
    return [mel_dir / f"{r.get('track_index')}.npy" for r in records]


def read_dataset(data: str | os.PathLike) -> Dataset:
    """A labels CSV, a folder holding ``labels.csv``, or a competition root."""
    data = Path(data)
    if data.is_file():
        return read_labels_csv(data)
    if (data / "labels.csv").exists():
        return read_labels_csv(data / "labels.csv")
    if (data / "train" / "train_label").exists():
        return read_competition(data)
    raise MungError(f"{data}: not a labels CSV, a folder with labels.csv, or a competition root")


def encode(tracks: list[Track], stations: list[str], moods: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Station indices ``[N]`` (-1 when unknown) and mood multi-hot ``[N, K]``; a station or mood
    outside the vocabulary is an error naming the track."""
    s_index = {s: i for i, s in enumerate(stations)}
    m_index = {m: i for i, m in enumerate(moods)}
    ys = np.full(len(tracks), -1, dtype=np.int64)
    ym = np.zeros((len(tracks), len(moods)), dtype=np.float32)
    for i, t in enumerate(tracks):
        if t.station is not None and stations:
            if t.station not in s_index:
                raise MungError(f"{t.id}: station {t.station!r} is not in the vocabulary {stations}")
            ys[i] = s_index[t.station]
        for m in t.moods:
            if m not in m_index:
                if moods:
                    raise MungError(f"{t.id}: mood {m!r} is not in the model's mood vocabulary")
                continue
            ym[i, m_index[m]] = 1.0
    return ys, ym


class MelCache:
    """Raw power mel of tracks, computed once per (file, front-end) and kept on disk (optional)
    and in memory as normalised float16."""

    def __init__(self, cfg: MelConfig, cache_dir: str | os.PathLike | None = None):
        self.cfg = cfg
        self.dir = Path(cache_dir) if cache_dir else None
        self.memory: dict[Path, np.ndarray] = {}
        tag = json.dumps(cfg.to_dict() | {"normalisation": None}, sort_keys=True)
        self.key = hashlib.sha1(tag.encode()).hexdigest()[:8]

    def raw(self, path: Path) -> np.ndarray:
        if str(path).lower().endswith(".npy") or self.dir is None:
            return load_mel(path, self.cfg)
        cached = self.dir / f"{path.stem}.{self.key}.npy"
        if cached.exists():
            return np.load(cached)
        mel = load_mel(path, self.cfg)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}.npy")
        np.save(tmp, mel)
        os.replace(tmp, cached)
        return mel

    def get(self, path: Path) -> np.ndarray:
        """Normalised mel ``[1, M, T]`` float32."""
        if path not in self.memory:
            self.memory[path] = normalise(self.raw(path), self.cfg.normalisation).astype(np.float16)
        return self.memory[path].astype(np.float32)


def random_crop(mel: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Training crop: tile a short track, then a random window of ``length`` frames."""
    mel = tile(mel, length)
    start = int(rng.integers(0, mel.shape[-1] - length + 1))
    return mel[..., start : start + length]


def eval_crops(mel: np.ndarray, length: int) -> np.ndarray:
    """Deterministic crops ``[n, 1, M, length]`` that together cover the whole track."""
    if mel.shape[-1] <= length:
        return tile(mel, length)[None, ..., :length]
    t = mel.shape[-1]
    n = -(-t // length)
    starts = np.linspace(0, t - length, n).round().astype(int) if n > 1 else [0]
    return np.stack([mel[..., s : s + length] for s in starts])
