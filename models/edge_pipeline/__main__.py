"""CLI: train the anomaly autoencoder on the bundled shuttle data or on your own CSV.

Examples (from models/):
  python -m edge_pipeline --out shuttle
  python -m edge_pipeline --csv my.csv --features temp,rpm --label is_fault --out mine
  python -m edge_pipeline --csv series.csv --features value --window 64 --out series

With --window the windows are split in time order (train earliest, then validation, then
test, --gap readings apart), and the score adds the range guard (level, slope, newest reading
and roughness against their training range; --no-guard leaves it out); otherwise rows are split
at random. A window should span a good part of the series' slowest normal cycle (a third of it
or more), or a slow drift looks like the cycle. The summary (stdout, JSON) and a table (stderr)
compare the model on the test part with a z-score and a PCA baseline.
"""
from __future__ import annotations

import argparse
import json
import sys

from .data import DataError, load_csv, shuttle_path, sliding_windows
from .evaluation import table
from .pipeline import Options, run
from .split import SplitError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge_pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", help="CSV with a header row (.csv or .csv.gz); default: NASA shuttle")
    p.add_argument("--features", help="comma-separated feature columns (default: all but label)")
    p.add_argument("--label", help="0/1 label column for evaluation (rows with 1 never train)")
    p.add_argument("--anomaly-value", default="1", help="label value meaning anomaly")
    p.add_argument("--window", type=int,
                   help="sliding windows of this length over one column (a third of the slowest "
                        "normal cycle or more; 64 on the synthetic suite's 200-reading cycle)")
    p.add_argument("--gap", type=int,
                   help="with --window: unused readings between train, validation and test "
                        "(default and minimum: the window length)")
    p.add_argument("--no-guard", action="store_true",
                   help="with --window: score by reconstruction error alone, without the range "
                        "guard")
    p.add_argument("--limit", type=int, help="read at most this many rows")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--name", default="model", help="file name stem of the models")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--threshold-quantile", type=float, default=0.99)
    p.add_argument("--clip", type=float, default=6.0,
                   help="bound standardized inputs to +-CLIP (keeps int8 scales sane)")
    p.add_argument("--golden-rows", type=int, default=32)
    p.add_argument("--sample-rows", type=int, default=2000, help="held-out rows written for replay")
    a = p.parse_args(argv)

    try:
        if a.csv:
            feats = a.features.split(",") if a.features else None
            ds = load_csv(a.csv, feats, a.label, a.anomaly_value, a.limit)
        else:
            ds = load_csv(shuttle_path(), None, "anomaly", "1", a.limit)
        if a.window:
            ds = sliding_windows(ds, a.window)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.gap is not None and not a.window:
        print("error: --gap needs --window", file=sys.stderr)
        return 2
    if a.no_guard and not a.window:
        print("error: --no-guard needs --window (tabular models have no guard)", file=sys.stderr)
        return 2
    try:
        meta = run(ds, Options(out_dir=a.out, name=a.name, version=a.version, epochs=a.epochs,
                               seed=a.seed, threshold_quantile=a.threshold_quantile, clip=a.clip,
                               golden_rows=a.golden_rows, sample_rows=a.sample_rows, gap=a.gap,
                               guard=not a.no_guard))
    except SplitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = {k: meta[k] for k in ("version", "threshold", "int8_vs_f32", "int8_weight_only_vs_f32")}
    summary["models"] = {k: {m: v.get(m) for m in ("bytes", "roc_auc")} for k, v in meta["models"].items()}
    ev = meta["evaluation"]
    summary["evaluation"] = {
        "split": ev["split"]["kind"],
        **{name: {m: v.get(m) for m in ("roc_auc", "pr_auc", "precision", "recall")}
           for name, v in (("model", ev["model"]), *ev["baselines"].items())},
    }
    print(json.dumps(summary, indent=2))
    print(table(ev), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
