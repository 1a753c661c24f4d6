"""A small dense autoencoder trained with plain numpy (Adam, MSE) so the pipeline needs no
deep-learning framework. Layer sizes follow the seed shape F->64->32->8->32->64->F with ReLU.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HIDDEN = (64, 32, 8, 32, 64)


@dataclass
class Autoencoder:
    weights: list[np.ndarray]  # each [in, out]
    biases: list[np.ndarray]  # each [out]
    history: list[dict] = field(default_factory=list)

    @classmethod
    def init(cls, n_features: int, rng: np.random.Generator) -> "Autoencoder":
        dims = (n_features, *HIDDEN, n_features)
        ws, bs = [], []
        for a, b in zip(dims[:-1], dims[1:]):
            ws.append(rng.normal(0.0, np.sqrt(2.0 / a), size=(a, b)))
            bs.append(np.zeros(b))
        return cls(ws, bs)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        acts = [x]
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < last:
                h = np.maximum(h, 0.0)
            acts.append(h)
        return h, acts

    def scores(self, xn: np.ndarray) -> np.ndarray:
        """Mean squared reconstruction error per row, on standardized input."""
        out, _ = self.forward(xn)
        return ((out - xn) ** 2).mean(axis=1)

    def fit(
        self,
        train: np.ndarray,
        val: np.ndarray,
        rng: np.random.Generator,
        epochs: int = 40,
        batch: int = 256,
        lr: float = 1e-3,
        patience: int = 5,
    ) -> None:
        params = self.weights + self.biases
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
        best, best_params, stale = np.inf, None, 0
        n_layers = len(self.weights)
        for epoch in range(epochs):
            order = rng.permutation(train.shape[0])
            for start in range(0, len(order), batch):
                xb = train[order[start : start + batch]]
                out, acts = self.forward(xb)
                grad = 2.0 * (out - xb) / xb.size  # d(mean sq err)/d(out)
                gw, gb = [None] * n_layers, [None] * n_layers
                for i in reversed(range(n_layers)):
                    gw[i] = acts[i].T @ grad
                    gb[i] = grad.sum(axis=0)
                    if i > 0:
                        grad = (grad @ self.weights[i].T) * (acts[i] > 0)
                # The target is the input itself; its gradient through xn is not trained.
                t += 1
                for j, g in enumerate(gw + gb):
                    m[j] = b1 * m[j] + (1 - b1) * g
                    v[j] = b2 * v[j] + (1 - b2) * g * g
                    mh = m[j] / (1 - b1**t)
                    vh = v[j] / (1 - b2**t)
                    params[j] -= lr * mh / (np.sqrt(vh) + eps)
            val_loss = float(self.scores(val).mean())
            train_loss = float(self.scores(train[: min(len(train), 8192)]).mean())
            self.history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss})
            if val_loss < best - 1e-6:
                best, stale = val_loss, 0
                best_params = [p.copy() for p in params]
            else:
                stale += 1
                if stale >= patience:
                    break
        if best_params is not None:
            for p, bp in zip(params, best_params):
                p[...] = bp
