"""Two simple detectors to judge the autoencoder against, fitted on the same training rows.

``ZScore``  how far the reading is from the training mean, in training standard deviations:
            for windows the most recent reading's ``|z|``; for tabular rows the largest
            ``|z|`` over the features.
``PCA``     mean squared reconstruction error of the standardized row from its projection on
            the leading principal components of the training rows (enough to explain
            ``variance`` of their variance, at least one and fewer than all; a single feature
            keeps none, so its score is ``z**2``).

Both score raw rows (higher is more anomalous), like the exported model; neither clips.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class BaselineError(ValueError):
    """A baseline cannot be fitted on the rows given."""


def _standardizer(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if train.ndim != 2 or train.shape[0] < 2:
        raise BaselineError(f"need at least two training rows, got shape {train.shape}")
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    return mean, np.where(std < 1e-6, 1.0, std)  # constant columns: as the pipeline does


@dataclass
class ZScore:
    mean: np.ndarray
    std: np.ndarray
    columns: np.ndarray  # the feature columns whose |z| counts

    @classmethod
    def fit(cls, train: np.ndarray, windowed: bool) -> "ZScore":
        mean, std = _standardizer(train)
        cols = np.array([train.shape[1] - 1]) if windowed else np.arange(train.shape[1])
        return cls(mean, std, cols)

    def scores(self, x: np.ndarray) -> np.ndarray:
        c = self.columns
        return (np.abs(x[:, c] - self.mean[c]) / self.std[c]).max(axis=1)

    def describe(self) -> dict:
        last = len(self.columns) == 1 and len(self.mean) > 1
        return {"rule": "|z| of the most recent reading" if last
                else "max over features of |z|"}


@dataclass
class PCA:
    mean: np.ndarray
    std: np.ndarray
    components: np.ndarray  # [F, k], orthonormal columns
    explained: float  # share of the training variance the k components explain
    variance: float

    @classmethod
    def fit(cls, train: np.ndarray, variance: float = 0.95) -> "PCA":
        mean, std = _standardizer(train)
        z = (train - mean) / std
        # Eigenvectors of the [F, F] scatter matrix, largest first: an SVD of z, cheaper.
        var, vecs = np.linalg.eigh(z.T @ z)
        var, vt = np.clip(var[::-1], 0.0, None), vecs[:, ::-1].T
        total = var.sum()
        f = train.shape[1]
        if total <= 0:
            k = 1
            share = np.zeros(len(var))
        else:
            share = np.cumsum(var) / total
            k = int(np.searchsorted(share, variance - 1e-12) + 1)
        # All F components reconstruct every row exactly (score 0): keep at most F - 1, so a
        # single feature keeps none and scores z**2.
        k = min(max(1, k), f - 1)
        explained = float(share[k - 1]) if total > 0 and k > 0 else 0.0
        return cls(mean, std, vt[:k].T.copy(), explained, variance)

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        recon = (z @ self.components) @ self.components.T
        return ((z - recon) ** 2).mean(axis=1)

    def describe(self) -> dict:
        return {"rule": f"PCA reconstruction MSE, components for {self.variance:g} of variance",
                "components": int(self.components.shape[1]),
                "features": int(self.components.shape[0]),
                "explained_variance": self.explained}
