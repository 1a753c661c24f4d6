"""A seeded synthetic sensor series with labelled anomalies, for tests and for comparing scorers.

The normal signal is a daily-like cycle (a sine of ``period`` readings with a slower
modulation), Gaussian measurement noise and a slow mean-reverting random walk of the level.
Anomalies are injected as events, each kind separately selectable (``kinds``):

  spike        one reading pushed far up or down
  level_shift  a stretch of readings offset by a constant, then back to normal
  drift        a stretch drifting linearly away (sensor decalibration), then recalibrated
  frozen       a stretch stuck at the last good reading (a flat, frozen sensor)
  noise_burst  a stretch with several times the usual noise (a loose connector)

Events do not overlap, are at least ``min_gap`` readings apart and spread over the whole
series, so a time-ordered split finds some in each part. ``labels`` marks every reading of an
event (1) and nothing else; ``events`` lists them as ``[start, end)`` reading ranges.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .data import Dataset

KINDS = ("spike", "level_shift", "drift", "frozen", "noise_burst")

# Per kind: default number of events and the (min, max) length in readings.
EVENTS = {"spike": 30, "level_shift": 10, "drift": 8, "frozen": 10, "noise_burst": 10}
LENGTHS = {"spike": (1, 1), "level_shift": (100, 300), "drift": (200, 500),
           "frozen": (80, 250), "noise_burst": (40, 150)}


class SyntheticError(ValueError):
    """The requested series cannot be generated (unknown kind, events do not fit)."""


@dataclass(frozen=True)
class Event:
    kind: str
    start: int
    end: int  # exclusive


@dataclass
class Series:
    values: np.ndarray  # [n] float64
    labels: np.ndarray  # [n] int64, 1 inside an event
    events: list[Event] = field(default_factory=list)
    seed: int = 0

    def dataset(self, name: str = "value") -> Dataset:
        """One feature column, reading labels; ``data.sliding_windows`` makes windows of it."""
        return Dataset([name], self.values[:, None].copy(), self.labels.copy(),
                       f"synthetic(seed={self.seed})")

    def write_csv(self, path: str, name: str = "value", label: str = "anomaly") -> None:
        """``time,<name>,<label>`` rows, the shape the CLI reads with ``--label``."""
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(f"time,{name},{label}\n")
            for t, (v, y) in enumerate(zip(self.values, self.labels)):
                fh.write(f"{t},{v:.6f},{int(y)}\n")


def normal_signal(n: int, rng: np.random.Generator, period: int = 200, amplitude: float = 1.0,
                  noise: float = 0.1, walk_step: float = 0.01,
                  walk_reversion: float = 1e-3) -> tuple[np.ndarray, float]:
    """The anomaly-free series and its noise level: cycle + noise + slow mean-reverting walk."""
    t = np.arange(n, dtype=np.float64)
    phase = rng.uniform(0, 2 * np.pi)
    cycle = amplitude * (np.sin(2 * np.pi * t / period + phase)
                         * (1.0 + 0.2 * np.sin(2 * np.pi * t / (period * 7.3))))
    steps = rng.normal(0.0, walk_step, n)
    walk = np.empty(n)
    level = 0.0
    for i in range(n):  # Ornstein-Uhlenbeck: wanders slowly, never far
        level = level * (1.0 - walk_reversion) + steps[i]
        walk[i] = level
    return cycle + walk + rng.normal(0.0, noise, n), noise


def _place(lengths: list[int], n: int, min_gap: int, rng: np.random.Generator) -> list[int]:
    """Start readings for events of ``lengths`` (in order), spread at random over ``n``."""
    free = n - sum(lengths) - (len(lengths) + 1) * min_gap
    if free < 0:
        raise SyntheticError(f"{len(lengths)} events ({sum(lengths)} readings) do not fit in "
                             f"{n} readings with gaps of {min_gap}")
    extra = np.floor(rng.dirichlet(np.ones(len(lengths) + 1)) * free).astype(int)
    starts, pos = [], 0
    for length, e in zip(lengths, extra):
        pos += min_gap + int(e)
        starts.append(pos)
        pos += length
    return starts


def generate(kinds=KINDS, n: int = 15000, seed: int = 0, events: dict | None = None,
             min_gap: int = 64, period: int = 200, noise: float = 0.1) -> Series:
    """A series of ``n`` readings with the events of ``kinds`` (counts default to ``EVENTS``,
    overridable per kind in ``events``), in a random order, deterministic for ``seed``."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(dict.fromkeys(kinds))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise SyntheticError(f"unknown anomaly kinds {unknown or kinds}; known: {KINDS}")
    counts = {k: (events or {}).get(k, EVENTS[k]) for k in kinds}
    rng = np.random.default_rng(seed)
    values, noise = normal_signal(n, rng, period=period, noise=noise)
    plan = [k for k in kinds for _ in range(counts[k])]
    rng.shuffle(plan)
    lengths = [int(rng.integers(LENGTHS[k][0], LENGTHS[k][1] + 1)) for k in plan]
    starts = _place(lengths, n, min_gap, rng)
    labels = np.zeros(n, dtype=np.int64)
    out = []
    for kind, start, length in zip(plan, starts, lengths):
        end = start + length
        sign = rng.choice([-1.0, 1.0])
        seg = slice(start, end)
        if kind == "spike":
            values[seg] += sign * rng.uniform(2.5, 5.0)
        elif kind == "level_shift":
            values[seg] += sign * rng.uniform(1.5, 3.0)
        elif kind == "drift":
            values[seg] += sign * np.linspace(0.0, rng.uniform(1.5, 3.0), length)
        elif kind == "frozen":
            values[seg] = values[start - 1]
        else:  # noise_burst
            values[seg] += rng.normal(0.0, noise * rng.uniform(4.0, 8.0), length)
        labels[seg] = 1
        out.append(Event(kind, start, end))
    return Series(values, labels, out, seed)


def correlated_channels(n: int = 8000, channels: int = 6, seed: int = 0, noise: float = 0.05
                        ) -> tuple[list[str], np.ndarray]:
    """``channels`` sensors (``ch1``..) driven by three shared signals, anomaly-free: a daily-like
    cycle, a faster cycle and a slow mean-reverting walk, mixed with seeded random loadings,
    each channel with its own offset, scale and measurement noise (``noise`` of its signal's
    spread). Rows are readings of all sensors at one time, ``[n, channels]``."""
    rng = np.random.default_rng(seed)
    factors = np.stack([
        normal_signal(n, rng, period=200, noise=0.0)[0],
        normal_signal(n, rng, period=57, noise=0.0)[0],
        normal_signal(n, rng, amplitude=0.0, noise=0.0, walk_step=0.02)[0],
    ], axis=1)
    signal = factors @ rng.normal(size=(factors.shape[1], channels))
    signal += noise * signal.std(axis=0) * rng.normal(size=signal.shape)
    offset, scale = rng.uniform(10, 50, channels), rng.uniform(0.5, 20, channels)
    return [f"ch{i + 1}" for i in range(channels)], offset + scale * signal
