"""Golden vectors: input rows and onnxruntime's scores for them, which the engine's tests match.

Three references per row, one call per row and all rows as one batch:
  f32               the float model
  int8              the int8 model as written (activations quantized per call, so a batch
                    legitimately differs from single rows)
  int8_weight_only  the int8 model with its weights dequantized into float matmuls, which is
                    how the engine runs it by default (src/engine/dequantize.rs)

Refresh the scores of an existing model directory without retraining:
  python -m edge_pipeline.golden shuttle
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

import numpy as np

from . import export

# Both tract and onnxruntime compute in f32; this bounds their disagreement on golden rows.
RTOL = 1e-3
ATOL = 1e-5


def build(f32_path: str, int8_path: str, rows: np.ndarray, labels: list, features: list) -> dict:
    x = rows.astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        wo_path = os.path.join(tmp, "weight_only.onnx")
        export.dequantize_weights(int8_path, wo_path)
        paths = {"f32": f32_path, "int8": int8_path, "int8_weight_only": wo_path}
        scores = {k: export.ort_scores(p, x, per_row=True).astype(float).tolist() for k, p in paths.items()}
        batch = {k: export.ort_scores(p, x).astype(float).tolist() for k, p in paths.items()}
    return {
        "features": features,
        "rows": x.tolist(),
        "labels": list(labels),
        "scores": scores,
        "batch_scores": batch,
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "reference": "onnxruntime CPUExecutionProvider, 1 thread",
    }


def write(out_dir: str, golden: dict) -> None:
    with open(os.path.join(out_dir, "golden.json"), "w") as fh:
        json.dump(golden, fh)


def refresh(out_dir: str, name: str = "model") -> dict:
    """Recomputes every reference for the rows already in ``out_dir/golden.json``."""
    with open(os.path.join(out_dir, "golden.json")) as fh:
        old = json.load(fh)
    g = build(os.path.join(out_dir, f"{name}.f32.onnx"), os.path.join(out_dir, f"{name}.int8.onnx"),
              np.array(old["rows"], dtype=np.float32), old["labels"], old["features"])
    write(out_dir, g)
    return g


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    refresh(sys.argv[1])
