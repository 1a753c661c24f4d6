"""The held-out score distribution in metadata.json: quantiles, the expected anomaly rate, the
shipped package's figures reproduced from its own split and model."""
import json
import os
import shutil

import numpy as np
import pytest

from edge_pipeline import export
from edge_pipeline.data import load_csv, shuttle_path
from edge_pipeline.distribution import (QUANTILE_LEVELS, device_scores, refresh,
                                        score_distribution, split_normal)

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHUTTLE = os.path.join(MODELS, "shuttle")


def test_quantiles_and_rate_of_known_scores():
    scores = np.arange(1000, dtype=float)  # 0..999
    d = score_distribution(scores, threshold=989.5)
    levels = [q for q, _ in d["score_quantiles"]]
    assert levels == list(QUANTILE_LEVELS)
    by_level = dict(map(tuple, d["score_quantiles"]))
    assert by_level[0.5] == pytest.approx(499.5)
    assert by_level[0.99] == pytest.approx(989.01)
    assert d["expected_anomaly_rate"] == pytest.approx(0.010)  # 990..999
    assert "1000 rows" in d["score_quantiles_rule"]


def test_tied_quantiles_are_left_out_so_edges_ascend():
    scores = np.concatenate([np.zeros(600), np.linspace(1, 2, 400)])
    pairs = score_distribution(scores, 1.5)["score_quantiles"]
    edges = [s for _, s in pairs]
    assert all(b > a for a, b in zip(edges, edges[1:]))
    assert pairs[0] == [0.01, 0.0] and pairs[1][0] == 0.6  # 0.05..0.5 are all 0: dropped


@pytest.mark.parametrize("bad", [[], [0.1, float("nan")], [float("inf")]])
def test_non_finite_or_empty_scores_are_refused(bad):
    with pytest.raises(ValueError, match="finite"):
        score_distribution(np.array(bad, dtype=float), 0.5)


@pytest.fixture(scope="module")
def shuttle():
    return load_csv(shuttle_path(), None, "anomaly", "1")


def test_shipped_split_reproduces_the_threshold(shuttle):
    meta = json.loads(open(os.path.join(SHUTTLE, "metadata.json")).read())
    val, _, _ = split_normal(shuttle.y, np.random.default_rng(meta["split"]["seed"]), 0.15, 0.15)
    f32 = export.ort_scores(os.path.join(SHUTTLE, "model.f32.onnx"), shuttle.x[val])
    assert float(np.quantile(f32, 0.99)) == meta["threshold"]


def test_shipped_distribution_is_what_refresh_computes(shuttle, tmp_path):
    shipped = json.loads(open(os.path.join(SHUTTLE, "metadata.json")).read())
    for name in ("metadata.json", "model.int8.onnx"):
        shutil.copy(os.path.join(SHUTTLE, name), tmp_path / name)
    again = refresh(str(tmp_path), shuttle.x, shuttle.y)
    assert again == shipped
    edges = [s for _, s in shipped["score_quantiles"]]
    assert all(b > a for a, b in zip(edges, edges[1:]))
    # The threshold is the f32 model's 0.99 quantile; the int8 model lands close to it.
    assert 0.005 < shipped["expected_anomaly_rate"] < 0.02


def test_refresh_refuses_a_split_it_cannot_reproduce(shuttle, tmp_path):
    meta = json.loads(open(os.path.join(SHUTTLE, "metadata.json")).read())
    meta["split"]["val_normal"] += 1
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not reproduce"):
        refresh(str(tmp_path), shuttle.x, shuttle.y)
    assert json.loads((tmp_path / "metadata.json").read_text()) == meta  # left as it was


def test_device_scores_match_the_golden_weight_only_scores():
    g = json.loads(open(os.path.join(SHUTTLE, "golden.json")).read())
    got = device_scores(os.path.join(SHUTTLE, "model.int8.onnx"), np.asarray(g["rows"]))
    np.testing.assert_allclose(got, g["scores"]["int8_weight_only"], rtol=1e-5)
