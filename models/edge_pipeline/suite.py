"""The synthetic anomaly suite: the whole pipeline on one series per anomaly kind, the model
beside the z-score and PCA baselines on each series' time-ordered test part.

python -m edge_pipeline.suite [--epochs 40] [--seeds 0,1,2] [--kinds spike,frozen]

Prints ROC-AUC and PR-AUC per kind and seed, and their mean over the seeds. Labels are the
pipeline's window labels (a window is anomalous when any of its readings is), so the z-score,
which looks at the newest reading only, sees a spike in one window of the ``window`` that
contain it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile

import numpy as np

from .data import sliding_windows
from .pipeline import Options, run
from .synthetic import KINDS, generate

SCORERS = ("model", "zscore", "pca")


def run_kind(kind: str, seed: int = 0, n: int = 15000, window: int = 16, epochs: int = 40,
             test_fraction: float = 0.3, out_dir: str | None = None) -> dict:
    """The ``evaluation`` block of a pipeline run on ``generate(kind, n, seed)``. A larger test
    part than the pipeline's default keeps a few events of the rarer kinds in it."""
    ds = sliding_windows(generate(kind, n=n, seed=seed).dataset(), window)

    def go(d):
        return run(ds, Options(out_dir=d, epochs=epochs, seed=seed, golden_rows=8,
                               sample_rows=10, test_fraction=test_fraction))["evaluation"]

    if out_dir is not None:
        return go(out_dir)
    with tempfile.TemporaryDirectory() as d:
        return go(d)


def figures(evaluation: dict) -> dict:
    """``{scorer: (roc_auc, pr_auc)}`` of one evaluation block."""
    b = evaluation["baselines"]
    ms = {"model": evaluation["model"], "zscore": b["zscore"], "pca": b["pca"]}
    return {k: (m["roc_auc"], m["pr_auc"]) for k, m in ms.items()}


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def format_row(label: str, figs: dict) -> str:
    def f(v):
        return "  -  " if v is None else f"{v:5.3f}"

    cells = "".join(f"  {f(figs[s][0])} {f(figs[s][1])}" for s in SCORERS)
    return f"{label:<18}{cells}"


def header() -> str:
    return f"{'':<18}" + "".join(f"  {s + ' ROC  PR':<11}" for s in SCORERS)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge_pipeline.suite", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one series each")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"a subset of {','.join(KINDS)}")
    p.add_argument("--readings", type=int, default=15000)
    p.add_argument("--window", type=int, default=16)
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    kinds = a.kinds.split(",")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        print(f"error: unknown kinds {unknown}; known: {KINDS}", file=sys.stderr)
        return 2
    print(header(), flush=True)
    for kind in kinds:
        runs = [figures(run_kind(kind, s, a.readings, a.window, a.epochs)) for s in seeds]
        for s, figs in zip(seeds, runs):
            print(format_row(f"{kind} s{s}", figs), flush=True)
        if len(runs) > 1:
            mean = {k: tuple(_mean([r[k][i] for r in runs]) for i in (0, 1)) for k in SCORERS}
            print(format_row(f"{kind} mean", mean), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
