"""The test-part evaluation in metadata.json (``evaluation``): the model beside two baselines.

Every scorer is judged on the same test rows (``split.test``) with a threshold chosen the same
way, a quantile of its own scores on the validation rows only (``split.val``), so the figures
say whether the autoencoder adds anything over a z-score or a PCA on this data:

  "evaluation": {
    "split": {"kind": "time_ordered" | "random", sizes, and for time_ordered the gap, parts},
    "threshold_rule": "...",
    "model": {roc_auc, pr_auc, precision, recall, ...},          the f32 model
    "model_device": {...},                                       int8 as the device scores it
    "baselines": {"zscore": {...}, "pca": {...}}
  }

``roc_auc`` and ``pr_auc`` are ``null`` when the test part lacks anomalies (or normal rows).
"""
from __future__ import annotations

import numpy as np

from .baselines import PCA, ZScore
from .metrics import summary
from .split import Split


def evaluate(x: np.ndarray, labels: np.ndarray, split: Split, model_scores: dict,
             threshold: float, quantile: float, windowed: bool) -> dict:
    """``model_scores`` maps a name (``model``, ``model_device``) to its scores of
    ``x[split.test]``; they share ``threshold``, the model's (from its validation scores)."""
    yt = labels[split.test]
    out = {
        "split": {**split.info, **split.sizes(labels)},
        "threshold_rule": f"quantile {quantile} of each scorer's scores on the validation "
                          "(normal) rows; the test part is never used to choose it",
    }
    for name, scores in model_scores.items():
        out[name] = summary(yt, scores, threshold)
    train, val, test = x[split.train], x[split.val], x[split.test]
    baselines = {}
    for name, b in (("zscore", ZScore.fit(train, windowed)), ("pca", PCA.fit(train))):
        thr = float(np.quantile(b.scores(val), quantile))
        baselines[name] = {**b.describe(), **summary(yt, b.scores(test), thr)}
    out["baselines"] = baselines
    return out


def table(evaluation: dict) -> str:
    """A few lines for the CLI: one row per scorer, the split on top."""
    sp = evaluation["split"]
    head = f"test part ({sp['kind']}"
    if sp["kind"] == "time_ordered":
        head += f", gap {sp['gap']} readings"
    head += f"): {sp['test_normal']} normal, {sp['test_anomalies']} anomalous rows"
    rows = [(name, evaluation[name]) for name in ("model", "model_device") if name in evaluation]
    rows += list(evaluation["baselines"].items())

    def f(v):
        return "   -  " if v is None else f"{v:6.3f}"

    lines = [head, f"{'scorer':<14}{'ROC-AUC':>8}{'PR-AUC':>8}{'precision':>11}{'recall':>8}"]
    for name, m in rows:
        lines.append(f"{name:<14}{f(m['roc_auc']):>8}{f(m['pr_auc']):>8}"
                     f"{f(m['precision']):>11}{f(m['recall']):>8}")
    return "\n".join(lines)
