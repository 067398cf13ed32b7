"""DER and JER in the conventions of dscore (the DIHARD scorer; its DER is NIST md-eval-22),
checked per file against its answers on our three data sets (tests/test_scoring_dscore.py).

- ``collar``: seconds ignored on *each* side of a reference boundary, for DER only
  (pyannote.metrics takes the total width, so it receives ``2 * collar``).
- The speaker mapping of DER is the one that maximises overlap on the whole scored region,
  *before* collars are cut out, as md-eval does. pyannote.metrics maps after cutting them;
  that gave EN2005a (AMI) 48.51 % instead of md-eval's 49.86 % at ± 0.25 s — the only
  difference on our 32 files.
- JER is always computed without a collar (dscore never applies one to JER), on 10-ms frames:
  per reference speaker ``1 - |ref ∩ sys| / |ref ∪ sys|`` with the Hungarian mapping, 100 %
  for an unmapped reference speaker; a file's JER is the mean over its reference speakers, the
  total the mean over all reference speakers of all files.
- Overall DER sums the error and reference times of all files (md-eval's ``ALL``).
- A uri present on one side only is scored as dscore does (a reference without hypothesis:
  all missed; a UEM uri without reference: no speech) and reported with an
  :class:`UnscoredWarning`; hypotheses outside the scored set (the UEM, else the reference)
  are dropped with one.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from mung.diarization.rttm import Diarization, Turn
from mung.errors import MungError

JER_STEP = 0.010  # dscore's frame step for JER (s)


class UnscoredWarning(UserWarning):
    """A uri present on one side only (reference, hypothesis, UEM)."""


@dataclass
class Score:
    """One file's (or the total's) errors; rates are fractions of reference speech."""

    uri: str
    der: float
    miss: float
    false_alarm: float
    confusion: float
    jer: float
    total: float
    ref_speakers: int = 0
    hyp_speakers: int = 0

    @property
    def combined(self) -> float:
        """(DER + JER) / 2, the competition's ranking score."""
        return (self.der + self.jer) / 2

    def as_dict(self) -> dict:
        return {**asdict(self), "combined": self.combined}


Regions = dict[str, list[tuple[float, float]]]


def _listed(uris: list[str]) -> str:
    more = f" and {len(uris) - 10} more" if len(uris) > 10 else ""
    return ", ".join(uris[:10]) + more


def scored_uris(refs: dict[str, Diarization], hyps: dict[str, Diarization],
                uem: Regions | None = None) -> list[str]:
    """The uris that are scored (the UEM's, else the reference's); every uri present on one
    side only is reported with an :class:`UnscoredWarning`."""
    scored = set(uem) if uem else set(refs)
    if not scored:
        raise MungError("nothing to score: the reference holds no SPEAKER turns (and no UEM was given)")
    notes = []
    if uem:
        notes.append((set(refs) - scored, "reference uri(s) not in the UEM, not scored"))
        notes.append((scored - set(refs), "UEM uri(s) with no reference turns, scored as holding no speech"))
    notes.append((set(hyps) - scored, f"hypothesis uri(s) not in the {'UEM' if uem else 'reference'}, "
                                      "not scored (a wrong uri?)"))
    notes.append((scored - set(hyps), "uri(s) with no hypothesis, scored as all missed"))
    for uris, what in notes:
        if uris:
            warnings.warn(f"{len(uris)} {what}: {_listed(sorted(uris))}", UnscoredWarning, stacklevel=3)
    if hyps and not scored & set(hyps):
        raise MungError(f"no hypothesis uri is scored (hypotheses: {_listed(sorted(hyps))}; "
                        f"scored: {_listed(sorted(scored))})")
    return sorted(scored)


def score(
    refs: dict[str, Diarization],
    hyps: dict[str, Diarization],
    uem: Regions | None = None,
    collar: float = 0.25,
    skip_overlap: bool = False,
) -> tuple[list[Score], Score]:
    """Per-file scores and the overall score of ``hyps`` against ``refs`` on the UEM's uris
    (all reference uris without one); see the module docstring for the conventions."""
    if not collar >= 0:
        raise MungError(f"collar: must be a number of seconds >= 0, got {collar}")
    rows: list[Score] = []
    components: list[dict] = []
    speaker_jers: list[float] = []
    for uri in scored_uris(refs, hyps, uem):
        ref, hyp = refs.get(uri, Diarization(uri)), hyps.get(uri, Diarization(uri))
        regions = (uem or {}).get(uri) or _extent(ref, hyp)
        c = der_components(ref, hyp, regions, collar, skip_overlap)
        jers = speaker_jer(ref, hyp, regions)
        n_hyp = len(_trim(hyp, regions).speakers)
        file_jer = float(np.mean(jers)) if jers else (1.0 if n_hyp else 0.0)
        rows.append(_row(uri, c, file_jer, len(jers), n_hyp))
        components.append(c)
        speaker_jers += jers
    summed = {k: sum(c[k] for c in components) for k in ("missed detection", "false alarm", "confusion",
                                                          "total")}
    total_jer = float(np.mean(speaker_jers)) if speaker_jers else float(any(r.hyp_speakers for r in rows))
    total = _row("TOTAL", summed, total_jer, sum(r.ref_speakers for r in rows),
                 sum(r.hyp_speakers for r in rows))
    return rows, total


def _extent(ref: Diarization, hyp: Diarization) -> list[tuple[float, float]]:
    """No UEM: from the first to the last turn of either side (dscore's ``gen_uem``)."""
    turns = ref.turns + hyp.turns
    return [(min(t.start for t in turns), max(t.end for t in turns))] if turns else [(0.0, 0.0)]


def _timeline(regions: list[tuple[float, float]], uri: str):
    from pyannote.core import Segment, Timeline

    return Timeline([Segment(s, e) for s, e in regions], uri=uri)


def der_components(ref: Diarization, hyp: Diarization, regions: list[tuple[float, float]],
                   collar: float = 0.25, skip_overlap: bool = False) -> dict:
    """md-eval's missed / false alarm / confusion / total reference speech (seconds): speakers
    mapped on ``regions``, then scored outside the ± ``collar`` zones (and overlap)."""
    from pyannote.metrics.diarization import DiarizationErrorRate
    from pyannote.metrics.identification import IdentificationErrorRate

    r = _merged(ref).to_annotation()
    h = _merged(hyp).to_annotation().rename_labels(generator="int")  # never equal to a reference label
    uem = _timeline(regions, ref.uri)
    metric = DiarizationErrorRate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapping = metric.optimal_mapping(*metric.uemify(r, h, uem=uem))
        cr, ch, cuem = metric.uemify(r, h, uem=uem, collar=2 * collar, skip_overlap=skip_overlap,
                                     returns_uem=True)
        return IdentificationErrorRate().compute_components(cr, ch.rename_labels(mapping=mapping), uem=cuem)


def _merged(d: Diarization) -> Diarization:
    """Overlapping turns of one speaker merged (dscore's ``merge_turns``; touching ones are kept)."""

    out: list[Turn] = []
    for spk in d.speakers:
        for t in sorted(t for t in d.turns if t.speaker == spk):
            if out and out[-1].speaker == spk and t.start < out[-1].end:
                out[-1] = Turn(out[-1].start, max(out[-1].end, t.end), spk)
            else:
                out.append(t)
    return Diarization(d.uri, out, d.duration)


def _trim(d: Diarization, regions: list[tuple[float, float]]) -> Diarization:

    turns = [Turn(max(t.start, s), min(t.end, e), t.speaker) for t in d.turns for s, e in regions
             if min(t.end, e) > max(t.start, s)]
    return Diarization(d.uri, turns, d.duration)


def _frames(d: Diarization, regions: list[tuple[float, float]]) -> np.ndarray:
    """``[frames, speakers]`` 0/1 activity on dscore's 10-ms grid, only inside ``regions``."""
    d = _trim(d, regions)
    speakers = d.speakers
    times = JER_STEP * np.arange(int(max(e for _, e in regions) / JER_STEP))
    x = np.zeros((len(times), len(speakers)), dtype=np.int64)
    for t in d.turns:
        x[np.searchsorted(times, t.start): np.searchsorted(times, t.end), speakers.index(t.speaker)] = 1
    keep = np.zeros(len(times), dtype=bool)
    for s, e in regions:
        keep[np.searchsorted(times, s): np.searchsorted(times, e)] = True
    return x[keep]


def speaker_jer(ref: Diarization, hyp: Diarization, regions: list[tuple[float, float]]) -> list[float]:
    """Jaccard error of each reference speaker (dscore's JER, never with a collar)."""
    r, h = _frames(ref, regions), _frames(hyp, regions)
    if r.shape[1] == 0:
        return []
    if h.shape[1] == 0:
        return [1.0] * r.shape[1]
    inter = r.T @ h
    union = r.sum(0)[:, None] + h.sum(0)[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = np.where(union > 0, 1 - inter / union, 1.0)
    jers = np.ones(r.shape[1])
    rows, cols = linear_sum_assignment(cost)
    jers[rows] = cost[rows, cols]
    return [float(j) for j in jers]


def _row(uri: str, c: dict, jer_value: float, n_ref: int, n_hyp: int) -> Score:
    t = c["total"]
    errors = c["missed detection"] + c["false alarm"] + c["confusion"]
    if t == 0:  # no reference speech: md-eval's convention (100 % if anything was hypothesised)
        return Score(uri, float(errors > 0), 0.0, float(errors > 0), 0.0, jer_value, 0.0, n_ref, n_hyp)
    miss, fa, conf = c["missed detection"] / t, c["false alarm"] / t, c["confusion"] / t
    return Score(uri, miss + fa + conf, miss, fa, conf, float(jer_value), t, n_ref, n_hyp)
