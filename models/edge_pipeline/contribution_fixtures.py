"""The engine's contribution fixtures (``tests/fixtures/contributions/``), with onnxruntime's
shares as the reference (``contributions``). Written by
``python -m edge_pipeline.contributions fixtures [OUT_DIR]``.

  shuttle.json          the shipped shuttle model (``models/shuttle``): its 32 golden rows and
                        32 held-out normal rows with one channel moved (every channel, flagged by
                        both flavours)
  window/               a small guarded window model the pipeline trains on a seeded synthetic
                        series (model.f32.onnx, model.int8.onnx, metadata.json) and
                        reference.json: held-out windows, normal and anomalous
  multichannel/         the known-answer case's tabular model on six correlated synthetic
                        channels (model.f32.onnx, model.int8.onnx, metadata.json) and
                        injected.json: held-out readings with one channel moved

shuttle.json and reference.json: ``features``, ``rows`` (raw readings), ``labels`` (1:
anomalous or injected), ``threshold``, and per flavour (``f32``; ``int8_weight_only``, the int8
model with its weights dequantized, as the engine runs it) ``scores``, ``shares`` (``F`` per
row) and ``guard`` (one per row), ``tolerance`` and ``reference``; shuttle.json also
``injected`` (per row null, or ``{"channel": j, "magnitude": k}``: column ``j`` moved by ``k`` of
its standard deviations).

injected.json: ``features``, ``rows``, ``channel`` and ``magnitude`` per row, ``threshold``, and
per flavour ``flagged`` (rows above the threshold), ``first`` (of those, the rows whose largest
share is the injected channel's), ``rate`` (``first / flagged``) and ``top`` (the largest share's
column per row).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile

import numpy as np
import onnxruntime

from . import contributions, known_answer
from .data import sliding_windows
from .pipeline import Options, run
from .split import time_split
from .synthetic import KINDS, generate

DEFAULT_OUT = os.path.join(os.path.dirname(known_answer.MODELS), "tests", "fixtures",
                           "contributions")
FLAVOURS = ("f32", "int8_weight_only")
MODEL_FILES = ("model.f32.onnx", "model.int8.onnx", "metadata.json")
# tract and onnxruntime both compute in f32; shares of the shuttle rows differ from a float64
# forward pass by under 1e-5.
TOLERANCE = {"scores": {"rtol": 1e-3, "atol": 1e-5}, "shares": {"atol": 1e-4}}
REFERENCE = (f"onnxruntime {onnxruntime.__version__} CPUExecutionProvider, 1 thread: the input "
             "of the reconstruction ReduceMean and the guard's ReduceMean as extra outputs")
DECIMALS = 4  # raw readings written to the fixtures are rounded to this many decimals

INJECTED_ROWS = 32
INJECTED_MAGNITUDES = (-6.0, -4.0, -3.0, 3.0, 4.0, 6.0)
WINDOW = 16
WINDOW_SERIES = dict(n=4000, seed=3,
                     events={"spike": 10, "level_shift": 3, "drift": 2, "frozen": 3,
                             "noise_burst": 3})
WINDOW_EPOCHS = 8
WINDOW_ROWS = 16  # of each: normal and anomalous held-out windows
MULTICHANNEL_BASE_ROWS = 12


def _flavours(model_dir: str) -> dict:
    return {"f32": contributions.load(os.path.join(model_dir, "model.f32.onnx")),
            "int8_weight_only": contributions.weight_only(os.path.join(model_dir,
                                                                       "model.int8.onnx"))}


def reference(models: dict, rows: np.ndarray) -> dict:
    out = {}
    for name, model in models.items():
        c = contributions.explain(model, rows)
        out[name] = {"scores": c.scores.astype(float).tolist(), "shares": c.shares.tolist(),
                     "guard": c.guard.tolist()}
    return out


def _write_json(path: str, value: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(value, fh)
        fh.write("\n")


def shuttle(out: str) -> dict:
    with open(os.path.join(known_answer.SHUTTLE, "golden.json")) as fh:
        golden = json.load(fh)
    with open(os.path.join(known_answer.SHUTTLE, "metadata.json")) as fh:
        meta = json.load(fh)
    models = _flavours(known_answer.SHUTTLE)
    features, base = known_answer.heldout_normal(os.path.join(known_answer.SHUTTLE, "sample.csv"))
    std = np.array(meta["normalization"]["std"])
    rng = np.random.default_rng(0)
    rows, injected = [], []
    for i in rng.permutation(len(base)):
        j = len(rows) % len(features)
        k = float(rng.choice(INJECTED_MAGNITUDES))
        x = base[i].copy()
        x[j] = round(x[j] + k * std[j], DECIMALS)
        flagged = all(contributions.explain(m, x[None]).scores[0] > meta["threshold"]
                      for m in models.values())
        if flagged:
            rows.append(x)
            injected.append({"channel": j, "magnitude": k})
        if len(rows) == INJECTED_ROWS:
            break
    x = np.concatenate([np.array(golden["rows"]), np.array(rows)])
    fixture = {
        "features": features,
        "rows": x.tolist(),
        "labels": golden["labels"] + [1] * len(rows),
        "injected": [None] * len(golden["rows"]) + injected,
        "threshold": meta["threshold"],
        **reference(models, x),
        "tolerance": TOLERANCE,
        "reference": REFERENCE,
    }
    _write_json(os.path.join(out, "shuttle.json"), fixture)
    return fixture


def _spread(idx: np.ndarray, k: int) -> np.ndarray:
    return idx[np.linspace(0, len(idx) - 1, min(k, len(idx))).astype(int)]


def window(out: str) -> dict:
    series = generate(KINDS, **WINDOW_SERIES)
    ds = sliding_windows(series.dataset(), WINDOW)
    d = os.path.join(out, "window")
    with tempfile.TemporaryDirectory() as tmp:
        opt = Options(out_dir=tmp, epochs=WINDOW_EPOCHS, seed=WINDOW_SERIES["seed"],
                      golden_rows=8, sample_rows=10, test_fraction=0.3)
        meta = run(ds, opt)
        _copy_models(tmp, d)
    split = time_split(ds.y, WINDOW, opt.val_fraction, opt.test_fraction, opt.gap)
    test = split.test
    pick = np.concatenate([_spread(test[ds.y[test] == 0], WINDOW_ROWS),
                           _spread(test[ds.y[test] == 1], WINDOW_ROWS)])
    x = np.round(ds.x[pick], DECIMALS)
    fixture = {
        "features": ds.features,
        "rows": x.tolist(),
        "labels": ds.y[pick].astype(int).tolist(),
        "threshold": meta["threshold"],
        **reference(_flavours(d), x),
        "tolerance": TOLERANCE,
        "reference": REFERENCE,
    }
    _write_json(os.path.join(d, "reference.json"), fixture)
    return fixture


def multichannel(out: str) -> dict:
    d = os.path.join(out, "multichannel")
    with tempfile.TemporaryDirectory() as tmp:
        meta, heldout = known_answer.train_multichannel(tmp)
        _copy_models(tmp, d)
    rng = np.random.default_rng(0)
    base = heldout[np.sort(rng.choice(len(heldout), MULTICHANNEL_BASE_ROWS, replace=False))]
    inj = known_answer.inject(base, np.array(meta["normalization"]["std"]))
    inj.x = np.round(inj.x, DECIMALS)
    fixture = {
        "features": meta["features"],
        "rows": inj.x.tolist(),
        "channel": inj.channel.astype(int).tolist(),
        "magnitude": inj.magnitude.tolist(),
        "threshold": meta["threshold"],
    }
    for name, model in _flavours(d).items():
        c = contributions.explain(model, inj.x)
        fig = known_answer.top1(model, inj, meta["threshold"])
        fixture[name] = {"flagged": fig.flagged, "first": fig.first, "rate": fig.rate,
                         "top": np.argmax(c.shares, axis=1).astype(int).tolist()}
    fixture["reference"] = REFERENCE
    _write_json(os.path.join(d, "injected.json"), fixture)
    return fixture


def _copy_models(src: str, dst: str) -> None:
    os.makedirs(dst, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))


def write_all(out: str = DEFAULT_OUT) -> None:
    # quantize_dynamic logs a pre-processing hint for every model; these need none.
    logging.getLogger().setLevel(logging.ERROR)
    shuttle(out)
    window(out)
    multichannel(out)
