"""Music metrics against scikit-learn on hand cases."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from mung.music.metrics import mood_metrics, organisers_micro_f1, station_metrics, tune_threshold


def test_station_metrics_hand_case():
    y = np.array([0, 0, 1, 2, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 2, 0, 2]]
    m = station_metrics(y, probs)
    assert m["station_accuracy"] == 4 / 6
    assert np.isclose(m["station_macro_f1"], f1_score(y, [0, 1, 1, 2, 0, 2], average="macro"))


def test_organisers_micro_f1_uses_truth_and_predictions():
    truth = [["calm", "sad"], ["happy"], []]
    pred = [["calm"], ["happy", "angry"], ["sad"]]
    # by hand: tp = 2 (calm, happy), fp = 2 (angry, sad), fn = 1 (sad) → 2·2 / (2·2 + 2 + 1)
    assert np.isclose(organisers_micro_f1(truth, pred), 4 / 7)


def test_mood_metrics_match_sklearn():
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=float)
    s = np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.6], [0.7, 0.3, 0.2], [0.2, 0.1, 0.1]])
    m = mood_metrics(y, s, ["a", "b", "c"], threshold=0.3)
    assert np.isclose(m["mood_macro_pr_auc"], average_precision_score(y, s, average="macro"))
    assert np.isclose(m["mood_macro_roc_auc"], roc_auc_score(y, s, average="macro"))
    assert np.isclose(m["mood_micro_f1@0.5"], f1_score(y, s >= 0.5, average="micro"))
    assert np.isclose(m["mood_micro_f1@tuned"], f1_score(y, s >= 0.3, average="micro"))


def test_tags_without_positives_are_left_out_of_auc():
    y = np.array([[1, 0], [0, 0], [1, 0]], dtype=float)
    s = np.array([[0.8, 0.1], [0.3, 0.2], [0.6, 0.9]])
    m = mood_metrics(y, s, ["a", "b"])
    assert m["mood_macro_pr_auc"] == 1.0


def test_tuned_threshold_is_best_on_grid():
    y = np.array([[1, 0], [0, 1]], dtype=float)
    s = np.array([[0.3, 0.1], [0.05, 0.25]])
    t = tune_threshold(y, s)
    assert 0.1 < t <= 0.25
