"""The music results page: a sortable, filterable, paginated table of tagged tracks (station with
its probability, the top moods as bars, a play button) and, with a labels CSV, the truth beside
each prediction, the station confusion matrix and the mood micro-F1 of the predicted tag sets."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from mung.audio import AUDIO_EXTENSIONS
from mung.music.data import read_labels_csv
from mung.view.page import audio_ref, write_page

TOP_MOODS = 5


def confusion(pairs: Sequence[tuple[str, str]], labels: Sequence[str]) -> list[list[int]]:
    """``matrix[i][j]`` = tracks whose truth is ``labels[i]`` and prediction ``labels[j]``."""
    pos = {s: i for i, s in enumerate(labels)}
    m = [[0] * len(labels) for _ in labels]
    for truth, pred in pairs:
        m[pos[truth]][pos[pred]] += 1
    return m


def micro_f1(pairs: Sequence[tuple[set[str], set[str]]]) -> float | None:
    """Micro-averaged F1 of predicted vs true tag sets; ``None`` when there is nothing to score."""
    tp = sum(len(t & p) for t, p in pairs)
    fp = sum(len(p - t) for t, p in pairs)
    fn = sum(len(t - p) for t, p in pairs)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None


def write_music_page(
    out_dir: os.PathLike,
    tags: Sequence[Mapping],
    audio_paths: Mapping[str, os.PathLike] | None = None,
    labels: os.PathLike | None = None,
    copy_audio: bool = False,
    force: bool = False,
    title: str = "mung music tags",
) -> Path:
    """Write the page for ``tags`` (the rows of :func:`mung.music.tag.tag`) into ``out_dir``.
    ``audio_paths`` maps a row's ``file`` to the audio to play (default: the file itself when it is
    audio); ``labels`` is a ``file,station,moods[,split]`` CSV matched to rows by file stem."""
    out = Path(out_dir)
    truth = {t.id: t for t in read_labels_csv(labels, check_files=False).tracks} if labels else {}
    stations = sorted({s for r in tags for s in r.get("station_probs", {})} |
                      {t.station for t in truth.values() if t.station})
    moods = sorted({m for r in tags for m in r.get("mood_scores", {})} |
                   {m for t in truth.values() for m in t.moods})
    st_pos, mood_pos = {s: i for i, s in enumerate(stations)}, {m: i for i, m in enumerate(moods)}
    tracks, pairs, mood_pairs = [], [], []
    for r in tags:
        file = str(r["file"])
        stem = Path(file).stem
        src = (audio_paths or {}).get(file, file if Path(file).suffix.lower() in AUDIO_EXTENSIONS else None)
        audio, note = audio_ref(out, src, copy_audio)
        scores = sorted(r.get("mood_scores", {}).items(), key=lambda kv: -kv[1])[:TOP_MOODS]
        station = r.get("station")
        row: dict = {
            "id": stem, "file": file, "audio": audio, "note": note,
            "st": st_pos[station] if station is not None else None,
            "p": r["station_probs"][station] if station is not None else None,
            "sp": [r.get("station_probs", {}).get(s) for s in stations],
            "top": [[mood_pos[m], round(v, 3)] for m, v in scores],
            "pred": [mood_pos[m] for m in r.get("moods", [])],
            "ts": None, "tm": [],
        }
        t = truth.get(stem)
        if t is not None:
            row["ts"], row["tm"] = st_pos[t.station], [mood_pos[m] for m in t.moods]
            if station is not None:
                pairs.append((t.station, station))
            if r.get("mood_scores"):
                mood_pairs.append((set(t.moods), set(r.get("moods", []))))
        tracks.append(row)
    index = {
        "stations": stations, "moods": moods, "tracks": tracks, "has_labels": bool(truth),
        "labelled": len(pairs),
        "confusion": confusion(pairs, stations) if pairs else None,
        "accuracy": sum(a == b for a, b in pairs) / len(pairs) if pairs else None,
        "mood_f1": micro_f1(mood_pairs),
    }
    return write_page(out, "music", title, index, None, [t["audio"] for t in tracks], force)
