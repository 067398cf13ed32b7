"""DER / JER with pyannote.metrics, in dscore's conventions.

``collar`` is the dscore / md-eval collar: seconds ignored on *each* side of a reference
boundary (pyannote.metrics takes the total width, so it receives ``2 * collar``).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

from mung.diarization.rttm import Diarization
from mung.errors import MungError


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


def _timeline(uem: list[tuple[float, float]] | None, uri: str):
    """The scored region; ``None`` lets pyannote use the extent of reference and hypothesis."""
    from pyannote.core import Segment, Timeline

    return Timeline([Segment(s, e) for s, e in uem], uri=uri) if uem else None


def score(
    refs: dict[str, Diarization],
    hyps: dict[str, Diarization],
    uem: dict[str, list[tuple[float, float]]] | None = None,
    collar: float = 0.25,
    skip_overlap: bool = False,
) -> tuple[list[Score], Score]:
    """Per-file scores and the overall score (errors summed over files, as md-eval does).
    A reference file with no hypothesis counts as all missed; a hypothesis with no reference
    is an error (a wrong uri is the usual cause)."""
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    unknown = sorted(set(hyps) - set(refs))
    if unknown:
        raise MungError(f"hypothesis uri(s) not in the reference: {', '.join(unknown[:5])}")
    der = DiarizationErrorRate(collar=2 * collar, skip_overlap=skip_overlap)
    jer = JaccardErrorRate(collar=2 * collar, skip_overlap=skip_overlap)
    rows: list[Score] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for uri in sorted(refs):
            ref, hyp = refs[uri], hyps.get(uri, Diarization(uri))
            r, h = ref.to_annotation(), hyp.to_annotation()
            u = _timeline((uem or {}).get(uri), uri)
            c = der(r, h, uem=u, detailed=True)
            j = jer(r, h, uem=u)
            rows.append(_row(uri, c, j, len(ref.speakers), len(hyp.speakers)))
        total = _row("TOTAL", _sum(der), abs(jer), 0, 0)
    total.ref_speakers = sum(r.ref_speakers for r in rows)
    total.hyp_speakers = sum(r.hyp_speakers for r in rows)
    return rows, total


def _sum(metric) -> dict:
    return {k: sum(metric.results_[i][1][k] for i in range(len(metric.results_))) for k in metric.components_}


def _row(uri: str, c: dict, jer_value: float, n_ref: int, n_hyp: int) -> Score:
    t = c["total"] or 1e-12
    miss, fa, conf = c["missed detection"] / t, c["false alarm"] / t, c["confusion"] / t
    return Score(uri, miss + fa + conf, miss, fa, conf, float(jer_value), c["total"], n_ref, n_hyp)
