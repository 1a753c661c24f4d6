"""The score distribution on held-out normal data, the reference a device measures drift against.

``metadata.json`` carries ``score_quantiles`` (``[q, score]`` pairs at ``QUANTILE_LEVELS``) and
``expected_anomaly_rate`` (the share of those scores above the threshold). The device bins its
own scores at these quantiles (bin ``i`` holds scores ``<= score_i`` and ``> score_{i-1}``, so the
expected share of a bin is the difference of the levels) and compares the shares (PSI).

The scores are the held-out normal split the threshold is taken on (``val_normal``), scored as
the device scores them: the int8 model with dequantized weights and float activations (the
engine's default, ``export.dequantize_weights``). The threshold itself is a quantile of the f32
model's scores on the same rows, so the int8 rate above it need not be exactly
``1 - threshold_quantile``: it is measured, not assumed.

``python -m edge_pipeline.distribution DIR`` rewrites an existing package's ``metadata.json``
with these fields, recomputed from the split its metadata records, leaving the model files as
they are (re-sign the directory afterwards).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

import numpy as np

from . import export
from .data import DataError, load_csv, shuttle_path

QUANTILE_LEVELS = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)

RULE = "int8 model with dequantized weights (as the device scores) on the val_normal split"


def split_normal(labels: np.ndarray, rng: np.random.Generator, val_fraction: float,
                 test_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal rows split into (val, test, train) indices; consumes one permutation of ``rng``,
    so a run with the same seed splits the same way."""
    normal_idx = rng.permutation(np.flatnonzero(labels == 0))
    n_val = max(1, int(len(normal_idx) * val_fraction))
    n_test = max(1, int(len(normal_idx) * test_fraction))
    if len(normal_idx) - n_val - n_test < 16:
        raise ValueError(f"too few normal rows to train ({len(normal_idx)})")
    return (normal_idx[:n_val], normal_idx[n_val : n_val + n_test],
            normal_idx[n_val + n_test :])


def score_distribution(scores: np.ndarray, threshold: float) -> dict:
    """``score_quantiles`` and ``expected_anomaly_rate`` of ``scores`` (held-out normal).

    Quantile scores are made strictly ascending (a tie, as from a saturated score, would make an
    empty bin the device can never fill): a level whose score equals the previous one is left
    out."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ValueError("held-out scores must be finite and not empty")
    pairs: list[list[float]] = []
    for q in QUANTILE_LEVELS:
        s = float(np.quantile(scores, q))
        if not pairs or s > pairs[-1][1]:
            pairs.append([q, s])
    return {
        "score_quantiles": pairs,
        "score_quantiles_rule": f"{RULE} ({scores.size} rows)",
        "expected_anomaly_rate": float((scores > threshold).mean()),
    }


def device_scores(int8_path: str, x: np.ndarray) -> np.ndarray:
    """Scores of ``x`` by the int8 model as the engine runs it (weights dequantized)."""
    with tempfile.TemporaryDirectory() as tmp:
        wo_path = os.path.join(tmp, "weight_only.onnx")
        export.dequantize_weights(int8_path, wo_path)
        return export.ort_scores(wo_path, x)


def refresh(model_dir: str, x: np.ndarray, labels: np.ndarray, val_fraction: float = 0.15,
            test_fraction: float = 0.15) -> dict:
    """Recomputes the distribution fields of ``model_dir/metadata.json`` from the dataset the
    package was trained on (``x``, ``labels``) and the seed its metadata records; other fields
    keep their values and order. Refuses when the split does not reproduce the recorded sizes."""
    path = os.path.join(model_dir, "metadata.json")
    with open(path, encoding="utf-8") as fh:
        meta = json.load(fh)
    split = meta["split"]
    if split.get("kind", "random") != "random":
        raise ValueError(f"refresh reproduces random splits only, not {split['kind']!r}")
    val, test, train = split_normal(labels, np.random.default_rng(split["seed"]), val_fraction,
                                    test_fraction)
    sizes = {"val_normal": len(val), "test_normal": len(test), "train_normal": len(train)}
    if any(split[k] != v for k, v in sizes.items()):
        raise ValueError(f"split {sizes} does not reproduce the recorded {split}")
    int8_path = os.path.join(model_dir, meta["models"]["int8"]["file"])
    meta.update(score_distribution(device_scores(int8_path, x[val]), meta["threshold"]))
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=2)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge_pipeline.distribution", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="model package trained on the bundled shuttle data")
    a = p.parse_args(argv)
    try:
        ds = load_csv(shuttle_path(), None, "anomaly", "1")
        meta = refresh(a.dir, ds.x, ds.y)
    except (DataError, OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    keys = ("version", "threshold", "expected_anomaly_rate", "score_quantiles")
    print(json.dumps({k: meta[k] for k in keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
