"""Loading readings: the bundled NASA shuttle dataset or a user's own CSV, plus sliding windows.

Everything returns plain float64 numpy arrays and an optional 0/1 label vector; nothing here
knows about models.
"""
from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import math
import os
from dataclasses import dataclass

import numpy as np


@dataclass
class Dataset:
    features: list[str]
    x: np.ndarray  # [rows, F] float64
    y: np.ndarray | None  # [rows] 0/1, or None when unlabelled
    source: str
    window: int | None = None  # set by sliding_windows: row i covers readings i .. i+window-1


class DataError(ValueError):
    """The input CSV cannot be turned into a numeric feature matrix."""


def shuttle_path() -> str:
    """Path of river 0.26.1's shuttle.csv.gz inside the installed package (not imported)."""
    spec = importlib.util.find_spec("river")
    if spec is None or spec.origin is None:
        raise DataError("river is not installed: pip install --no-deps river==0.26.1")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "shuttle.csv.gz")
    if not os.path.exists(path):
        raise DataError(f"shuttle dataset missing at {path}")
    return path


def _open_text(path: str):
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8", newline="")


def load_csv(
    path: str,
    features: list[str] | None = None,
    label: str | None = None,
    anomaly_value: str = "1",
    limit: int | None = None,
) -> Dataset:
    """Read a CSV with a header row.

    ``features`` defaults to every column except ``label``. Rows with a missing or non-finite
    feature value are rejected with the line number, never silently dropped.
    """
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file") from None
        if label is not None and label not in header:
            raise DataError(f"{path}: label column {label!r} not in header {header}")
        if features is None:
            features = [h for h in header if h != label]
        missing = [f for f in features if f not in header]
        if missing:
            raise DataError(f"{path}: feature columns {missing} not in header {header}")
        if not features:
            raise DataError(f"{path}: no feature columns")
        idx = [header.index(f) for f in features]
        lidx = header.index(label) if label is not None else None
        rows, labels = [], []
        for lineno, rec in enumerate(reader, start=2):
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) != len(header):
                raise DataError(f"{path}:{lineno}: {len(rec)} fields, header has {len(header)}")
            try:
                vals = [float(rec[i]) for i in idx]
            except ValueError as e:
                raise DataError(f"{path}:{lineno}: non-numeric feature value ({e})") from None
            if not all(math.isfinite(v) for v in vals):
                raise DataError(f"{path}:{lineno}: NaN or infinite feature value")
            rows.append(vals)
            if lidx is not None:
                labels.append(1 if rec[lidx].strip() == anomaly_value else 0)
            if limit is not None and len(rows) >= limit:
                break
    if not rows:
        raise DataError(f"{path}: no data rows")
    x = np.asarray(rows, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64) if lidx is not None else None
    return Dataset(features=list(features), x=x, y=y, source=os.path.basename(path))


def sliding_windows(ds: Dataset, window: int) -> Dataset:
    """Turn a univariate series into overlapping windows of ``window`` readings.

    A window is labelled anomalous when any reading inside it is. Row ``i`` is the window
    starting at reading ``i`` (``Dataset.window`` records the length), which the pipeline's
    time-ordered split relies on.
    """
    if ds.x.shape[1] != 1:
        raise DataError(f"--window needs exactly one feature column, got {ds.features}")
    if window < 2 or window > ds.x.shape[0]:
        raise DataError(f"window {window} must be between 2 and the series length {ds.x.shape[0]}")
    series = ds.x[:, 0]
    view = np.lib.stride_tricks.sliding_window_view(series, window)
    y = None
    if ds.y is not None:
        y = np.lib.stride_tricks.sliding_window_view(ds.y, window).max(axis=1)
    name = ds.features[0]
    return Dataset(
        features=[f"{name}[t-{window - 1 - i}]" for i in range(window)],
        x=np.ascontiguousarray(view),
        y=y,
        source=ds.source,
        window=window,
    )
