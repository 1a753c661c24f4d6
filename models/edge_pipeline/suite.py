"""The synthetic anomaly suite: the whole pipeline on one series per anomaly kind, the model
beside the z-score and PCA baselines on each series' time-ordered test part.

python -m edge_pipeline.suite [--epochs 40] [--seeds 0,1,2] [--kinds spike,frozen,mixed]
                              [--window 64] [--readings 15000]

``mixed`` is one series with every kind in it (half the per-kind event counts each), as a
sensor that fails in several ways would give; ``all kinds mean`` averages the single kinds.

Prints ROC-AUC and PR-AUC per kind and seed, and their mean over the seeds, then how often the
int8 model's flags agree with the f32 model's on the test part (``agree``: onnxruntime's int8
run, one reading per call; ``device``: the engine's default int8 semantics). Labels are the
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
from .synthetic import EVENTS, KINDS, generate

SCORERS = ("model", "zscore", "pca")
MIXED = "mixed"
# A third of the series' 200-reading cycle: long enough that a window's shape tells the cycle's
# phase, so the guard's whitened level and slope see a drift the cycle would hide in 16 readings.
WINDOW = 64


def series(kind: str, n: int, seed: int):
    """The synthetic series of one kind, or of every kind (``MIXED``)."""
    if kind == MIXED:
        return generate(KINDS, n=n, seed=seed, events={k: max(1, c // 2) for k, c in EVENTS.items()})
    return generate(kind, n=n, seed=seed)


def run_kind(kind: str, seed: int = 0, n: int = 15000, window: int = WINDOW, epochs: int = 40,
             test_fraction: float = 0.3, out_dir: str | None = None) -> dict:
    """The ``evaluation`` block of a pipeline run on ``generate(kind, n, seed)``, with the int8
    agreement figures added (``int8_vs_f32``, ``int8_weight_only_vs_f32``). A larger test part
    than the pipeline's default keeps a few events of the rarer kinds in it."""
    ds = sliding_windows(series(kind, n, seed).dataset(), window)

    def go(d):
        meta = run(ds, Options(out_dir=d, epochs=epochs, seed=seed, golden_rows=8,
                               sample_rows=10, test_fraction=test_fraction))
        return {**meta["evaluation"], "int8_vs_f32": meta["int8_vs_f32"],
                "int8_weight_only_vs_f32": meta["int8_weight_only_vs_f32"]}

    if out_dir is not None:
        return go(out_dir)
    with tempfile.TemporaryDirectory() as d:
        return go(d)


def figures(evaluation: dict) -> dict:
    """``{scorer: (roc_auc, pr_auc)}`` of one evaluation block."""
    b = evaluation["baselines"]
    ms = {"model": evaluation["model"], "zscore": b["zscore"], "pca": b["pca"]}
    return {k: (m["roc_auc"], m["pr_auc"]) for k, m in ms.items()}


def agreement(evaluation: dict) -> tuple[float, float]:
    """Share of test rows whose int8 flag equals the f32 flag: onnxruntime's int8 run, and the
    engine's default int8 semantics (weights dequantized)."""
    return (evaluation["int8_vs_f32"]["flag_agreement"],
            evaluation["int8_weight_only_vs_f32"]["flag_agreement"])


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def format_row(label: str, figs: dict, agree: tuple | None = None) -> str:
    def f(v):
        return "  -  " if v is None else f"{v:5.3f}"

    cells = "".join(f"  {f(figs[s][0])} {f(figs[s][1])}" for s in SCORERS)
    if agree is not None:
        cells += f"  {f(agree[0])}  {f(agree[1])}"
    return f"{label:<18}{cells}"


def header() -> str:
    return (f"{'':<18}" + "".join(f"  {s + ' ROC  PR':<11}" for s in SCORERS)
            + "  agree  device")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge_pipeline.suite", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one series each")
    choices = (*KINDS, MIXED)
    p.add_argument("--kinds", default=",".join(choices), help=f"a subset of {','.join(choices)}")
    p.add_argument("--readings", type=int, default=15000)
    p.add_argument("--window", type=int, default=WINDOW)
    a = p.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    kinds = a.kinds.split(",")
    unknown = [k for k in kinds if k not in choices]
    if unknown:
        print(f"error: unknown kinds {unknown}; known: {choices}", file=sys.stderr)
        return 2
    print(header(), flush=True)
    means, agrees = [], []
    for kind in kinds:
        evs = [run_kind(kind, s, a.readings, a.window, a.epochs) for s in seeds]
        runs = [figures(ev) for ev in evs]
        for s, ev, figs in zip(seeds, evs, runs):
            agrees.append(agreement(ev))
            print(format_row(f"{kind} s{s}", figs, agreement(ev)), flush=True)
        mean = {k: tuple(_mean([r[k][i] for r in runs]) for i in (0, 1)) for k in SCORERS}
        if kind != MIXED:
            means.append(mean)
        if len(runs) > 1:
            print(format_row(f"{kind} mean", mean), flush=True)
    if len(means) > 1:
        overall = {k: tuple(_mean([m[k][i] for m in means]) for i in (0, 1)) for k in SCORERS}
        print(format_row("all kinds mean", overall), flush=True)
        print(f"int8/f32 flag agreement, lowest: {min(a for a, _ in agrees):.4f} (onnxruntime), "
              f"{min(d for _, d in agrees):.4f} (device)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
