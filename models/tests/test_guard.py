"""The range guard of window models: its fixed layers compute what ``RangeGuard.scores`` says,
the exported graph adds it to the reconstruction error (f32 and int8), each kind of sensor
fault moves the score of a window that the reconstruction error alone misses, and the whitened
level sees an offset that a cycle hides from the window's plain mean."""
import numpy as np
import onnx
import pytest

from edge_pipeline import export
from edge_pipeline.autoencoder import Autoencoder
from edge_pipeline.guard import CHANNELS, GuardError, RangeGuard, directions, statistics
from edge_pipeline.metrics import roc_auc
from edge_pipeline.synthetic import normal_signal

F, CLIP = 16, 6.0


def normal_windows(n=3000, seed=0):
    """Standardized windows of a noisy sine: each row 16 consecutive readings."""
    rng = np.random.default_rng(seed)
    t = np.arange(n + F)
    series = np.sin(2 * np.pi * t / 200) + rng.normal(0, 0.1, len(t))
    x = np.lib.stride_tricks.sliding_window_view(series, F)[:n]
    return (x - x.mean(axis=0)) / x.std(axis=0)


@pytest.fixture(scope="module")
def fitted():
    xn = normal_windows()
    return xn, RangeGuard.fit(xn, mse_train=0.05, clip=CLIP)


def test_the_layers_compute_the_guard_term(fitted):
    xn, guard = fitted
    probe = np.concatenate([xn[:200], xn[:50] + 3.0, np.repeat(xn[:50, :1], F, axis=1)])
    (w0, b0), (w1, b1) = guard.layers(F)
    u = np.maximum(probe @ w0 + b0, 0.0) @ w1 + b1
    lo, hi = guard.bounds()
    assert u.shape[1] == CHANNELS == len(lo)
    term = ((u - np.minimum(np.maximum(u, lo), hi)) ** 2).mean(axis=1)
    np.testing.assert_allclose(term, guard.scores(probe), rtol=1e-9, atol=1e-12)


def test_normal_windows_sit_mostly_inside_the_range(fitted):
    xn, guard = fitted
    s = statistics(xn, guard.weights)
    inside = ((s >= guard.lo) & (s <= guard.hi)).all(axis=1).mean()
    assert inside > 0.99
    # Inside the range only the soft terms beyond their band count: small against mse_train.
    assert np.median(guard.scores(xn)) < 2 * guard.mse_train


@pytest.mark.parametrize("fault", ["spike", "level_shift", "frozen", "noise_burst"])
def test_each_fault_scores_far_above_normal(fitted, fault):
    xn, guard = fitted
    w = xn[100:200].copy()
    if fault == "spike":
        w[:, 7] += 5.0
    elif fault == "level_shift":
        w += 3.0
    elif fault == "frozen":
        w[:] = w[:, :1]
    else:
        w += np.random.default_rng(1).normal(0, 1.0, w.shape)
    normal_top = np.quantile(guard.scores(xn), 0.99)
    assert np.median(guard.scores(w)) > 5 * normal_top, fault


def test_fit_refuses_single_reading_windows():
    with pytest.raises(GuardError):
        RangeGuard.fit(np.zeros((10, 1)), 0.1, CLIP)


def test_layers_refuse_a_window_of_another_length(fitted):
    with pytest.raises(GuardError, match="16 readings, not 32"):
        fitted[1].layers(32)


def test_the_whitened_statistics_have_unit_spread_and_reduce_to_the_mean_without_a_shape():
    xn = normal_windows()
    w = directions(xn)
    np.testing.assert_allclose((xn @ w[:, :2]).std(axis=0), 1.0, rtol=0.02)
    np.testing.assert_array_equal(w[:, 2], np.eye(F)[-1])  # the newest reading as it is
    # Independent readings: the best estimate of an offset is the plain mean.
    noise = np.random.default_rng(5).normal(size=(20000, F))
    level = directions(noise)[:, 0]
    np.testing.assert_allclose(level / level.mean(), 1.0, atol=0.1)
    # A constant series still fits (the ridge keeps the covariance invertible).
    assert np.isfinite(directions(np.zeros((50, F)))).all()


def test_the_whitened_level_sees_an_offset_the_cycle_hides_from_the_plain_mean():
    """Issue 16: in a series with a cycle, a window's plain mean moves with the cycle's phase
    more than a beginning drift moves it; the whitened level measures the offset against the
    shape the training windows have. The synthetic suite's normal signal (a 200-reading cycle,
    noise, a wandering level), windows of 64, an offset of 0.5 (five times the noise)."""
    f, n = 64, 12000
    series, _ = normal_signal(n, np.random.default_rng(4))
    x = np.lib.stride_tricks.sliding_window_view(series, f)
    train, test = x[: n // 2], x[n // 2 + f :]
    mean, std = train.mean(axis=0), train.std(axis=0)
    train_xn, test_xn = (train - mean) / std, (np.r_[test, test + 0.5] - mean) / std
    labels = np.r_[np.zeros(len(test)), np.ones(len(test))]
    w = directions(train_xn)[:, 0]
    whitened = roc_auc(labels, np.abs(test_xn @ w - (train_xn @ w).mean()))
    plain = roc_auc(labels, np.abs(test_xn.mean(axis=1) - train_xn.mean()))
    assert whitened > 0.75 and whitened > plain + 0.2, (whitened, plain)  # 0.82, 0.55


def test_exported_graph_adds_the_guard_in_f32_and_int8(fitted, tmp_path):
    xn, guard = fitted
    rng = np.random.default_rng(3)
    ae = Autoencoder.init(F, rng)
    mean, std = np.full(F, 0.5), np.full(F, 2.0)
    f32, int8 = str(tmp_path / "m.onnx"), str(tmp_path / "m.int8.onnx")
    export.save(export.build_model(ae, mean, std, CLIP, "guarded", guard), f32)
    export.quantize_int8(f32, int8, per_channel=True, keep_float=export.series_float_layers(ae))
    raw = np.concatenate([xn[:64], xn[:16] + 4.0]) * std + mean
    want = ae.scores(np.clip(xn_of(raw, mean, std), -CLIP, CLIP)) + guard.scores(
        np.clip(xn_of(raw, mean, std), -CLIP, CLIP))
    np.testing.assert_allclose(export.ort_scores(f32, raw), want, rtol=1e-4, atol=1e-5)
    # The guard's layers and the last two decoder layers stay float; the others are int8.
    q = onnx.load(int8)
    float_matmuls = {n.name for n in q.graph.node if n.op_type == "MatMul"}
    assert float_matmuls == {"guard0_MatMul", "guard1_MatMul", "dense4_MatMul", "dense5_MatMul"}
    assert sum(n.op_type == "MatMulInteger" for n in q.graph.node) == len(ae.weights) - 2
    wo = str(tmp_path / "wo.onnx")
    assert export.dequantize_weights(int8, wo) == len(ae.weights) - 2
    got = export.ort_scores(wo, raw)
    np.testing.assert_allclose(got[64:], want[64:], rtol=0.05)  # shifted: the guard dominates


def xn_of(raw, mean, std):
    return (raw - mean) / std
