"""The end-to-end run: split, train on normal rows, export, quantize, evaluate, write artifacts.

Windows of a series (``Dataset.window`` set) are split in time order with a gap, tabular rows
at random (``split.py``); the threshold is a quantile of validation scores, and the test part
scores the model beside a z-score and a PCA baseline (``evaluation.py``). A window model's score
adds the range guard (``guard.py``) to the reconstruction error, and its int8 file keeps the
guard and the last decoder layers float (``export.series_float_layers``); tabular models are
exported as before.

Artifacts in the output directory:
  model.f32.onnx, model.int8.onnx  the two models (raw readings in, one score per row out)
  metadata.json                    features, normalization, threshold, held-out score quantiles,
                                   metrics, the split and the test-part evaluation against the
                                   baselines (``evaluation``), version, hashes
  golden.json                      input rows + onnxruntime scores of both models, for tract tests
  sample.csv                       held-out rows (never trained on) with labels, for replay
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from . import export, golden
from .autoencoder import Autoencoder
from .data import Dataset
from .distribution import device_scores, score_distribution
from .evaluation import evaluate
from .guard import RangeGuard
from .metrics import at_threshold, roc_auc
from .split import random_split, time_split


@dataclass
class Options:
    out_dir: str
    name: str = "model"
    version: str = "1.0.0"
    epochs: int = 40
    seed: int = 7
    threshold_quantile: float = 0.99
    clip: float = 6.0
    golden_rows: int = 32
    sample_rows: int = 2000
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    gap: int | None = None  # readings between time-ordered parts; default the window length
    guard: bool = True  # window models: add the range guard (guard.py) to the score
    per_channel: bool | None = None  # int8 weight scales per column; default: window models


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def run(ds: Dataset, opt: Options) -> dict:
    rng = np.random.default_rng(opt.seed)
    n = ds.x.shape[0]
    labels = ds.y if ds.y is not None else np.zeros(n, dtype=np.int64)
    if ds.window:
        split = time_split(labels, ds.window, opt.val_fraction, opt.test_fraction, opt.gap)
    else:
        split = random_split(labels, rng, opt.val_fraction, opt.test_fraction)
    train_idx, val_idx, test_idx = split.train, split.val, split.test
    test_normal = test_idx[labels[test_idx] == 0]
    anomaly_idx = test_idx[labels[test_idx] == 1]  # the test part's anomalies
    evaluable = len(anomaly_idx) > 0 and len(test_normal) > 0

    mean = ds.x[train_idx].mean(axis=0)
    std = ds.x[train_idx].std(axis=0)
    # Constant columns would divide by zero; a unit scale keeps them harmless.
    std = np.where(std < 1e-6, 1.0, std)

    def norm(idx):
        return (ds.x[idx] - mean) / std

    ae = Autoencoder.init(ds.x.shape[1], rng)
    ae.fit(norm(train_idx), norm(val_idx), rng, epochs=opt.epochs)

    # Series get the range guard: level, slope, newest reading and roughness against their
    # training range. Tabular rows keep the plain reconstruction error (and their exports
    # unchanged).
    guard = None
    if ds.window and opt.guard:
        train_xn = np.clip(norm(train_idx), -opt.clip, opt.clip)
        guard = RangeGuard.fit(train_xn, float(ae.scores(train_xn).mean()), opt.clip)
    per_channel = bool(ds.window) if opt.per_channel is None else opt.per_channel
    keep_float = export.series_float_layers(ae, guard is not None) if ds.window else ()

    os.makedirs(opt.out_dir, exist_ok=True)
    f32_path = os.path.join(opt.out_dir, f"{opt.name}.f32.onnx")
    int8_path = os.path.join(opt.out_dir, f"{opt.name}.int8.onnx")
    export.save(export.build_model(ae, mean, std, opt.clip, f"{opt.name}-{opt.version}", guard),
                f32_path)
    export.quantize_int8(f32_path, int8_path, per_channel, keep_float)

    # Threshold: a high quantile of held-out *normal* scores, so it needs no labels.
    val_scores = export.ort_scores(f32_path, ds.x[val_idx])
    threshold = float(np.quantile(val_scores, opt.threshold_quantile))

    xt = ds.x[test_idx]
    s32 = export.ort_scores(f32_path, xt)
    # Per-row calls: how a live sensor is scored, and independent of what else is in a batch.
    s8 = export.ort_scores(int8_path, xt, per_row=True)
    models = {}
    for kind, path, scores in (("f32", f32_path, s32), ("int8", int8_path, s8)):
        entry = {
            "file": os.path.basename(path),
            "bytes": os.path.getsize(path),
            "sha256": _sha256(path),
        }
        if evaluable:
            yt = labels[test_idx]
            entry["roc_auc"] = roc_auc(yt, scores)
            entry["at_threshold"] = at_threshold(yt, scores, threshold)
        models[kind] = entry
    # The engine's default int8 semantics (weights dequantized, activations in f32).
    with tempfile.TemporaryDirectory() as tmp:
        wo_path = os.path.join(tmp, "weight_only.onnx")
        export.dequantize_weights(int8_path, wo_path)
        s8w = export.ort_scores(wo_path, xt)
    if evaluable:
        models["int8"]["weight_only_roc_auc"] = roc_auc(labels[test_idx], s8w)

    def deviation(s):
        dev = np.abs(s - s32)
        return {
            "max_abs_deviation": float(dev.max()),
            "max_rel_deviation": float((dev / np.maximum(np.abs(s32), 1e-12)).max()),
            "flag_agreement": float(((s > threshold) == (s32 > threshold)).mean()),
        }

    # The reference a device measures drift against: the threshold's rows, scored as it scores.
    distribution = score_distribution(device_scores(int8_path, ds.x[val_idx]), threshold)

    int8_vs_f32 = deviation(s8)
    int8_weight_only_vs_f32 = deviation(s8w)

    evaluation = evaluate(ds.x, labels, split, {"model": s32, "model_device": s8w}, threshold,
                          opt.threshold_quantile, windowed=bool(ds.window))

    # Golden rows: a fixed mix of held-out normal and anomalous readings.
    k = opt.golden_rows
    pick = np.concatenate([test_normal[: k - k // 4], anomaly_idx[: k // 4]])
    golden.write(opt.out_dir, golden.build(f32_path, int8_path, ds.x[pick], labels[pick].tolist(),
                                           ds.features))

    # Replay sample: held-out rows only, in a shuffled but fixed order, label kept for display.
    sample = rng.permutation(test_idx)[: opt.sample_rows]
    with open(os.path.join(opt.out_dir, "sample.csv"), "w") as fh:
        fh.write(",".join([*ds.features, "anomaly"]) + "\n")
        for i in sample:
            fh.write(",".join(f"{v:g}" for v in ds.x[i]) + f",{int(labels[i])}\n")

    meta = {
        "name": opt.name,
        "version": f"{opt.version}+{models['int8']['sha256'][:8]}",
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "source": ds.source,
        "input": export.INPUT,
        "output": export.OUTPUT,
        "features": ds.features,
        "normalization": {
            "mean": mean.tolist(),
            "std": std.tolist(),
            "clip": opt.clip,
            "folded_into_model": True,
        },
        "threshold": threshold,
        "threshold_rule": f"quantile {opt.threshold_quantile} of held-out normal scores (f32)",
        **distribution,
        "split": {
            "train_normal": int(len(train_idx)),
            "val_normal": int(len(val_idx)),
            "test_normal": int(len(test_normal)),
            "test_anomalies": int(len(anomaly_idx)),
            "seed": opt.seed,
            **{k: v for k, v in split.info.items() if k in ("kind", "window", "gap")},
        },
        "training": {"epochs_run": len(ae.history), "final": ae.history[-1]},
        "score": {
            "reconstruction": "mean squared error of the standardized input, clipped to +-clip",
            "range_guard": guard.describe() if guard is not None else None,
        },
        "int8": {"weights": "per output column" if per_channel else "per tensor",
                 "float_layers": list(keep_float)},
        "models": models,
        "int8_vs_f32": int8_vs_f32,
        "int8_weight_only_vs_f32": int8_weight_only_vs_f32,
        "evaluation": evaluation,
    }
    with open(os.path.join(opt.out_dir, "metadata.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
    return meta
