"""Evaluation metrics without scikit-learn: ROC-AUC by ranks, PR-AUC (average precision),
precision/recall at a threshold, and ``summary`` which bundles them for metadata.json.

Higher scores mean "more anomalous"; label 1 is the anomaly (positive) class.
"""
from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both classes")
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    # Runs of tied scores share the average of the ranks they span (1-based).
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    last = np.r_[first[1:], len(s)] - 1
    ranks = np.empty(len(s), dtype=np.float64)
    ranks[order] = np.repeat((first + last) / 2.0 + 1.0, last - first + 1)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """PR-AUC as average precision: the sum over thresholds of (recall step) x precision.

    Every distinct score is one threshold ("flag when score >= it"), so tied scores enter and
    leave together, as in scikit-learn's ``average_precision_score``."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise ValueError("average precision needs at least one positive")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    # The last index of each run of tied scores closes one threshold.
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last]
    flagged = last + 1
    precision = tp / flagged
    recall = tp / n_pos
    steps = np.diff(np.r_[0.0, recall])
    return float((steps * precision).sum())


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    labels = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) > threshold
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def summary(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """ROC-AUC, PR-AUC and the counts at ``threshold`` of one scorer on one test set; the AUCs
    are ``None`` when the set lacks a class (an unlabelled or anomaly-free test part)."""
    labels = np.asarray(labels).astype(bool)
    both = bool(labels.any() and (~labels).any())
    return {
        "roc_auc": roc_auc(labels, scores) if both else None,
        "pr_auc": average_precision(labels, scores) if both else None,
        "threshold": float(threshold),
        **at_threshold(labels, scores, threshold),
        "positives": int(labels.sum()),
        "rows": int(labels.size),
    }
