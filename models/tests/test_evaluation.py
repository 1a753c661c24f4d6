"""Honest evaluation: time-ordered splits for windows, random splits for rows, PR-AUC and the
metric summary on hand-computed cases, and the z-score and PCA baselines."""
import itertools

import numpy as np
import pytest

from edge_pipeline.baselines import PCA, BaselineError, ZScore
from edge_pipeline.data import Dataset, sliding_windows
from edge_pipeline.distribution import split_normal
from edge_pipeline.evaluation import evaluate, table
from edge_pipeline.metrics import average_precision, roc_auc, summary
from edge_pipeline.split import SplitError, random_split, time_split
from edge_pipeline.synthetic import generate


# --- metrics ---------------------------------------------------------------------------------

def brute_roc_auc(y, s):
    """P(score of a positive > score of a negative), ties counting half: every pair."""
    pos, neg = s[y == 1], s[y == 0]
    return float(np.mean([1.0 if p > n else 0.5 if p == n else 0.0
                          for p, n in itertools.product(pos, neg)]))


def brute_average_precision(y, s):
    """Sum over distinct thresholds t (flag score >= t) of recall step x precision."""
    ap, prev_recall = 0.0, 0.0
    for t in sorted(set(s.tolist()), reverse=True):
        flagged = s >= t
        tp = int((flagged & (y == 1)).sum())
        recall = tp / int((y == 1).sum())
        ap += (recall - prev_recall) * tp / int(flagged.sum())
        prev_recall = recall
    return ap


def test_average_precision_known_values():
    y = np.array([0, 0, 1, 1])
    assert average_precision(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0  # perfect ranking
    # Reversed: the positives come 3rd and 4th, precision 1/3 then 2/4.
    assert average_precision(y, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(5 / 12)
    # Positives at ranks 1, 3, 5: (1 + 2/3 + 3/5) / 3.
    assert average_precision(np.array([1, 0, 1, 0, 1]), np.array([5, 4, 3, 2, 1.0])) == \
        pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # A tie flags both rows at once: precision 1/2 at recall 1/2, then 2/3 at recall 1.
    assert average_precision(np.array([1, 0, 1]), np.array([0.8, 0.8, 0.3])) == \
        pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5  # all tied
    with pytest.raises(ValueError, match="positive"):
        average_precision(np.array([0, 0]), np.array([0.1, 0.2]))


def test_roc_auc_with_ties_by_hand():
    # Positive 0.4 beats negative 0.1 and ties negative 0.4; positive 0.8 beats both.
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.4, 0.4, 0.8])) == 0.875


def test_metrics_agree_with_brute_force_on_tied_random_scores():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(5, 40))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = rng.integers(0, 6, n).astype(float)  # few distinct values: many ties
        assert roc_auc(y, s) == pytest.approx(brute_roc_auc(y, s))
        assert average_precision(y, s) == pytest.approx(brute_average_precision(y, s))


def test_summary_at_threshold_and_without_a_class():
    m = summary(np.array([0, 0, 1, 1]), np.array([0.1, 0.9, 0.8, 0.2]), 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["rows"], m["positives"]) == (1, 1, 1, 4, 2)
    assert m["precision"] == m["recall"] == 0.5 and m["roc_auc"] == 0.5
    none = summary(np.zeros(3), np.array([0.1, 0.2, 0.3]), 0.15)
    assert none["roc_auc"] is None and none["pr_auc"] is None and none["fp"] == 2


# --- splits ----------------------------------------------------------------------------------

def covered(idx, window):
    """The set of readings the windows starting at ``idx`` cover."""
    return set((idx[:, None] + np.arange(window)).ravel().tolist()) if len(idx) else set()


@pytest.mark.parametrize("window,gap", [(16, None), (5, 5), (8, 30)])
def test_time_split_never_lets_parts_share_or_neighbour_readings(window, gap):
    n_windows = 3000 - window + 1
    labels = np.zeros(n_windows, dtype=np.int64)
    labels[[10, 200, 2100, 2500, 2900]] = 1  # two in train, one in validation, two in test
    sp = time_split(labels, window, 0.15, 0.2, gap)
    g = window if gap is None else gap
    assert sp.kind == "time_ordered" and sp.info["gap"] == g >= window
    train, val, test = (covered(i, window) for i in (sp.train, sp.val, sp.test))
    assert not (train & val) and not (train & test) and not (val & test)
    # Time order, with at least `gap` readings no window of either side covers in between.
    assert max(train) < min(val) and max(val) < min(test)
    assert min(val) - max(train) - 1 >= g and min(test) - max(val) - 1 >= g
    # Readings parts as recorded, windows kept whole inside them.
    parts = sp.info["parts"]
    assert parts["train"][0] == 0 and parts["test"][1] == 3000
    assert max(test) == 2999 and parts["val"][0] - parts["train"][1] == g
    assert set(sp.test.tolist()) == set(range(parts["test"][0], n_windows))
    # Anomalous windows never train nor set the threshold; the test part keeps them.
    assert not labels[sp.train].any() and not labels[sp.val].any()
    assert labels[sp.test].sum() == 2
    sizes = sp.sizes(labels)
    assert sizes["test_anomalies"] == 2 and sizes["train_normal"] == len(sp.train)
    assert sp.info["windows"]["dropped_at_boundaries"] == 2 * (g + window - 1)


def test_time_split_refuses_a_small_gap_or_a_short_series():
    with pytest.raises(SplitError, match="at least the window"):
        time_split(np.zeros(1000, dtype=np.int64), 16, 0.15, 0.15, gap=8)
    with pytest.raises(SplitError, match="too short"):
        time_split(np.zeros(100, dtype=np.int64), 16, 0.15, 0.15)


def test_random_split_is_the_shuffled_split_of_normal_rows():
    labels = np.array([0] * 200 + [1] * 10)
    sp = random_split(labels, np.random.default_rng(7), 0.15, 0.15)
    val, test_normal, train = split_normal(labels, np.random.default_rng(7), 0.15, 0.15)
    assert sp.kind == "random" and sp.info == {"kind": "random"}
    np.testing.assert_array_equal(sp.val, val)
    np.testing.assert_array_equal(sp.train, train)
    np.testing.assert_array_equal(sp.test, np.concatenate([test_normal, np.arange(200, 210)]))
    assert np.any(np.diff(sp.train) < 0)  # shuffled, not in time order
    with pytest.raises(SplitError, match="too few"):
        random_split(np.zeros(20, dtype=np.int64), np.random.default_rng(0), 0.15, 0.15)


# --- baselines -------------------------------------------------------------------------------

def test_zscore_by_hand():
    train = np.array([[0.0, 10.0, 1.0], [2.0, 10.0, 3.0]])  # means 1, 10, 2; stds 1, 0 -> 1, 1
    x = np.array([[4.0, 10.0, 2.0], [1.0, 13.0, -3.0]])
    np.testing.assert_allclose(ZScore.fit(train, windowed=False).scores(x), [3.0, 5.0])
    last = ZScore.fit(train, windowed=True)  # the newest reading: the last column
    np.testing.assert_allclose(last.scores(x), [0.0, 5.0])
    assert "most recent" in last.describe()["rule"]
    with pytest.raises(BaselineError):
        ZScore.fit(np.zeros((1, 3)), windowed=False)


def test_pca_keeps_the_variance_and_scores_the_off_plane_part():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 500))
    train = np.stack([a, b, a + b, a - b], axis=1) + rng.normal(0, 0.01, (500, 4))
    pca = PCA.fit(train, variance=0.95)
    assert pca.describe()["components"] == 2 and pca.explained > 0.99
    on = np.array([[1.0, 2.0, 3.0, -1.0]])
    off = np.array([[1.0, 2.0, -3.0, 3.0]])
    assert pca.scores(on)[0] < 1e-3 < 0.5 < pca.scores(off)[0]
    # Never all components (the error would be 0 everywhere): one feature keeps none, z**2.
    one = PCA.fit(np.array([[0.0], [2.0]]))
    assert one.describe()["components"] == 0
    np.testing.assert_allclose(one.scores(np.array([[3.0]])), [4.0])


@pytest.mark.parametrize("kind", ["spike", "level_shift"])
def test_zscore_finds_spikes_and_level_shifts_reading_by_reading(kind):
    """Per reading (the tabular rule), fitted on the first half's normal readings."""
    s = generate(kind, n=8000, seed=11)
    half = len(s.values) // 2
    train = s.values[:half][s.labels[:half] == 0][:, None]
    z = ZScore.fit(train, windowed=False).scores(s.values[half:, None])
    assert roc_auc(s.labels[half:], z) >= 0.9


def test_evaluate_on_synthetic_windows_without_a_model():
    """The evaluation block on its own: a model that scores the PCA error is judged like it."""
    ds = sliding_windows(generate("noise_burst", n=6000, seed=5).dataset(), 12)
    sp = time_split(ds.y, 12, 0.2, 0.3)
    pca = PCA.fit(ds.x[sp.train])
    thr = float(np.quantile(pca.scores(ds.x[sp.val]), 0.99))
    ev = evaluate(ds.x, ds.y, sp, {"model": pca.scores(ds.x[sp.test])}, thr, 0.99, windowed=True)
    assert ev["split"]["kind"] == "time_ordered" and ev["split"]["test_anomalies"] > 0
    assert ev["model"] == {k: v for k, v in ev["baselines"]["pca"].items()
                           if k in ev["model"]}  # same scores, same threshold rule
    for m in (ev["model"], *ev["baselines"].values()):
        for k in ("roc_auc", "pr_auc", "precision", "recall"):
            assert 0.0 <= m[k] <= 1.0
    assert ev["baselines"]["pca"]["roc_auc"] >= 0.9
    text = table(ev)
    assert "gap 12 readings" in text and "zscore" in text and "pca" in text


def test_dataset_window_is_recorded_by_sliding_windows():
    ds = Dataset(["v"], np.arange(10, dtype=float)[:, None], None, "s")
    assert ds.window is None and sliding_windows(ds, 4).window == 4


def test_shipped_shuttle_model_beside_the_baselines():
    """The evaluation of the shipped package (read only): its own split, model and threshold
    reproduce the figures its metadata records, and the baselines are judged beside it."""
    import json
    import os

    from edge_pipeline import export
    from edge_pipeline.data import load_csv, shuttle_path
    from edge_pipeline.distribution import device_scores

    shuttle = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "shuttle")
    meta = json.loads(open(os.path.join(shuttle, "metadata.json")).read())
    ds = load_csv(shuttle_path(), None, "anomaly", "1")
    sp = random_split(ds.y, np.random.default_rng(meta["split"]["seed"]), 0.15, 0.15)
    xt = ds.x[sp.test]
    scores = {"model": export.ort_scores(os.path.join(shuttle, "model.f32.onnx"), xt),
              "model_device": device_scores(os.path.join(shuttle, "model.int8.onnx"), xt)}
    ev = evaluate(ds.x, ds.y, sp, scores, meta["threshold"], 0.99, windowed=False)
    print("\nshipped shuttle model\n" + table(ev))
    assert ev["model"]["roc_auc"] == meta["models"]["f32"]["roc_auc"]
    shipped = meta["models"]["f32"]["at_threshold"]
    assert {k: ev["model"][k] for k in shipped} == shipped
    assert abs(ev["model_device"]["roc_auc"] - meta["models"]["int8"]["roc_auc"]) < 1e-3
    # Fixed artifacts, so a fixed outcome: on shuttle the autoencoder ranks best.
    model_auc = ev["model"]["roc_auc"]
    assert all(model_auc > b["roc_auc"] for b in ev["baselines"].values())


def test_distribution_refresh_refuses_a_time_ordered_package(tmp_path):
    """refresh() re-draws the random split from the seed; a series package has no such split."""
    import json

    from edge_pipeline.distribution import refresh

    (tmp_path / "metadata.json").write_text(json.dumps(
        {"split": {"kind": "time_ordered", "seed": 7, "val_normal": 1}}))
    with pytest.raises(ValueError, match="random splits only"):
        refresh(str(tmp_path), np.zeros((10, 1)), np.zeros(10))
