"""Edge Anomaly model pipeline: CSV -> train -> ONNX (f32) -> int8, with metrics and golden vectors.

Run ``python -m edge_pipeline --help`` from ``models/`` for the CLI.
"""
