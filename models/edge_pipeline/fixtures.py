"""Tiny ONNX models that break the engine's contract, one way each, for the Rust tests.

python -m edge_pipeline.fixtures OUT_DIR
"""
from __future__ import annotations

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper, numpy_helper

F = 4


def _model(nodes, inputs, outputs, inits=()):
    g = helper.make_graph(nodes, "fixture", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def _mean_rows(inp="x", out="y"):
    return helper.make_node("ReduceMean", [inp], [out], axes=[1], keepdims=0)


def fixtures() -> dict[str, onnx.ModelProto]:
    w = numpy_helper.from_array(np.ones((F, 1), np.float32), "w")
    return {
        # A valid minimal model: score = mean of the row. Proves the fixtures' base is sound.
        "valid_mean.onnx": _model([_mean_rows()], [_vi("x", T.FLOAT, ["N", F])], [_vi("y", T.FLOAT, ["N"])]),
        "two_inputs.onnx": _model(
            [helper.make_node("Add", ["x", "x2"], ["s"]), _mean_rows("s")],
            [_vi("x", T.FLOAT, ["N", F]), _vi("x2", T.FLOAT, ["N", F])],
            [_vi("y", T.FLOAT, ["N"])],
        ),
        "two_outputs.onnx": _model(
            [_mean_rows(), helper.make_node("ReduceMax", ["x"], ["z"], axes=[1], keepdims=0)],
            [_vi("x", T.FLOAT, ["N", F])],
            [_vi("y", T.FLOAT, ["N"]), _vi("z", T.FLOAT, ["N"])],
        ),
        "int_input.onnx": _model(
            [helper.make_node("Cast", ["x"], ["xf"], to=T.FLOAT), _mean_rows("xf")],
            [_vi("x", T.INT32, ["N", F])],
            [_vi("y", T.FLOAT, ["N"])],
        ),
        "rank3_input.onnx": _model(
            [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1, 2], keepdims=0)],
            [_vi("x", T.FLOAT, ["N", F, 2])],
            [_vi("y", T.FLOAT, ["N"])],
        ),
        "dynamic_features.onnx": _model(
            [_mean_rows()], [_vi("x", T.FLOAT, ["N", "F"])], [_vi("y", T.FLOAT, ["N"])]
        ),
        "output_rank2.onnx": _model(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            [_vi("x", T.FLOAT, ["N", F])],
            [_vi("y", T.FLOAT, ["N", 1])],
            [w],
        ),
        "output_int.onnx": _model(
            [_mean_rows(out="m"), helper.make_node("Cast", ["m"], ["y"], to=T.INT64)],
            [_vi("x", T.FLOAT, ["N", F])],
            [_vi("y", T.INT64, ["N"])],
        ),
        "output_per_feature.onnx": _model(
            [helper.make_node("ReduceMean", ["x"], ["y"], axes=[0], keepdims=0)],
            [_vi("x", T.FLOAT, ["N", F])],
            [_vi("y", T.FLOAT, [F])],
        ),
    }


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    for name, m in fixtures().items():
        onnx.save(m, os.path.join(out, name))


if __name__ == "__main__":
    main(sys.argv[1])
