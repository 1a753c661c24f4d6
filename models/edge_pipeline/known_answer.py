"""Known-answer checks of contributions: move one channel of held-out normal readings and count
how often the channel ranked first (``contributions``: largest share) is the one moved, among the
readings the model flags.

Two cases: the shipped shuttle model on its held-out normal rows (``shuttle/sample.csv``), and a
tabular model the pipeline trains on six correlated synthetic channels
(``synthetic.correlated_channels``), scored on later readings of the same series that it never
saw. Each base row is moved once per channel and per magnitude (``MAGNITUDES``, in standard
deviations of that channel as the model's normalization has them).

``imputation_top1`` ranks channels another way, for comparison: by how much the score falls when
the channel alone reads its training mean instead (one more run of the model per channel). The
engine's shares are the reconstruction rule; this one is not what it computes.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

from . import contributions
from .data import Dataset
from .pipeline import Options, run
from .synthetic import correlated_channels

MAGNITUDES = (-6.0, -4.0, -3.0, -2.0, 2.0, 3.0, 4.0, 6.0)
MODELS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHUTTLE = os.path.join(MODELS, "shuttle")

# The synthetic case: the pipeline trains on the first TRAIN_ROWS readings; the rest are held out.
MULTICHANNEL_ROWS = 8000
TRAIN_ROWS = 6000
MULTICHANNEL_EPOCHS = 10
MULTICHANNEL_SEED = 0


@dataclass
class Injected:
    x: np.ndarray  # [n, F] raw readings, one channel moved in each
    channel: np.ndarray  # [n] the column moved
    magnitude: np.ndarray  # [n] by how many of that column's standard deviations


@dataclass
class Figure:
    flagged: int  # injected readings scoring above the threshold
    first: int  # of those, the ones whose top-ranked channel is the injected one
    per_channel: list[tuple[int, int]]  # (flagged, first) per injected channel

    @property
    def rate(self) -> float:
        return self.first / self.flagged if self.flagged else float("nan")

    def describe(self, names: list[str]) -> str:
        cells = " ".join(f"{n} {f and h / f:.2f}" for n, (f, h) in zip(names, self.per_channel))
        return f"{self.rate:.3f} of {self.flagged} flagged ({cells})"


def inject(base: np.ndarray, std: np.ndarray, magnitudes=MAGNITUDES) -> Injected:
    """Every row of ``base`` with every channel moved by every magnitude (``x + k * std``)."""
    n, f = base.shape
    xs, channels, mags = [], [], []
    for k in magnitudes:
        for j in range(f):
            x = base.copy()
            x[:, j] += k * std[j]
            xs.append(x)
            channels.append(np.full(n, j))
            mags.append(np.full(n, k))
    return Injected(np.concatenate(xs), np.concatenate(channels), np.concatenate(mags))


def _figure(ranked_first: np.ndarray, flagged: np.ndarray, channel: np.ndarray,
            features: int) -> Figure:
    hit = flagged & (ranked_first == channel)
    per = [(int((flagged & (channel == j)).sum()), int((hit & (channel == j)).sum()))
           for j in range(features)]
    return Figure(int(flagged.sum()), int(hit.sum()), per)


def top1(model, injected: Injected, threshold: float) -> Figure:
    """The engine's rule: the channel with the largest reconstruction share."""
    c = contributions.explain(model, injected.x)
    return _figure(np.argmax(c.shares, axis=1), c.scores > threshold, injected.channel,
                   injected.x.shape[1])


def imputation_top1(model, injected: Injected, threshold: float, mean: np.ndarray) -> Figure:
    """The comparison rule: the channel whose training mean lowers the score most."""
    model = contributions.load(model)
    scores = contributions.score_terms(model, injected.x)[0]
    drops = np.empty(injected.x.shape)
    for j in range(injected.x.shape[1]):
        x = injected.x.copy()
        x[:, j] = mean[j]
        drops[:, j] = scores - contributions.score_terms(model, x)[0]
    return _figure(np.argmax(drops, axis=1), scores > threshold, injected.channel,
                   injected.x.shape[1])


def heldout_normal(sample_csv: str) -> tuple[list[str], np.ndarray]:
    """The label-0 rows of a pipeline's ``sample.csv`` (held-out rows, never trained on)."""
    with open(sample_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], np.array(rows[1:], dtype=np.float64)
    label = header.index("anomaly")
    features = [h for i, h in enumerate(header) if i != label]
    return features, np.delete(body[body[:, label] == 0], label, axis=1)


def train_multichannel(out_dir: str, epochs: int = MULTICHANNEL_EPOCHS,
                       seed: int = MULTICHANNEL_SEED) -> tuple[dict, np.ndarray]:
    """The synthetic case's model, trained by the pipeline into ``out_dir``: its metadata and
    the held-out readings."""
    features, x = correlated_channels(MULTICHANNEL_ROWS, seed=seed)
    ds = Dataset(features, x[:TRAIN_ROWS], None, f"correlated_channels(seed={seed})")
    meta = run(ds, Options(out_dir=out_dir, epochs=epochs, seed=seed, golden_rows=8,
                           sample_rows=10))
    return meta, x[TRAIN_ROWS:]
