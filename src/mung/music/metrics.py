"""Music metrics: station accuracy / macro-F1 / confusion matrix; mood micro-F1
at 0.5 the organisers' way, micro-F1 at a tuned threshold, macro ROC-AUC and PR-AUC."""

from __future__ import annotations

import os

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.preprocessing import MultiLabelBinarizer

from mung.plots import figure


def station_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Top-1 accuracy and macro-F1 over the labels of the vocabulary."""
    pred = probs.argmax(1)
    labels = list(range(probs.shape[1]))
    return {
        "station_accuracy": float((pred == y_true).mean()),
        "station_macro_f1": float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)),
    }


def organisers_micro_f1(truth: list[list[str]], pred: list[list[str]]) -> float:
    """The Rush5 scorer: a label binarizer fitted on truth + predictions, then micro-F1."""
    mlb = MultiLabelBinarizer().fit(list(truth) + list(pred))
    return float(f1_score(mlb.transform(truth), mlb.transform(pred), average="micro", zero_division=0))


def tags_at(scores: np.ndarray, moods: list[str], threshold: float) -> list[list[str]]:
    return [[moods[j] for j in np.flatnonzero(row >= threshold)] for row in scores]


def tune_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """Threshold (0.02..0.9) with the best micro-F1 on ``y``."""
    grid = np.round(np.arange(0.02, 0.9, 0.01), 2)
    f1 = [f1_score(y, scores >= t, average="micro", zero_division=0) for t in grid]
    return float(grid[int(np.argmax(f1))])


def mood_metrics(y: np.ndarray, scores: np.ndarray, moods: list[str], threshold: float = 0.5) -> dict:
    """Micro-F1 at 0.5 (organisers' way) and at ``threshold``; macro ROC-AUC / PR-AUC over tags
    that have both positive and negative examples."""
    truth = tags_at(y, moods, 0.5)
    ok = (y.sum(0) > 0) & (y.sum(0) < len(y))
    out = {
        "mood_micro_f1@0.5": organisers_micro_f1(truth, tags_at(scores, moods, 0.5)),
        "mood_micro_f1@tuned": organisers_micro_f1(truth, tags_at(scores, moods, threshold)),
        "mood_threshold": float(threshold),
        "mood_macro_roc_auc": float("nan"),
        "mood_macro_pr_auc": float("nan"),
    }
    if ok.any():
        out["mood_macro_roc_auc"] = float(roc_auc_score(y[:, ok], scores[:, ok], average="macro"))
        out["mood_macro_pr_auc"] = float(average_precision_score(y[:, ok], scores[:, ok], average="macro"))
    return out


def plot_confusion(y_true: np.ndarray, probs: np.ndarray, labels: list[str], path: os.PathLike,
                   force: bool = False, title: str = "station confusion") -> None:
    """Confusion-matrix PNG (rows: truth, columns: prediction)."""
    cm = confusion_matrix(y_true, probs.argmax(1), labels=list(range(len(labels))))
    with figure(path, (1.2 + 0.6 * len(labels), 1.0 + 0.6 * len(labels)), force=force) as (_, ax):
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
        ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels,
               yticklabels=labels, xlabel="predicted", ylabel="true", title=title)
