"""The range guard of window models: how far a window's level and roughness lie from what its
training windows had, added to the autoencoder's reconstruction error.

A reconstruction error sees changes of *shape*. A sensor's usual faults are often not one: a
level shift or a slow drift moves the whole window, which the autoencoder reconstructs about as
well as a normal one, and a frozen (flat) sensor is *easier* to reconstruct than a noisy normal
window. The guard measures three statistics of the standardized window ``xn`` (``F`` readings):

  level      the window's mean                      level shifts, drifts
  newest     the most recent reading                the same, without the window's lag
  roughness  the mean absolute first difference     frozen sensors (too low), noise bursts and
                                                    spikes (too high)

and adds two kinds of terms, in units of ``mse_train`` (the mean training reconstruction error,
which puts them on the reconstruction error's scale):

  range  ``weight * e**2`` per statistic, ``e`` how far it lies outside ``[lo, hi]`` (its
         ``quantile`` .. ``1 - quantile`` range over the training windows) in half-widths of
         that range; nothing inside it, so most normal windows keep their reconstruction error.
  level  ``soft * z**2`` for the level and the newest reading, ``z`` their training z-score: a
         gentle pull that ranks a shifted window above a normal one before it leaves the range.

In the exported graph the statistics are two dense layers with fixed weights (``layers``), so
the engine's dense kernel runs them like the autoencoder: the first makes ``|d_j|`` as
``Relu(d_j) + Relu(-d_j)`` and passes the level and the newest reading through ``Relu(v + clip)``
(exact: ``xn`` is clipped to ``[-clip, clip]``); the second scales them into five channels ``u``
such that the guard term is ``mean((u - Min(Max(u, lo_u), hi_u))**2)`` with per-channel bounds
(``bounds``): ``[-b, b]`` for the range channels, ``[0, 0]`` for the two level channels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATS = ("level", "newest", "roughness")
QUANTILE = 0.001
WEIGHT = 100.0
SOFT = 0.3
CHANNELS = 5  # the three range terms, then the level's and the newest reading's z**2


class GuardError(ValueError):
    """The guard cannot be fitted on the windows given."""


def statistics(xn: np.ndarray) -> np.ndarray:
    """``[rows, 3]``: level, newest reading and roughness of standardized windows ``xn``."""
    d = np.diff(xn, axis=1)
    return np.stack([xn.mean(axis=1), xn[:, -1], np.abs(d).mean(axis=1)], axis=1)


@dataclass
class RangeGuard:
    lo: np.ndarray  # [3] the training range of each statistic
    hi: np.ndarray
    mean: np.ndarray  # [3] training mean and standard deviation of each statistic
    std: np.ndarray
    mse_train: float
    clip: float
    quantile: float = QUANTILE
    weight: float = WEIGHT
    soft: float = SOFT

    @classmethod
    def fit(cls, train_xn: np.ndarray, mse_train: float, clip: float, **kw) -> "RangeGuard":
        """``train_xn``: standardized, clipped training windows (at least two readings each)."""
        if train_xn.ndim != 2 or train_xn.shape[1] < 2 or train_xn.shape[0] < 2:
            raise GuardError(f"need windows of at least two readings, got {train_xn.shape}")
        s = statistics(train_xn)
        q = kw.get("quantile", QUANTILE)
        lo, hi = np.quantile(s, q, axis=0), np.quantile(s, 1 - q, axis=0)
        # A statistic that never varied in training (a constant series) gets a tiny spread, so
        # any change of it counts.
        std = np.maximum(s.std(axis=0), 1e-3)
        return cls(lo, hi, s.mean(axis=0), std, max(float(mse_train), 1e-6), clip, **kw)

    def _mid_half(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.lo + self.hi) / 2, np.maximum((self.hi - self.lo) / 2, 1e-3)

    @property
    def bound(self) -> float:
        """Where a range channel of ``u`` leaves the training range."""
        return float(np.sqrt(self.weight * self.mse_train * CHANNELS))

    def scores(self, xn: np.ndarray) -> np.ndarray:
        """The guard term of each window (what the exported graph adds), computed directly."""
        s = statistics(xn)
        mid, half = self._mid_half()
        e = (s - mid) / half
        e = e - np.clip(e, -1.0, 1.0)
        z = (s[:, :2] - self.mean[:2]) / self.std[:2]
        return self.mse_train * (self.weight * (e**2).sum(axis=1) + self.soft * (z**2).sum(axis=1))

    def layers(self, features: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W0 [F, 2F], b0), (W1 [2F, 5], b1)]``, ``Relu`` after the first."""
        f = features
        w0 = np.zeros((f, 2 * f))
        b0 = np.zeros(2 * f)
        for j in range(f - 1):  # d_j = xn[j+1] - xn[j], as +d_j and -d_j
            w0[j + 1, j], w0[j, j] = 1.0, -1.0
            w0[j + 1, f - 1 + j], w0[j, f - 1 + j] = -1.0, 1.0
        level, newest = 2 * f - 2, 2 * f - 1
        w0[:, level] = 1.0 / f
        w0[f - 1, newest] = 1.0
        b0[[level, newest]] = self.clip  # Relu(v + clip) == v + clip, since |v| <= clip
        # Channel c is scale[c] * (stat - centre[c]); stat rows of W1 pick the statistic.
        mid, half = self._mid_half()
        k_range = self.bound / half
        k_soft = np.sqrt(self.soft * self.mse_train * CHANNELS) / self.std[:2]
        rows = [level, newest, None, level, newest]  # None: roughness, the mean of 2F-2 rows
        scale = np.r_[k_range, k_soft]
        centre = np.r_[mid, self.mean[:2]]
        w1 = np.zeros((2 * f, CHANNELS))
        b1 = -scale * centre
        for c, row in enumerate(rows):
            if row is None:
                w1[: 2 * f - 2, c] = scale[c] / (f - 1)
            else:
                w1[row, c] = scale[c]
                b1[c] -= scale[c] * self.clip  # undo the first layer's + clip
        return [(w0, b0), (w1, b1)]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel ``[lo_u, hi_u]`` of ``u``: the guard term is what lies outside them."""
        b = self.bound
        return np.array([-b, -b, -b, 0.0, 0.0]), np.array([b, b, b, 0.0, 0.0])

    def describe(self) -> dict:
        return {
            "statistics": list(STATS),
            "range": {s: [float(a), float(b)] for s, a, b in zip(STATS, self.lo, self.hi)},
            "range_quantile": self.quantile,
            "weight": self.weight,
            "soft_weight": self.soft,
            "mse_train": self.mse_train,
            "rule": "score = reconstruction MSE + mse_train * (weight * sum over statistics of "
                    "(distance outside the training range, in half-widths of it)**2 + "
                    "soft_weight * (z(level)**2 + z(newest)**2))",
        }
