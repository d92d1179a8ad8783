"""Input encodings: how a sample's features in [0, 1] become the input layer's spikes each step.

Encoding is deterministic: sample ``i`` of a dataset always gets the same spikes (its random stream is
seeded by ``(seed, i)``), so every target — float, cpu, Lava, chip — sees identical input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np


@dataclass(frozen=True)
class RateEncoding:
    """Bernoulli rate code: at every step a pixel in [0, 1] spikes with probability ``x * max_rate``."""

    max_rate: float = 1.0
    kind: str = "rate"


@dataclass(frozen=True)
class LatencyEncoding:
    """Time-to-first-spike: one spike per input at step ``round((1 - x) * (timesteps - 1))``;
    inputs at or below ``threshold`` never spike."""

    threshold: float = 0.0
    kind: str = "latency"


Encoding = Union[RateEncoding, LatencyEncoding]


def rate_probabilities(x: np.ndarray, encoding: RateEncoding) -> np.ndarray:
    """Spike probability per step of each feature under a rate code: ``max_rate * clip(x, 0, 1)``
    (``[samples, n]``). The one definition the encoder draws with and Brian2 PoissonGroup references
    run at."""
    x = np.asarray(x, dtype=np.float64)
    return np.clip(x.reshape(len(x), -1), 0.0, 1.0) * encoding.max_rate


def encode(x: np.ndarray, encoding: Encoding, timesteps: int, seed: int = 0,
           indices: np.ndarray | None = None) -> np.ndarray:
    """Spike trains for feature rows ``x`` ``[samples, ...]`` -> bool ``[samples, timesteps, n]``
    (features flattened C-major).

    ``indices`` are the samples' positions in their dataset (default ``0..len(x)-1``); they seed the
    per-sample random streams so a subset encodes exactly as it does inside the full set.
    """
    x = np.asarray(x, dtype=np.float64)
    x = np.clip(x.reshape(len(x), -1), 0.0, 1.0)
    idx = np.arange(len(x)) if indices is None else np.asarray(indices)
    if isinstance(encoding, RateEncoding):
        out = np.empty((len(x), timesteps, x.shape[1]), dtype=bool)
        p = rate_probabilities(x, encoding)
        for k, (row, i) in enumerate(zip(p, idx)):
            rng = np.random.default_rng([seed, int(i)])
            out[k] = rng.random((timesteps, x.shape[1])) < row
        return out
    if isinstance(encoding, LatencyEncoding):
        out = np.zeros((len(x), timesteps, x.shape[1]), dtype=bool)
        t = np.rint((1.0 - x) * (timesteps - 1)).astype(np.int64)
        s, n = np.nonzero(x > encoding.threshold)
        out[s, t[s, n], n] = True
        return out
    raise TypeError(f"unknown encoding {encoding!r}")
