"""The synthetic anomaly series, the per-kind suite (model vs z-score vs PCA through the whole
pipeline) and a --window run of the CLI writing the evaluation block.

The suite prints its figures (``pytest -s`` shows them). It asserts floors that held in every
run we made, with room, that the model (reconstruction error plus the range guard) ranks at
least as well as both baselines on every kind, that its ROC-AUC averages at least 0.95 over the
five kinds, and that int8 flags agree with f32 flags on at least 99% of test
rows. The full suite (40 epochs, three seeds): ``python -m edge_pipeline.suite``.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_pipeline.suite import WINDOW, agreement, figures, format_row, header, run_kind
from edge_pipeline.synthetic import (EVENTS, KINDS, SyntheticError, correlated_channels, generate,
                                     normal_signal)

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_generate_is_seeded():
    a, b = generate(n=15000, seed=4), generate(n=15000, seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.events == b.events
    assert not np.array_equal(a.values, generate(n=15000, seed=5).values)


def test_all_kinds_by_default_non_overlapping_and_labelled_exactly():
    s = generate(n=15000, seed=1)
    assert len(s.values) == 15000 and np.all(np.isfinite(s.values))
    assert {e.kind for e in s.events} == set(KINDS)
    assert [e.start for e in s.events] == sorted(e.start for e in s.events)
    for a, b in zip(s.events, s.events[1:]):
        assert b.start - a.end >= 64
    expected = np.zeros(15000, dtype=np.int64)
    for e in s.events:
        expected[e.start : e.end] = 1
    np.testing.assert_array_equal(s.labels, expected)
    # Spread over the series: the last fifth has some, as a time-ordered test part needs.
    assert any(e.start > 12000 for e in s.events)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_alone_has_its_shape(kind):
    n, seed = 12000, 2
    s = generate(kind, n=n, seed=seed)
    assert [e.kind for e in s.events] == [kind] * EVENTS[kind]
    # generate() draws the normal signal first, so the injected part is the difference.
    base, noise = normal_signal(n, np.random.default_rng(seed))
    diff = s.values - base
    np.testing.assert_array_equal(diff[s.labels == 0], 0.0)
    for e in s.events:
        d, v = diff[e.start : e.end], s.values[e.start : e.end]
        if kind == "spike":
            assert e.end - e.start == 1 and 2.5 <= abs(d[0]) <= 5.0
        elif kind == "level_shift":
            assert np.ptp(d) < 1e-9 and 1.5 <= abs(d[0]) <= 3.0
        elif kind == "drift":
            assert d[0] == 0.0 and 1.5 <= abs(d[-1]) <= 3.0
            np.testing.assert_allclose(np.diff(d), np.diff(d)[0], atol=1e-12)  # linear
        elif kind == "frozen":
            assert np.ptp(v) == 0.0 and v[0] == s.values[e.start - 1]
        else:
            assert np.std(d) > 2 * noise  # bursts have 4 to 8 times the noise
    assert len(generate([kind, "spike"], n=n, seed=seed).events) == EVENTS[kind] + (
        EVENTS["spike"] if kind != "spike" else 0)


def test_generate_errors():
    with pytest.raises(SyntheticError, match="unknown"):
        generate("glitch")
    with pytest.raises(SyntheticError, match="do not fit"):
        generate("drift", n=2000)
    assert len(generate("level_shift", n=3000, events={"level_shift": 2}).events) == 2


# The suite: each kind alone, the whole pipeline (split, train, export, int8, evaluation).
SUITE = {"n": 12000, "window": WINDOW, "epochs": 8, "seed": 0}
# Lower bounds on test-part ROC-AUC that held, with room, in every run we made with windows of
# 64 (seeds 0-5 at 40 epochs, seed 0 at 8, 16 and 40 on 12,000 readings; lowest: drift 0.808,
# the z-score on level shifts 0.696), where the model also came within 0.003 of the better
# baseline on every kind.
FLOORS = {
    "spike": {"model": 0.98, "pca": 0.9},
    "noise_burst": {"model": 0.95, "pca": 0.9},
    "level_shift": {"model": 0.95, "zscore": 0.65},
    "drift": {"model": 0.75},
    "frozen": {"model": 0.9},
}
# Ties at the top (spike: model and PCA both 1.000) are not losses.
BEATS_MARGIN = 0.005
TARGET_MEAN = 0.95  # the least mean ROC-AUC over the five kinds the model must reach
_RUNS: dict = {}


def suite_run(kind: str) -> dict:
    """The CI configuration's run of one kind, once per session."""
    if kind not in _RUNS:
        _RUNS[kind] = run_kind(kind, seed=SUITE["seed"], n=SUITE["n"], window=SUITE["window"],
                               epochs=SUITE["epochs"])
    return _RUNS[kind]


@pytest.mark.parametrize("kind", KINDS)
def test_suite_kind(kind):
    ev = suite_run(kind)
    print(format_row(kind, figures(ev), agreement(ev)))
    sp = ev["split"]
    assert sp["kind"] == "time_ordered" and sp["gap"] >= SUITE["window"]
    assert sp["test_anomalies"] > 0 and sp["test_normal"] > 0
    for name, (roc, pr) in figures(ev).items():
        assert 0.0 <= roc <= 1.0 and 0.0 <= pr <= 1.0, name
    for name, m in (("model", ev["model"]), *ev["baselines"].items()):
        assert 0.0 <= m["precision"] <= 1.0 and 0.0 <= m["recall"] <= 1.0, name
    for name, floor in FLOORS.get(kind, {}).items():
        assert figures(ev)[name][0] >= floor, (kind, name, figures(ev)[name])
    roc = {name: f[0] for name, f in figures(ev).items()}
    assert roc["model"] >= max(roc["zscore"], roc["pca"]) - BEATS_MARGIN, (kind, roc)
    onnxruntime_int8, device_int8 = agreement(ev)
    assert onnxruntime_int8 >= 0.99 and device_int8 >= 0.99, (kind, agreement(ev))


def test_suite_mean_reaches_the_target():
    """Issue 16: mean ROC-AUC of at least 0.95 over the five kinds (0.927 with windows of 16
    and the guard before whitened statistics)."""
    runs = {kind: suite_run(kind) for kind in KINDS}
    print("\nsynthetic suite, test-part ROC-AUC / PR-AUC", SUITE)
    print(header())
    for kind, ev in runs.items():
        print(format_row(kind, figures(ev), agreement(ev)))
    mean = {s: float(np.mean([figures(ev)[s][0] for ev in runs.values()]))
            for s in ("model", "zscore", "pca")}
    print("mean ROC-AUC", {s: round(v, 3) for s, v in mean.items()})
    assert mean["model"] >= TARGET_MEAN, mean


def test_cli_window_run_writes_the_evaluation_block(tmp_path):
    csv = tmp_path / "series.csv"
    generate(["spike", "level_shift"], n=6000, seed=3,
             events={"spike": 20, "level_shift": 6}).write_csv(str(csv))
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "edge_pipeline", "--csv", str(csv), "--features", "value",
         "--label", "anomaly", "--window", "12", "--gap", "20", "--epochs", "3",
         "--out", str(out), "--sample-rows", "10", "--golden-rows", "8"],
        cwd=MODELS, capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "metadata.json").read_text())
    # The fields the device reads are still there.
    for key in ("threshold", "version", "features", "score_quantiles", "expected_anomaly_rate",
                "models", "normalization"):
        assert key in meta, key
    assert meta["threshold"] == meta["evaluation"]["model"]["threshold"]
    # Series get the range guard and per-column int8 with the guard and the decoder's end float.
    assert meta["score"]["range_guard"]["statistics"] == ["level", "slope", "newest", "roughness"]
    assert meta["int8"] == {"weights": "per output column",
                            "float_layers": ["guard0", "guard1", "dense4", "dense5"]}
    split = meta["split"]
    assert split["kind"] == "time_ordered" and split["window"] == 12 and split["gap"] == 20
    ev = meta["evaluation"]
    assert ev["split"]["gap"] == 20 and ev["split"]["test_anomalies"] == split["test_anomalies"] > 0
    parts = ev["split"]["parts"]
    assert parts["train"][1] + 20 == parts["val"][0] and parts["val"][1] + 20 == parts["test"][0]
    for m in (ev["model"], ev["model_device"], ev["baselines"]["zscore"], ev["baselines"]["pca"]):
        for k in ("roc_auc", "pr_auc", "precision", "recall"):
            assert 0.0 <= m[k] <= 1.0
    assert ev["model"]["roc_auc"] == meta["models"]["f32"]["roc_auc"]
    summary = json.loads(r.stdout)
    assert summary["evaluation"]["split"] == "time_ordered"
    assert set(summary["evaluation"]) == {"split", "model", "zscore", "pca"}
    assert "ROC-AUC" in r.stderr and "zscore" in r.stderr and "gap 20 readings" in r.stderr


def test_cli_refuses_a_gap_shorter_than_the_window(tmp_path):
    csv = tmp_path / "series.csv"
    generate("spike", n=3000, seed=0, events={"spike": 5}).write_csv(str(csv))
    r = subprocess.run(
        [sys.executable, "-m", "edge_pipeline", "--csv", str(csv), "--features", "value",
         "--window", "16", "--gap", "4", "--out", str(tmp_path / "o")],
        cwd=MODELS, capture_output=True, text=True,
    )
    assert r.returncode == 2
    assert "at least the window length" in r.stderr and "Traceback" not in r.stderr


def test_cli_no_guard_scores_by_reconstruction_alone(tmp_path):
    csv = tmp_path / "series.csv"
    generate("frozen", n=4000, seed=2, events={"frozen": 4}).write_csv(str(csv))
    base = [sys.executable, "-m", "edge_pipeline", "--csv", str(csv), "--features", "value",
            "--label", "anomaly", "--epochs", "2", "--sample-rows", "10", "--golden-rows", "8"]
    r = subprocess.run([*base, "--window", "16", "--no-guard", "--out", str(tmp_path / "o")],
                       cwd=MODELS, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert meta["score"]["range_guard"] is None
    assert meta["int8"]["float_layers"] == ["dense4", "dense5"]
    r = subprocess.run([*base, "--no-guard", "--out", str(tmp_path / "t")],
                       cwd=MODELS, capture_output=True, text=True)
    assert r.returncode == 2 and "--no-guard needs --window" in r.stderr


def test_correlated_channels_are_seeded_and_share_three_signals():
    names, x = correlated_channels(3000, seed=1)
    assert names == ["ch1", "ch2", "ch3", "ch4", "ch5", "ch6"] and x.shape == (3000, 6)
    np.testing.assert_array_equal(x, correlated_channels(3000, seed=1)[1])
    xn = (x - x.mean(axis=0)) / x.std(axis=0)
    spread = np.linalg.svd(xn, compute_uv=False) / np.sqrt(len(xn))
    assert (spread[:3] > 0.3).all() and (spread[3:] < 0.1).all()
