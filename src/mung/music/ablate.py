"""``mung music ablate``: re-test the seed system's design claims (crop length, 1-D vs 2-D
convolution, aggregation, attention, ensembles) on real data.
Every variant is trained against the same baseline with several seeds on the train split and
scored on val; each claim gets mean ± std over seeds, the paired difference, the seed's claimed
direction and a verdict.

Verdict rule (stated in the report): paired differences ``d_s = variant_s − baseline_s`` over
seeds; a two-sided paired t-test. A difference *counts* when p < 0.1 and |mean d| ≥ 0.02 (3 of
144 val clips for station accuracy: seeds that all differ by one clip give p = 0 but no evidence).
For a claimed ↑ or ↓: *agrees* if a counting difference has the claimed sign, *disagrees* if it
has the opposite sign, otherwise *inconclusive*. For a claimed "=": *agrees* if |mean d| < 0.02,
*disagrees* if the difference counts, otherwise *inconclusive*. With few seeds most verdicts are
honestly inconclusive."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
from scipy import stats

from mung.config import Config, Interval, Type, param
from mung.errors import MungError
from mung.music.data import Dataset, MelCache, encode, read_dataset
from mung.music.ensemble import Ensemble
from mung.music.features import MelConfig
from mung.music.metrics import mood_metrics, station_metrics
from mung.music.model_io import CHECKPOINT_NAME, read_meta
from mung.music.train import MusicTrainConfig, train
from mung.outputs import check_writable, write_json, write_text
from mung.plots import figure

METRIC = {"station": "station_accuracy", "mood": "mood_macro_pr_auc"}
ENSEMBLE_MEMBERS = ("rexnet", "resnext50", "base", "conv1d")


@dataclass
class AblationConfig(Config):
    """Budget and baseline of the ablation. Defaults fit ~1.5 h on 2 CPU cores (measured, see
    benchmarks/results/ablation.md): a slim 2-D SpeakerNet + GRU baseline (stem stride 2×2),
    10-s training crops, 8 epochs, Adam at 1e-3 (station) / 3e-3 (mood: slower to leave the
    prior), and slimmed ensemble members (ReXNet width 0.5, ResNeXt 32x4d at width 0.25 with one
    block per stage)."""

    section: ClassVar[str] = "ablation"

    seeds: int = param(3, Interval(int, 1, None))
    epochs: int = param(8, Interval(int, 1, None))
    crop_frames: int = param(312, Interval(int, 8, None))  # 10 s
    batch_size: int = param(16, Interval(int, 1, None))
    lr: dict = param(dataclasses.MISSING, Type(dict), factory=lambda: {"station": 1e-3, "mood": 3e-3})
    base_kwargs: dict = param(dataclasses.MISSING, Type(dict), factory=lambda: {
        "channels": [8, 16, 32, 64], "blocks": [1, 1, 1, 1], "stem_stride": [2, 2]})
    quick: bool = param(False, Type(bool))
    max_per_station: int | None = param(None, Interval(int, 1, None), None)  # subset for --quick

    @classmethod
    def quick_config(cls) -> AblationConfig:
        return cls(seeds=2, epochs=1, crop_frames=32, batch_size=8, quick=True, max_per_station=2,
                   base_kwargs={"channels": [4, 4, 4, 4], "blocks": [1, 1, 1, 1], "stem_stride": [2, 2]})


def arms(cfg: AblationConfig) -> dict[str, dict]:
    """Variant name → MusicTrainConfig overrides (on top of the baseline)."""
    c = cfg.crop_frames
    slim = cfg.quick
    return {
        "base": {},
        "crop 20 s": {"crop_frames": 2 * c if slim else 625},
        "crop full clip": {"crop_frames": 3 * c if slim else 940},
        "tile to 60 s + crop": {"crop_frames": 4 * c if slim else 1875},
        "conv1d": {"model": "speakernet1d",
                   "model_kwargs": {"channels": [8, 8, 8, 8] if slim else [32, 64, 64, 128],
                                    "blocks": [1, 1, 1, 1]}},
        "avgpool": {"model_kwargs": {"aggregation": "avgpool"}},
        "attention": {"model": "attention"},
        "focal": {"loss": "focal"},
        "mixup": {"mixup": 0.4},
        "freq mask": {"freq_mask": 4 if slim else 24},
        "rexnet": {"model": "rexnet", "model_kwargs": {"width": 0.25 if slim else 0.5}},
        "resnext50": {"model": "resnext50",
                      "model_kwargs": {"blocks": [1, 1, 1, 1], "width": 0.125 if slim else 0.25}},
    }


# claim, task, variant arm, compared with, claimed direction (+ helps, − hurts, = no change)
CLAIMS: list[tuple[str, str, str, str, str]] = [
    *[(f"longer training crop: {a} vs 10 s", t, a, "base", "+")
      for t in ("station", "mood") for a in ("crop 20 s", "crop full clip", "tile to 60 s + crop")],
    *[("1-D conv (freq as channels) vs 2-D", t, "conv1d", "base", "-") for t in ("station", "mood")],
    *[("pooling vs GRU aggregation (CRNN)", t, "avgpool", "base", "-") for t in ("station", "mood")],
    ("attention map from frozen mood tagger", "station", "attention", "base", "+"),
    ("attention map from frozen station model", "mood", "attention", "base", "-"),
    ("focal loss vs cross-entropy", "station", "focal", "base", "="),
    *[("mixup", t, "mixup", "base", "-") for t in ("station", "mood")],
    *[("frequency masking", t, "freq mask", "base", "-") for t in ("station", "mood")],
    *[("4-model ensemble vs best single member", t, "ensemble", "best member", "+")
      for t in ("station", "mood")],
]


def _subset(data: Dataset, n: int | None) -> Dataset:
    if n is None:
        return data
    keep, count = [], {}
    for t in data.tracks:
        k = (t.split, t.station)
        if count.get(k, 0) < (n if t.split == "train" else max(1, n // 2)):
            keep.append(t)
            count[k] = count.get(k, 0) + 1
    return Dataset(keep, data.stations, data.moods)


def verdict(diffs: np.ndarray, claimed: str, margin: float = 0.02, alpha: float = 0.1) -> tuple[str, float]:
    """Paired two-sided t-test over seeds (see module docstring); returns (verdict, p-value)."""
    d = np.asarray(diffs, dtype=float)
    if len(d) < 2 or np.allclose(d, d[0]):
        p = 0.0 if len(d) >= 2 and abs(d[0]) > 0 else 1.0
    else:
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
    mean = float(d.mean())
    if abs(mean) < margin:
        return ("agrees" if claimed == "=" else "inconclusive"), p
    if p >= alpha:
        return "inconclusive", p
    if claimed == "=":
        return "disagrees", p
    return ("agrees" if (mean > 0) == (claimed == "+") else "disagrees"), p


def ablate(data_path: os.PathLike, out_dir: os.PathLike, cfg: AblationConfig | None = None,
           force: bool = False, progress: bool = True, cache_dir: str | None = None,
           only: list[str] | None = None, tasks: tuple[str, ...] = ("station", "mood")) -> dict:
    """Train every arm × task × seed, score on val, write ``ablation.json``, ``ablation.md`` and
    ``ablation.png`` into ``out_dir``; returns the JSON object. ``only``: claims whose text
    contains one of these words (default: all); ``tasks``: which tasks to test."""
    from tqdm import tqdm

    cfg = cfg or AblationConfig()
    if cfg.seeds < 2:
        raise MungError("ablation needs at least 2 seeds for a paired comparison")
    claims = [c for c in CLAIMS if (not only or any(w in c[0] for w in only)) and c[1] in tasks]
    if not claims:
        raise MungError(f"no claim matches {only}")
    out_dir = Path(out_dir)
    for name in ("ablation.json", "ablation.md", "ablation.png"):
        check_writable(out_dir / name, force)
    data = _subset(read_dataset(data_path), cfg.max_per_station)
    cache = MelCache(MelConfig(), cache_dir)
    val = data.split("val")
    ys, ym = encode(val, data.stations, data.moods)
    arm_cfg = arms(cfg)
    needed = {(a, t) for _, t, a, _, _ in claims if a != "ensemble"} | {("base", t) for _, t, *_ in claims}
    with_ensemble = any(c[2] == "ensemble" for c in claims)
    if with_ensemble:
        needed |= {(a, t) for a in ENSEMBLE_MEMBERS for t in tasks}
    if any(c[2] == "attention" for c in claims):
        needed |= {("base", t) for t in METRIC}
    order = sorted(needed, key=lambda k: (k[0] == "attention", k))  # attention needs the baselines
    scores: dict[str, dict[str, list[dict]]] = {}
    jobs = [(a, t, s) for s in range(cfg.seeds) for a, t in order]
    bar = tqdm(jobs, desc="ablate", unit="run", disable=not progress)
    for arm, task, seed in bar:
        bar.set_postfix_str(f"{arm}/{task}/seed {seed}")
        over = dict(arm_cfg[arm])
        arm_kwargs = over.pop("model_kwargs", {})
        if over.get("model") in (None, "attention"):  # the baseline network
            kwargs = {**cfg.base_kwargs, "aggregation": "gru", **arm_kwargs}
        else:
            kwargs = arm_kwargs
        if arm == "attention":
            kwargs["base"] = "speakernet"
            other = "mood" if task == "station" else "station"
            over["aux"] = str(out_dir / "runs" / f"base-{other}-{seed}")
        tc = MusicTrainConfig(task=task, model="speakernet", model_kwargs=kwargs, epochs=cfg.epochs,
                         batch_size=cfg.batch_size, crop_frames=cfg.crop_frames, patience=cfg.epochs,
                         lr=cfg.lr[task], seed=seed)
        tc = replace(tc, **over)
        run_dir = _run_dir(out_dir, arm, task, seed)
        metrics = _finished(run_dir, tc)
        if metrics is None:
            metrics = train(tc, data_path, run_dir, force=True, progress=False, data=data,
                            cache=cache).metrics
        scores.setdefault(arm, {}).setdefault(task, []).append(metrics)
    raw_val = [cache.raw(t.path) for t in val] if with_ensemble else []
    for task in tasks if with_ensemble else ():
        for seed in range(cfg.seeds):
            members = Ensemble([_run_dir(out_dir, a, task, seed) for a in ENSEMBLE_MEMBERS])
            p = members.predict_mels(raw_val)[task]
            m = station_metrics(ys, p) if task == "station" else mood_metrics(ym, p, data.moods)
            scores.setdefault("ensemble", {}).setdefault(task, []).append(m)
            best = max((scores[a][task][seed] for a in ENSEMBLE_MEMBERS), key=lambda r: r[METRIC[task]])
            scores.setdefault("best member", {}).setdefault(task, []).append(best)
    result = {"config": cfg.__dict__, "data": str(data_path), "train_clips": len(data.split("train")),
              "val_clips": len(val), "claims": _claims(claims, scores, cfg.seeds), "runs": scores}
    write_json(out_dir / "ablation.json", result, force)
    write_text(out_dir / "ablation.md", report_markdown(result), force)
    _plot(result["claims"], out_dir / "ablation.png", force)
    return result


def _run_dir(out_dir: Path, arm: str, task: str, seed: int) -> Path:
    return out_dir / "runs" / f"{arm.replace(' ', '_')}-{task}-{seed}"


def _finished(run_dir: Path, tc: MusicTrainConfig) -> dict | None:
    """Validation metrics of an earlier run with the same settings (so an interrupted ablation
    resumes), else ``None``. Reads the checkpoint's metadata only."""
    path = run_dir / CHECKPOINT_NAME
    if not path.exists():
        return None
    meta = read_meta(path)
    same = json.loads(json.dumps(meta.get("train_config"))) == json.loads(
        json.dumps({k: v for k, v in asdict(tc).items() if k != "mel"}))
    return meta["val_metrics"] if same else None


def _claims(claims: list[tuple], scores: dict, seeds: int) -> list[dict]:
    rows = []
    for claim, task, arm, ref, direction in claims:
        metric_names = [METRIC[task]] + (["mood_micro_f1@0.5"] if task == "mood" else [])
        for metric in metric_names:
            v = np.array([r[metric] for r in scores[arm][task]])
            b = np.array([r[metric] for r in scores[ref][task]])
            verdict_, p = verdict(v - b, direction)
            sd = (lambda a: float(a.std(ddof=1))) if seeds > 1 else (lambda a: 0.0)
            rows.append({"claim": claim, "task": task, "metric": metric, "baseline": ref, "variant": arm,
                         "baseline_mean": float(b.mean()), "baseline_std": sd(b),
                         "variant_mean": float(v.mean()), "variant_std": sd(v),
                         "difference": float((v - b).mean()), "claimed": direction, "p_value": p,
                         "verdict": verdict_ if metric == METRIC[task] else f"({verdict_})"})
    return rows


def report_markdown(result: dict) -> str:
    """The summary table (verdicts on the primary metric; mood micro-F1 rows in parentheses)."""
    cfg = result["config"]
    head = (f"Ablation on {result['data']} — {result['train_clips']} train / {result['val_clips']} "
            f"val clips, {cfg['seeds']} seeds, {cfg['epochs']} epochs, "
            f"baseline: SpeakerNet {cfg['base_kwargs']} + GRU, "
            f"{cfg['crop_frames']}-frame crops, Adam lr {cfg['lr']}"
            f"{' (QUICK smoke run)' if cfg['quick'] else ''}.\n\n"
            "| claim | task | metric | baseline | variant | difference | seed says | p | verdict |\n"
            "|---|---|---|---|---|---|---|---|---|\n")
    arrow = {"+": "↑", "-": "↓", "=": "="}
    body = "".join(
        f"| {r['claim']} | {r['task']} | {r['metric']} "
        f"| {r['baseline_mean']:.3f} ± {r['baseline_std']:.3f} "
        f"| {r['variant_mean']:.3f} ± {r['variant_std']:.3f} | {r['difference']:+.3f} "
        f"| {arrow[r['claimed']]} "
        f"| {r['p_value']:.2f} | {r['verdict']} |\n" for r in result["claims"])
    rule = ("\nVerdict: paired two-sided t-test over seeds on the primary metric (station accuracy; mood "
            "macro PR-AUC); a difference counts when p < 0.1 and |difference| ≥ 0.02. Claimed ↑/↓: agrees if "
            "a counting difference has the claimed sign, disagrees if the opposite, else inconclusive. "
            "Claimed =: agrees if |difference| < 0.02, disagrees if the difference counts, else "
            "inconclusive. Mood micro-F1@0.5 verdicts are shown in parentheses.\n")
    return head + body + rule


def _plot(rows: list[dict], path: Path, force: bool) -> None:
    rows = [r for r in rows if not r["verdict"].startswith("(")]
    with figure(path, (10, 0.35 * len(rows) + 1.2), force=force) as (_, ax):
        y = np.arange(len(rows))
        ax.barh(y - 0.2, [r["baseline_mean"] for r in rows], 0.4, xerr=[r["baseline_std"] for r in rows],
                label="baseline", color="#999")
        ax.barh(y + 0.2, [r["variant_mean"] for r in rows], 0.4, xerr=[r["variant_std"] for r in rows],
                label="variant", color="#3a7")
        ax.set_yticks(y, [f"{r['claim']} [{r['task']}] — {r['verdict']}" for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("station accuracy / mood macro PR-AUC (mean ± std over seeds)")
        ax.legend(fontsize=7)

