"""The diarization results page: per recording a timeline (one lane per speaker, reference lanes
and error lanes with a reference), an energy envelope, playback and speaker renaming.

The DER shown is computed here with :func:`mung.diarization.scoring.score` and the same collar as
``mung score``, so the page and the command print the same number. The error lanes (missed, false
alarm, confusion) are drawn on a 10 ms grid after the optimal speaker mapping, without the collar.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mung.arrays import runs
from mung.audio import info, stream
from mung.diarization.rttm import Diarization, read_rttm
from mung.diarization.scoring import score
from mung.view.page import audio_ref, write_page

ENVELOPE_POINTS = 4000  # at most this many envelope values per recording
ENVELOPE_HOP = 0.05  # s, the finest envelope step
ENVELOPE_RANGE_DB = 60.0
GRID = 0.01  # s, resolution of the error lanes


def envelope(path: os.PathLike) -> dict:
    """RMS energy in dB, ``values`` scaled 0..100 over the top 60 dB, one value every ``hop`` s.
    Streamed block by block, so long recordings stay in bounded memory."""
    duration = info(path).duration
    hop = max(ENVELOPE_HOP, duration / ENVELOPE_POINTS)
    sr = 16000
    hop_n = max(1, int(round(hop * sr)))
    power = np.zeros(int(np.ceil(duration / hop)) + 2)
    count = np.zeros_like(power)
    done = 0
    for block in stream(path, sample_rate=sr):
        idx = (done + np.arange(block.size)) // hop_n
        n = int(idx[-1]) + 1 if block.size else 0
        if n > power.size:
            power, count = np.pad(power, (0, n - power.size)), np.pad(count, (0, n - count.size))
        power[:n] += np.bincount(idx, weights=block.astype(np.float64) ** 2, minlength=n)[:n]
        count[:n] += np.bincount(idx, minlength=n)[:n]
        done += block.size
    used = count > 0
    db = 10 * np.log10(power[used] / count[used] + 1e-12)
    top = db.max() if db.size else 0.0
    values = np.clip((db - top + ENVELOPE_RANGE_DB) / ENVELOPE_RANGE_DB * 100, 0, 100)
    return {"hop": hop_n / sr, "values": [int(round(v)) for v in values]}


def _runs(mask: np.ndarray) -> list[list[float]]:
    """[[start, end], ...] in seconds for the True runs of a frame mask."""
    return [[round(s * GRID, 3), round(e * GRID, 3)] for s, e in zip(*runs(mask), strict=True)]


def _activity(d: Diarization, labels: list[str], frames: int) -> np.ndarray:
    act = np.zeros((len(labels), frames), dtype=bool)
    for t in d.turns:
        act[labels.index(t.speaker), int(round(t.start / GRID)):int(round(t.end / GRID))] = True
    return act


def error_regions(ref: Diarization, hyp: Diarization) -> dict[str, list[list[float]]]:
    """Missed, false-alarm and confusion spans after pyannote's optimal speaker mapping."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    mapping = DiarizationErrorRate().optimal_mapping(ref.to_annotation(), hyp.to_annotation())
    frames = int(np.ceil(max(ref.duration, hyp.duration, GRID) / GRID)) + 1
    r_labels, h_labels = ref.speakers, hyp.speakers
    r, h = _activity(ref, r_labels, frames), _activity(hyp, h_labels, frames)
    n_ref, n_hyp = r.sum(0), h.sum(0)
    correct = np.zeros(frames, dtype=np.int32)
    for j, label in enumerate(h_labels):
        if mapping.get(label) in r_labels:
            correct += h[j] & r[r_labels.index(mapping[label])]
    return {
        "missed": _runs(n_ref > n_hyp),
        "false_alarm": _runs(n_hyp > n_ref),
        "confusion": _runs(np.minimum(n_ref, n_hyp) > correct),
    }


def _turns(d: Diarization, labels: list[str]) -> list[list]:
    return [[round(t.start, 3), round(t.end, 3), labels.index(t.speaker)] for t in sorted(d.turns)]


def _as_dict(results: Sequence[Diarization] | Mapping[str, Diarization]) -> dict[str, Diarization]:
    return dict(results) if isinstance(results, Mapping) else {d.uri: d for d in results}


def write_diarization_page(
    out_dir: os.PathLike,
    results: Sequence[Diarization] | Mapping[str, Diarization],
    audio_paths: Mapping[str, os.PathLike] | None = None,
    ref: os.PathLike | Mapping[str, Diarization] | None = None,
    uem: Mapping[str, list[tuple[float, float]]] | None = None,
    names: Mapping[str, Mapping[str, str]] | None = None,
    collar: float = 0.25,
    copy_audio: bool = False,
    force: bool = False,
    title: str = "mung diarization",
) -> Path:
    """Write the page for ``results`` into ``out_dir``. ``audio_paths`` maps uri → audio file
    (played and turned into an envelope); ``ref`` (an RTTM path or parsed RTTM) adds reference
    lanes, error lanes and the DER; ``names`` maps uri → {label: display name}."""
    out = Path(out_dir)
    hyps = _as_dict(results)
    refs = (read_rttm(ref) if not isinstance(ref, Mapping) else dict(ref)) if ref is not None else None
    audio_paths = audio_paths or {}
    scored = {}
    total = None
    if refs is not None:
        both = {u: refs[u] for u in hyps if u in refs}
        if both:
            sub_uem = {u: uem[u] for u in both if u in uem} if uem else None  # only what the page shows
            rows, total_row = score(both, {u: hyps[u] for u in both}, sub_uem, collar=collar)
            scored = {r.uri: r for r in rows}
            total = total_row.as_dict()
    index_rows, details = [], []
    for uri in sorted(hyps):
        d = hyps[uri]
        audio, note = audio_ref(out, audio_paths.get(uri), copy_audio)
        env = envelope(audio_paths[uri]) if audio else None
        duration = max(d.duration, len(env["values"]) * env["hop"] if env else 0.0)
        labels = d.speakers
        detail: dict = {
            "uri": uri, "duration": round(duration, 3), "audio": audio, "audio_note": note,
            "envelope": env, "speakers": labels, "turns": _turns(d, labels),
            "names": dict((names or {}).get(uri, {})),
            "ref": None, "errors": None, "score": None, "ref_note": None,
        }
        if refs is not None and uri in refs:
            r = refs[uri]
            detail["ref"] = {"speakers": r.speakers, "turns": _turns(r, r.speakers)}
            detail["errors"] = error_regions(r, d)
            detail["score"] = scored[uri].as_dict()
        elif refs is not None:
            detail["ref_note"] = "this recording is not in the reference RTTM"
        details.append(detail)
        index_rows.append({
            "uri": uri, "duration": detail["duration"], "speakers": len(labels), "turns": len(d.turns),
            "der": detail["score"]["der"] if detail["score"] else None, "audio": audio is not None,
        })
    index = {"recordings": index_rows, "has_ref": refs is not None, "collar": collar, "total": total}
    return write_page(out, "diarization", title, index, details, [d["audio"] for d in details], force)

