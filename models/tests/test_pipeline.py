"""The pipeline on small slices: CSV handling, metrics, export, quantization, artifacts."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from edge_pipeline import export
from edge_pipeline.data import DataError, load_csv, shuttle_path, sliding_windows
from edge_pipeline.metrics import at_threshold, roc_auc
from edge_pipeline.pipeline import Options, run

MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_roc_auc_known_values():
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5  # ties count half
    with pytest.raises(ValueError):
        roc_auc(np.array([0, 0]), np.array([0.1, 0.2]))


def test_at_threshold_counts():
    m = at_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.9, 0.8, 0.2]), 0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    assert m["precision"] == 0.5 and m["recall"] == 0.5


def test_csv_errors_name_the_line(tmp_path):
    p = write(tmp_path, "bad.csv", "a,b\n1,2\n3,x\n")
    with pytest.raises(DataError, match=r"bad.csv:3: non-numeric"):
        load_csv(p)
    p = write(tmp_path, "nan.csv", "a,b\n1,nan\n")
    with pytest.raises(DataError, match=r":2: NaN"):
        load_csv(p)
    p = write(tmp_path, "short.csv", "a,b\n1\n")
    with pytest.raises(DataError, match="1 fields"):
        load_csv(p)
    with pytest.raises(DataError, match="not in header"):
        load_csv(write(tmp_path, "ok.csv", "a,b\n1,2\n"), features=["c"])
    with pytest.raises(DataError, match="label column"):
        load_csv(write(tmp_path, "ok2.csv", "a,b\n1,2\n"), label="y")


def test_feature_selection_and_labels(tmp_path):
    p = write(tmp_path, "d.csv", "t,a,b,y\n0,1,2,0\n1,3,4,1\n")
    ds = load_csv(p, features=["b", "a"], label="y")
    assert ds.features == ["b", "a"]
    assert ds.x.tolist() == [[2, 1], [4, 3]]
    assert ds.y.tolist() == [0, 1]


def test_sliding_windows():
    from edge_pipeline.data import Dataset

    ds = Dataset(["v"], np.arange(6, dtype=float)[:, None], np.array([0, 0, 0, 1, 0, 0]), "s")
    w = sliding_windows(ds, 3)
    assert w.x.shape == (4, 3)
    assert w.x[1].tolist() == [1, 2, 3]
    assert w.y.tolist() == [0, 1, 1, 1]
    assert w.features == ["v[t-2]", "v[t-1]", "v[t-0]"]
    with pytest.raises(DataError):
        sliding_windows(Dataset(["a", "b"], np.zeros((5, 2)), None, "s"), 3)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    ds = load_csv(shuttle_path(), None, "anomaly", limit=3000)
    meta = run(ds, Options(out_dir=str(out), epochs=3, golden_rows=8, sample_rows=50))
    return out, meta


def test_run_writes_contract_models(small_run):
    out, meta = small_run
    for kind in ("f32", "int8"):
        m = onnx.load(str(out / f"model.{kind}.onnx"))
        assert [i.name for i in m.graph.input] == ["sensor_data"]
        assert [o.name for o in m.graph.output] == ["anomaly_score"]
        dims = m.graph.input[0].type.tensor_type.shape.dim
        assert dims[0].dim_param == "batch_size" and dims[1].dim_value == 9
        assert m.opset_import[0].version == 17
    ops = {n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node}
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    assert meta["models"]["int8"]["bytes"] < meta["models"]["f32"]["bytes"]


def test_run_metrics_and_metadata(small_run):
    out, meta = small_run
    saved = json.loads((out / "metadata.json").read_text())
    assert saved == meta
    assert saved["features"] == [f"f{i}" for i in range(1, 10)]
    assert saved["threshold"] > 0
    assert 0.5 < saved["models"]["f32"]["roc_auc"] <= 1.0  # learns something in 3 epochs
    assert 0 <= saved["int8_vs_f32"]["flag_agreement"] <= 1


def test_golden_matches_a_fresh_onnxruntime_run(small_run):
    out, _ = small_run
    g = json.loads((out / "golden.json").read_text())
    x = np.asarray(g["rows"], dtype=np.float32)
    np.testing.assert_allclose(export.ort_scores(str(out / "model.f32.onnx"), x), g["batch_scores"]["f32"], rtol=1e-6)
    per_row = export.ort_scores(str(out / "model.int8.onnx"), x, per_row=True)
    np.testing.assert_allclose(per_row, g["scores"]["int8"], rtol=1e-6)


def test_model_folds_normalization(small_run):
    """Raw readings in: the ONNX score equals numpy's score on standardized, clipped input."""
    out, meta = small_run
    import onnx.numpy_helper as nh

    m = onnx.load(str(out / "model.f32.onnx"))
    w = {i.name: nh.to_array(i) for i in m.graph.initializer}
    g = json.loads((out / "golden.json").read_text())
    x = np.asarray(g["rows"], dtype=np.float64)
    clip = meta["normalization"]["clip"]
    xn = np.clip((x - meta["normalization"]["mean"]) / meta["normalization"]["std"], -clip, clip)
    h = xn
    for i in range(6):
        h = h @ w[f"W{i}"] + w[f"B{i}"]
        if i < 5:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(((h - xn) ** 2).mean(axis=1), g["batch_scores"]["f32"], rtol=1e-4)


def test_cli_on_a_users_univariate_csv(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(1200)
    v = np.sin(t / 10) + rng.normal(0, 0.05, len(t))
    lab = np.zeros(len(t), dtype=int)
    # Late in the series: --window splits in time order, so only the latest readings are tested.
    v[1100:1110] += 3
    lab[1100:1110] = 1
    csv = tmp_path / "series.csv"
    csv.write_text("time,value,fault\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(t, v, lab)))
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "edge_pipeline", "--csv", str(csv), "--features", "value",
         "--label", "fault", "--window", "16", "--epochs", "5", "--out", str(out), "--sample-rows", "10"],
        cwd=MODELS, capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "metadata.json").read_text())
    assert len(meta["features"]) == 16
    assert meta["models"]["f32"]["roc_auc"] > 0.9


def test_cli_reports_bad_csv_cleanly(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b\n1,oops\n")
    r = subprocess.run([sys.executable, "-m", "edge_pipeline", "--csv", str(csv), "--out", str(tmp_path / "o")],
                       cwd=MODELS, capture_output=True, text=True)
    assert r.returncode == 2
    assert "non-numeric" in r.stderr and "Traceback" not in r.stderr


def test_shipped_models_match_their_metadata():
    meta = json.loads(open(os.path.join(MODELS, "shuttle", "metadata.json")).read())
    import hashlib

    for kind in ("f32", "int8"):
        path = os.path.join(MODELS, "shuttle", meta["models"][kind]["file"])
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == meta["models"][kind]["sha256"]
        assert meta["models"][kind]["roc_auc"] > 0.99


def test_weight_only_int8_reference(small_run, tmp_path):
    """The engine's default int8 semantics: quantized weights, float activations, so a reading
    scores the same alone or in a batch, and the graph has no integer matmul left."""
    out, meta = small_run
    wo = tmp_path / "wo.onnx"
    assert export.dequantize_weights(str(out / "model.int8.onnx"), str(wo)) == 6
    ops = {n.op_type for n in onnx.load(str(wo)).graph.node}
    assert "MatMulInteger" not in ops and "DynamicQuantizeLinear" not in ops
    g = json.loads((out / "golden.json").read_text())
    np.testing.assert_allclose(g["scores"]["int8_weight_only"], g["batch_scores"]["int8_weight_only"], rtol=1e-5)
    x = np.asarray(g["rows"], dtype=np.float32)
    np.testing.assert_allclose(export.ort_scores(str(wo), x), g["batch_scores"]["int8_weight_only"], rtol=1e-6)
    assert 0 <= meta["int8_weight_only_vs_f32"]["flag_agreement"] <= 1


def test_run_writes_the_held_out_score_distribution(small_run):
    out, meta = small_run
    saved = json.loads((out / "metadata.json").read_text())
    pairs = saved["score_quantiles"]
    levels, edges = [q for q, _ in pairs], [s for _, s in pairs]
    assert levels == sorted(levels) and 0 < levels[0] and levels[-1] < 1
    assert all(b > a for a, b in zip(edges, edges[1:]))
    # The rate is measured on the rows the threshold was taken from (the 0.99 quantile).
    assert 0.0 <= saved["expected_anomaly_rate"] <= 0.05
    # Same scores: the levels around the threshold bracket the share at or below it.
    rate, thr = saved["expected_anomaly_rate"], saved["threshold"]
    below = [q for q, s in pairs if s < thr]
    above = [q for q, s in pairs if s > thr]
    assert (below[-1] if below else 0.0) - 0.01 <= 1 - rate <= (above[0] if above else 1.0) + 0.01


def test_tabular_rows_keep_the_random_split_and_get_baselines(small_run):
    out, meta = small_run
    assert meta["split"]["kind"] == "random" and "gap" not in meta["split"]
    # Tabular exports are as before: no range guard, every layer int8 per tensor.
    assert meta["score"]["range_guard"] is None
    assert meta["int8"] == {"weights": "per tensor", "float_layers": []}
    ev = meta["evaluation"]
    assert ev["split"]["kind"] == "random"
    assert ev["split"]["test_anomalies"] == meta["split"]["test_anomalies"] > 0
    assert ev["split"]["val_normal"] == meta["split"]["val_normal"]
    # The model's figures are the f32 model's at the metadata threshold, as in "models".
    assert ev["model"]["roc_auc"] == meta["models"]["f32"]["roc_auc"]
    assert ev["model"]["threshold"] == meta["threshold"]
    assert ev["model"]["precision"] == meta["models"]["f32"]["at_threshold"]["precision"]
    assert ev["baselines"]["zscore"]["rule"] == "max over features of |z|"
    assert 1 <= ev["baselines"]["pca"]["components"] < 9
    for m in (ev["model"], ev["model_device"], *ev["baselines"].values()):
        for k in ("roc_auc", "pr_auc", "precision", "recall"):
            assert 0.0 <= m[k] <= 1.0
