"""What each input column and each channel contributes to a model's score, computed with
onnxruntime: the reference the engine's explanations (``src/engine/explain.rs``) are checked
against.

A score is ``s = mean_j t_j + g``: ``t_j = (recon_j - xn_j)**2`` the squared reconstruction error
of input column ``j`` in the model's own space (the standardized, clipped input of the pipeline's
models, whose standardization is in the graph; the raw input of models whose output is the
reconstruction) and ``g`` the range guard's term of window models (``guard.py``; 0 otherwise).
Column ``j``'s share is ``c_j = t_j / (F * s)`` and the guard's ``c_g = g / s``, so a reading's
shares sum to 1; a score that is not a positive number has no shares (all 0).

The ``t_j`` are read from the graph itself: the input of the ``ReduceMean`` that averages the
squared reconstruction error, made an extra output of a copy of the model. A window model has a
second ``ReduceMean`` for the guard, told apart by what it squares: ``u - bounded(u)`` with
``bounded`` a chain of ``Clip``/``Min``/``Max`` of ``u``; its output is ``g``.

A channel is a sensor: a tabular model's column, or all the columns ``name[t-k]`` of a window
over sensor ``name`` (``data.sliding_windows``), whose shares add up. The guard's share goes to
the channel when the model has exactly one; with several it is attributed to none.

Regenerate the engine's fixtures in ``tests/fixtures/contributions/`` (from models/; trains two
small models, a few seconds; ``contribution_fixtures`` lists the files and their keys):
  python -m edge_pipeline.contributions fixtures [OUT_DIR]
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

from . import export

BOUNDING_OPS = ("Clip", "Min", "Max")
WINDOW_COLUMN = re.compile(r"^(?P<channel>.+)\[t-\d+\]$")


class ContributionError(ValueError):
    """The model's graph does not show where its reconstruction terms are."""


@dataclass(frozen=True)
class Terms:
    """Where a score model's pieces are: tensor names in its graph."""

    score: str  # the [batch] score output
    terms: str  # the [batch, F] squared reconstruction errors
    guard: str | None  # the [batch] range guard term, when the model has one


@dataclass
class Contributions:
    scores: np.ndarray  # [n] the model's scores (float32, as onnxruntime gives them)
    shares: np.ndarray  # [n, F] c_j
    guard: np.ndarray  # [n] c_g


@dataclass
class ChannelShares:
    names: list[str]  # channels in the order their first column appears
    shares: np.ndarray  # [n, C]
    unattributed: np.ndarray  # [n] the guard's share when no single channel takes it


def _squared(node: onnx.NodeProto, consts: dict) -> str | None:
    """The tensor that ``node`` squares (``Mul(a, a)`` or ``Pow(a, 2)``), else None."""
    if node.op_type == "Mul" and len(node.input) == 2 and node.input[0] == node.input[1]:
        return node.input[0]
    if node.op_type == "Pow" and np.all(consts.get(node.input[1], np.nan) == 2.0):
        return node.input[0]
    return None


def _bounds(value: str, of: str, producer: dict, consts: dict) -> bool:
    """Whether ``value`` is ``of`` passed through Clip/Min/Max against constants only."""
    while value != of:
        node = producer.get(value)
        if node is None or node.op_type not in BOUNDING_OPS:
            return False
        moving = node.input[:1] if node.op_type == "Clip" else [
            i for i in node.input if i not in consts]
        if len(moving) != 1:
            return False
        value = moving[0]
    return True


def locate(model: onnx.ModelProto) -> Terms:
    """The score output, the reconstruction terms and the guard term of a score model."""
    g = model.graph
    if len(g.output) != 1:
        raise ContributionError(f"expected one output, the graph has {len(g.output)}")
    producer = {o: n for n in g.node for o in n.output}
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node
                   if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"})
    recon, guard = [], []
    for mean in (n for n in g.node if n.op_type == "ReduceMean"):
        square = producer.get(mean.input[0])
        base = _squared(square, consts) if square is not None else None
        diff = producer.get(base) if base is not None else None
        if diff is None or diff.op_type != "Sub":
            continue
        a, b = diff.input
        if _bounds(b, a, producer, consts) or _bounds(a, b, producer, consts):
            guard.append(mean.output[0])
        else:
            recon.append(mean.input[0])
    if len(recon) != 1 or len(guard) > 1:
        raise ContributionError(
            f"expected one ReduceMean of a squared reconstruction error and at most one of a "
            f"range guard, found {len(recon)} and {len(guard)}")
    return Terms(g.output[0].name, recon[0], guard[0] if guard else None)


def _value_info(model: onnx.ModelProto, name: str) -> onnx.ValueInfoProto:
    inferred = shape_inference.infer_shapes(model)
    for vi in inferred.graph.value_info:
        if vi.name == name:
            return vi
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def instrument(model: onnx.ModelProto, terms: Terms) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs are the score, the terms and (if any) the guard term."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for name in (terms.terms, terms.guard):
        if name is not None:
            out.graph.output.append(_value_info(model, name))
    return out


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def load(model: str | onnx.ModelProto) -> onnx.ModelProto:
    """A model given as a path or already loaded."""
    return onnx.load(model) if isinstance(model, (str, os.PathLike)) else model


def weight_only(int8_path: str) -> onnx.ModelProto:
    """The int8 model as the engine runs it: weights dequantized into float matmuls."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "weight_only.onnx")
        export.dequantize_weights(int8_path, path)
        return onnx.load(path)


def score_terms(model: str | onnx.ModelProto,
                x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(scores [n], t [n, F], g [n])`` of raw readings ``x`` from onnxruntime. A model whose
    output is the reconstruction ``[batch, F]`` scores the mean of ``(recon - x)**2``."""
    m = load(model)
    x = np.asarray(x, dtype=np.float32)
    if len(m.graph.output) == 1 and len(m.graph.output[0].type.tensor_type.shape.dim) == 2:
        sess = _session(m)
        recon = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        t = (recon - x) ** 2
        return t.mean(axis=1, dtype=np.float32), t, np.zeros(len(x), np.float32)
    where = locate(m)
    sess = _session(instrument(m, where))
    names = [where.score, where.terms] + ([where.guard] if where.guard else [])
    got = sess.run(names, {sess.get_inputs()[0].name: x})
    scores, t = got[0], got[1]
    if t.shape != x.shape:
        raise ContributionError(f"reconstruction terms of shape {t.shape} for input {x.shape}")
    g = got[2] if where.guard else np.zeros(len(x), np.float32)
    return scores, t, g


def shares_of(scores: np.ndarray, t: np.ndarray, g: np.ndarray) -> Contributions:
    """``c_j = t_j / (F s)`` and ``c_g = g / s``; zero where ``s`` is not a positive number."""
    s = np.asarray(scores, np.float64)
    ok = np.isfinite(s) & (s > 0)
    safe = np.where(ok, s, 1.0)
    shares = np.where(ok[:, None], t / (t.shape[1] * safe[:, None]), 0.0)
    guard = np.where(ok, g / safe, 0.0)
    return Contributions(np.asarray(scores, np.float32), shares, guard)


def explain(model: str | onnx.ModelProto, x: np.ndarray) -> Contributions:
    """Scores and shares of raw readings ``x`` (``[n, F]``) under ``model`` (a path or a proto)."""
    return shares_of(*score_terms(model, x))


def channel_of(feature: str) -> str:
    """``value[t-3]`` -> ``value``; any other name is its own channel."""
    m = WINDOW_COLUMN.match(feature)
    return m.group("channel") if m else feature


def channel_shares(features: list[str], c: Contributions) -> ChannelShares:
    if len(features) != c.shares.shape[1]:
        raise ContributionError(f"{len(features)} feature names for {c.shares.shape[1]} columns")
    of = [channel_of(f) for f in features]
    names = list(dict.fromkeys(of))
    shares = np.zeros((len(c.shares), len(names)))
    for j, name in enumerate(of):
        shares[:, names.index(name)] += c.shares[:, j]
    if len(names) == 1:
        shares[:, 0] += c.guard
        return ChannelShares(names, shares, np.zeros(len(c.guard)))
    return ChannelShares(names, shares, c.guard.copy())


def top_k(names: list[str], shares: np.ndarray, k: int) -> list[tuple[str, float]]:
    """The ``k`` largest shares of one reading, largest first; ties in column order."""
    order = np.argsort(-np.asarray(shares), kind="stable")[:k]
    return [(names[i], float(shares[i])) for i in order]


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "fixtures" or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    from . import contribution_fixtures

    contribution_fixtures.write_all(argv[1] if len(argv) > 1 else contribution_fixtures.DEFAULT_OUT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
