"""The output formats of ``mung music tag``: json, csv, competition, text."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from mung.errors import MungError

FORMATS = ("text", "json", "csv", "competition")


def format_rows(rows: list[dict], fmt: str, top: int = 5) -> str:
    """``json`` (the documented contract), ``csv`` (flat), ``competition`` (organisers' columns in
    input order: ``track_index`` + ``station_name`` / ``mood_tag``) or ``text``."""
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "competition":
        out: dict = {"track_index": {str(i): Path(r["file"]).stem for i, r in enumerate(rows)}}
        if rows and rows[0]["station"] is not None:
            out["station_name"] = {str(i): r["station"] for i, r in enumerate(rows)}
        if rows and rows[0]["mood_scores"]:
            out["mood_tag"] = {str(i): r["moods"] for i, r in enumerate(rows)}
        return json.dumps(out)
    if fmt == "csv":
        buf = io.StringIO()
        stations = list(rows[0]["station_probs"]) if rows else []
        moods = list(rows[0]["mood_scores"]) if rows else []
        w = csv.writer(buf)
        w.writerow(["file", "station", "moods", *[f"p_{s}" for s in stations], *[f"mood_{m}" for m in moods]])
        for r in rows:
            w.writerow([r["file"], r["station"] or "", "|".join(r["moods"]),
                        *[r["station_probs"][s] for s in stations], *[r["mood_scores"][m] for m in moods]])
        return buf.getvalue().rstrip("\n")
    if fmt == "text":
        lines = []
        for r in rows:
            parts = [r["file"]]
            if r["station"] is not None:
                parts.append(f"station {r['station']} ({r['station_probs'][r['station']]:.2f})")
            if r["mood_scores"]:
                best = sorted(r["mood_scores"].items(), key=lambda kv: -kv[1])[:top]
                parts.append("moods " + ", ".join(f"{m} {v:.2f}" for m, v in best))
            lines.append("  ".join(parts))
        return "\n".join(lines)
    raise MungError(f"unknown format {fmt!r} (json, csv, competition, text)")
