"""The range guard of window models: how far a window's level, slope and roughness lie from what
its training windows had, added to the autoencoder's reconstruction error.

A reconstruction error sees changes of *shape*. A sensor's usual faults are often not one: a
level shift or a slow drift moves the whole window, which the autoencoder reconstructs about as
well as a normal one, and a frozen (flat) sensor is *easier* to reconstruct than a noisy normal
window. The guard measures four statistics of the standardized window ``xn`` (``F`` readings):

  level      the window's offset, whitened          level shifts, drifts
  slope      the window's linear trend, whitened    drifts, the start and end of a shift
  newest     the most recent reading                the same, without the window's lag
  roughness  the mean absolute first difference     frozen sensors (too low), noise bursts and
                                                    spikes (too high)

*Whitened* means measured against the training windows' covariance ``C``: the level is
``w·xn`` with ``w = C⁻¹1 / sqrt(1ᵀC⁻¹1)`` (the generalized-least-squares estimate of an offset
added to a normal window, in units of its spread over the training windows), the slope the same
with a centred ramp instead of ``1``. Where the normal signal has a shape of its own (a daily
cycle), the plain mean of a window moves with the cycle's phase far more than a beginning drift
moves it; the whitened level discounts what the window's shape already explains. On the
synthetic suite's drift series (three seeds, test part) ``|level|`` alone ranks drift windows at
ROC-AUC 0.71 / 0.81 / 0.87 with windows of 16 / 32 / 64 readings, the plain mean's ``|z|`` at
0.70 / 0.70 / 0.70. Both are linear in the window, so they are fixed weights of the guard's
first layer.

The guard adds two kinds of terms, in units of ``mse_train`` (the mean training
reconstruction error, which puts them on the reconstruction error's scale):

  range  ``weight * e**2`` per statistic, ``e`` how far it lies outside ``[lo, hi]`` (its
         ``quantile`` .. ``1 - quantile`` range over the training windows) in half-widths of
         that range; nothing inside it, so most normal windows keep their reconstruction error.
  soft   ``soft * (z - clamp(z, -band, band))**2`` for the level, the slope and the newest
         reading, ``z`` their training z-score: a pull that ranks a shifted window above a
         normal one before it leaves the range. Nothing within ``band`` standard deviations, so
         the ordinary wander of normal windows adds nothing that could outrank the first
         readings of a noise burst or a drift (with ``band`` 0, windows of 64, three seeds: noise
         bursts 0.984 and drifts 0.863 against the PCA baseline's 0.996 and 0.887; with 1.5,
         0.995 and 0.889).

In the exported graph the statistics are two dense layers with fixed weights (``layers``), so
the engine's dense kernel runs them like the autoencoder: the first makes ``|d_j|`` of the first
differences and each linear statistic ``s`` as the pair ``Relu(s)``, ``Relu(-s)``; the second
recombines them (``s = Relu(s) - Relu(-s)``, roughness the mean of the ``|d_j|``) and scales them
into ``CHANNELS`` channels ``u`` such that the guard term is ``mean((u - Min(Max(u, lo_u),
hi_u))**2)`` with per-channel bounds (``bounds``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATS = ("level", "slope", "newest", "roughness")
LINEAR = 3  # the first three statistics are linear in the window; roughness is not
QUANTILE = 0.001
WEIGHT = 100.0
SOFT = 1.0
BAND = 1.5
# The covariance is regularized by this share of its mean variance, so a window model still
# fits when the training windows span fewer dimensions than the window has readings.
RIDGE = 1e-3
CHANNELS = len(STATS) + LINEAR  # a range term per statistic, then a soft term per linear one


class GuardError(ValueError):
    """The guard cannot be fitted on the windows given."""


def directions(train_xn: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """``[F, 3]``: the weights of the level, the slope and the newest reading. The level and
    the slope are whitened by the training windows' covariance (module docstring), scaled so
    that each has unit variance over those windows."""
    f = train_xn.shape[1]
    cov = np.atleast_2d(np.cov(train_xn, rowvar=False))
    cov = cov + ridge * max(float(np.trace(cov)) / f, 1e-6) * np.eye(f)

    def whitened(v: np.ndarray) -> np.ndarray:
        a = np.linalg.solve(cov, v)
        return a / np.sqrt(v @ a)

    ramp = np.arange(f) - (f - 1) / 2.0
    return np.stack([whitened(np.ones(f)), whitened(ramp), np.eye(f)[-1]], axis=1)


def statistics(xn: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``[rows, 4]``: level, slope, newest reading (``xn @ weights``, ``directions``) and
    roughness of standardized windows ``xn``."""
    return np.c_[xn @ weights, np.abs(np.diff(xn, axis=1)).mean(axis=1)]


@dataclass
class RangeGuard:
    weights: np.ndarray  # [F, 3] the linear statistics' weights (``directions``)
    lo: np.ndarray  # [4] the training range of each statistic
    hi: np.ndarray
    mean: np.ndarray  # [4] training mean and standard deviation of each statistic
    std: np.ndarray
    mse_train: float
    clip: float
    quantile: float = QUANTILE
    weight: float = WEIGHT
    soft: float = SOFT
    band: float = BAND

    @classmethod
    def fit(cls, train_xn: np.ndarray, mse_train: float, clip: float, **kw) -> "RangeGuard":
        """``train_xn``: standardized, clipped training windows (at least two readings each)."""
        if train_xn.ndim != 2 or train_xn.shape[1] < 2 or train_xn.shape[0] < 2:
            raise GuardError(f"need windows of at least two readings, got {train_xn.shape}")
        w = directions(train_xn)
        s = statistics(train_xn, w)
        q = kw.get("quantile", QUANTILE)
        lo, hi = np.quantile(s, q, axis=0), np.quantile(s, 1 - q, axis=0)
        # A statistic that never varied in training (a constant series) gets a tiny spread, so
        # any change of it counts.
        std = np.maximum(s.std(axis=0), 1e-3)
        return cls(w, lo, hi, s.mean(axis=0), std, max(float(mse_train), 1e-6), clip, **kw)

    def _mid_half(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.lo + self.hi) / 2, np.maximum((self.hi - self.lo) / 2, 1e-3)

    @property
    def bound(self) -> float:
        """Where a range channel of ``u`` leaves the training range."""
        return float(np.sqrt(self.weight * self.mse_train * CHANNELS))

    @property
    def _soft_scale(self) -> float:
        """A soft channel of ``u`` is this times the statistic's z-score."""
        return float(np.sqrt(self.soft * self.mse_train * CHANNELS))

    def scores(self, xn: np.ndarray) -> np.ndarray:
        """The guard term of each window (what the exported graph adds), computed directly."""
        s = statistics(xn, self.weights)
        mid, half = self._mid_half()
        e = (s - mid) / half
        e = e - np.clip(e, -1.0, 1.0)
        z = (s[:, :LINEAR] - self.mean[:LINEAR]) / self.std[:LINEAR]
        z = z - np.clip(z, -self.band, self.band)
        return self.mse_train * (self.weight * (e**2).sum(axis=1) + self.soft * (z**2).sum(axis=1))

    def layers(self, features: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``[(W0 [F, 2F + 4], b0), (W1 [2F + 4, CHANNELS], b1)]``, ``Relu`` after the first."""
        f = features
        if self.weights.shape != (f, LINEAR):
            raise GuardError(f"the guard was fitted on windows of {self.weights.shape[0]} "
                             f"readings, not {f}")
        diffs = 2 * (f - 1)
        w0 = np.zeros((f, diffs + 2 * LINEAR))
        for j in range(f - 1):  # d_j = xn[j+1] - xn[j], as +d_j and -d_j
            w0[j + 1, j], w0[j, j] = 1.0, -1.0
            w0[j + 1, f - 1 + j], w0[j, f - 1 + j] = -1.0, 1.0
        for k in range(LINEAR):  # each linear statistic as +s and -s
            w0[:, diffs + 2 * k] = self.weights[:, k]
            w0[:, diffs + 2 * k + 1] = -self.weights[:, k]
        b0 = np.zeros(w0.shape[1])
        # Channel c is scale[c] * (stat - centre[c]): range channels for every statistic, then
        # soft channels for the linear ones.
        mid, half = self._mid_half()
        scale = np.r_[self.bound / half, self._soft_scale / self.std[:LINEAR]]
        centre = np.r_[mid, self.mean[:LINEAR]]
        stat_of = [*range(len(STATS)), *range(LINEAR)]
        w1 = np.zeros((w0.shape[1], CHANNELS))
        for c, k in enumerate(stat_of):
            if k < LINEAR:  # s = Relu(s) - Relu(-s)
                w1[diffs + 2 * k, c], w1[diffs + 2 * k + 1, c] = scale[c], -scale[c]
            else:  # roughness: the mean of the 2F-2 halves of |d_j|
                w1[:diffs, c] = scale[c] / (f - 1)
        b1 = -scale * centre
        return [(w0, b0), (w1, b1)]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel ``[lo_u, hi_u]`` of ``u``: the guard term is what lies outside them."""
        b = np.r_[np.full(len(STATS), self.bound), np.full(LINEAR, self._soft_scale * self.band)]
        return -b, b

    def describe(self) -> dict:
        return {
            "statistics": list(STATS),
            "whitened": ["level", "slope"],
            "range": {s: [float(a), float(b)] for s, a, b in zip(STATS, self.lo, self.hi)},
            "range_quantile": self.quantile,
            "weight": self.weight,
            "soft_weight": self.soft,
            "soft_band": self.band,
            "mse_train": self.mse_train,
            "rule": "score = reconstruction MSE + mse_train * (weight * sum over statistics of "
                    "(distance outside the training range, in half-widths of it)**2 + "
                    "soft_weight * sum over level, slope and newest reading of "
                    "(distance of their z-score outside +-soft_band)**2); level and slope are "
                    "whitened by the training windows' covariance",
        }
