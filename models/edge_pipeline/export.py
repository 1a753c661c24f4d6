"""ONNX export of a trained autoencoder with standardization folded in, and int8 quantization.

The graph takes raw readings ``sensor_data`` [batch_size, F] (float32) and returns
``anomaly_score`` [batch_size]: the mean squared error between the standardized input and its
reconstruction. Opset 17, dynamic batch axis named ``batch_size``.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .autoencoder import Autoencoder

INPUT = "sensor_data"
OUTPUT = "anomaly_score"
BATCH = "batch_size"
OPSET = 17


def build_model(
    ae: Autoencoder, mean: np.ndarray, std: np.ndarray, clip: float, name: str
) -> onnx.ModelProto:
    """``clip`` bounds the standardized input to [-clip, clip]. Without it one wild reading in a
    batch stretches the per-tensor scale of the int8 model's dynamic activation quantization and
    drowns every other row's score in rounding noise; anomalies still score far above threshold.
    """
    f = len(mean)
    inits = [
        numpy_helper.from_array(mean.astype(np.float32), "norm_mean"),
        numpy_helper.from_array((1.0 / std).astype(np.float32), "norm_inv_std"),
        numpy_helper.from_array(np.array(-clip, np.float32), "clip_min"),
        numpy_helper.from_array(np.array(clip, np.float32), "clip_max"),
    ]
    nodes = [
        helper.make_node("Sub", [INPUT, "norm_mean"], ["centered"], name="center"),
        helper.make_node("Mul", ["centered", "norm_inv_std"], ["scaled"], name="scale"),
        helper.make_node("Clip", ["scaled", "clip_min", "clip_max"], ["xn"], name="clip"),
    ]
    h = "xn"
    last = len(ae.weights) - 1
    for i, (w, b) in enumerate(zip(ae.weights, ae.biases)):
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"W{i}"))
        inits.append(numpy_helper.from_array(b.astype(np.float32), f"B{i}"))
        out = f"z{i}" if i < last else "recon"
        nodes.append(helper.make_node("Gemm", [h, f"W{i}", f"B{i}"], [out], name=f"dense{i}"))
        if i < last:
            nodes.append(helper.make_node("Relu", [out], [f"h{i}"], name=f"relu{i}"))
            h = f"h{i}"
    nodes += [
        helper.make_node("Sub", ["recon", "xn"], ["diff"], name="residual"),
        helper.make_node("Mul", ["diff", "diff"], ["sq"], name="square"),
        helper.make_node("ReduceMean", ["sq"], [OUTPUT], axes=[1], keepdims=0, name="mse"),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [BATCH, f])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [BATCH])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="edge-anomaly-pipeline",
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def quantize_int8(f32_path: str, int8_path: str) -> None:
    """onnxruntime's dynamic quantization: int8 weights, activations quantized per call."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(f32_path, int8_path, weight_type=QuantType.QInt8)
    onnx.checker.check_model(onnx.load(int8_path), full_check=True)


def dequantize_weights(int8_path: str, out_path: str) -> int:
    """The int8 model as the engine runs it by default: each quantize_dynamic chain
    DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul becomes MatMul(x, (W_q - W_zp) * W_scale).

    This is an independent (numpy/onnx) implementation of the rewrite in
    src/engine/dequantize.rs, so onnxruntime can produce reference scores for it. Returns the
    number of matmuls rewritten.
    """
    m = onnx.load(int8_path)
    g = m.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers = lambda name: [n for n in g.node if name in n.input]  # noqa: E731
    drop, count = set(), 0
    for mm in [n for n in g.node if n.op_type == "MatMulInteger"]:
        dql = producer[mm.input[0]]
        (cast,) = consumers(mm.output[0])
        (fmul,) = consumers(cast.output[0])
        scale_name = next(i for i in fmul.input if i != cast.output[0])
        smul = producer[scale_name]
        w_scale = inits[next(i for i in smul.input if i != dql.output[1])]
        w_zp = inits[mm.input[3]] if len(mm.input) > 3 and mm.input[3] else 0
        w = (inits[mm.input[1]].astype(np.float32) - np.float32(w_zp)) * w_scale.astype(np.float32)
        name = mm.input[1] + "_dequantized"
        g.initializer.append(numpy_helper.from_array(w.astype(np.float32), name))
        fmul.CopyFrom(helper.make_node("MatMul", [dql.input[0], name], [fmul.output[0]],
                                       name=mm.name + "_w8a32"))
        drop.update(id(n) for n in (mm, cast, smul, dql))
        count += 1
    keep = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input}
    unused = [t for t in g.initializer if t.name not in used]
    for t in unused:
        g.initializer.remove(t)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out_path)
    return count


def ort_scores(path: str, x: np.ndarray, per_row: bool = False) -> np.ndarray:
    """Scores from onnxruntime, as one batch or one call per row (as a live sensor is scored)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    x = x.astype(np.float32)
    if per_row:
        return np.array([sess.run([OUTPUT], {INPUT: x[i : i + 1]})[0][0] for i in range(len(x))])
    return sess.run([OUTPUT], {INPUT: x})[0]


def save(model: onnx.ModelProto, path: str) -> None:
    d = os.path.dirname(path) or "."
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".onnx")
    os.close(fd)
    onnx.save(model, tmp)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
