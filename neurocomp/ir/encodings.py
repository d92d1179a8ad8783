"""Input encodings: how a sample's features in [0, 1] become the input layer's spikes each step.

Encoding is deterministic: sample ``i`` of a dataset always gets the same spikes (its random stream is
seeded by ``(seed, i)``), so every target — float, cpu, Lava, chip — sees identical input.

Two kinds of input: **spikes** (:class:`RateEncoding`, :class:`LatencyEncoding`,
:class:`SinusoidEncoding`: bool trains) and
**graded values** (:class:`CurrentEncoding`: every step the same integer per feature, what Lava's
``Dense``/``Conv`` with ``num_message_bits > 0`` multiply their weights with — direct-current input,
as converted ANNs take it).
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


@dataclass(frozen=True)
class SinusoidEncoding:
    """Phase code: a pixel ``x`` in [0, 1] drives ``sin(2 pi f t dt)`` with ``f = x * max_freq`` Hz, ``t``
    the step within the sample (0 at its first step) and ``dt`` seconds per step (one Brian2 ``dt``, 1 ms);
    it spikes once per period, on the step holding the peak: peak ``k`` (``k = 0, 1, ...``) lies at
    ``tau_k = (k + 1/4) / (f dt)`` steps and step ``floor(tau_k)`` spikes. ``x = 0`` never spikes.
    ``max_freq * dt <= 1/2`` (Nyquist: at most one peak per step). No randomness.
    """

    max_freq: float = 64.0
    dt: float = 1e-3
    kind: str = "sinusoid"

    def __post_init__(self):
        for name in ("max_freq", "dt"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(v) or v <= 0:
                raise ValueError(f"SinusoidEncoding.{name}: expected a finite number > 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.max_freq * self.dt > 0.5:
            raise ValueError(f"SinusoidEncoding.max_freq: {self.max_freq:g} Hz is above Nyquist "
                             f"(1 / (2 dt) = {0.5 / self.dt:g} Hz)")

    def cycles_per_step(self, x: np.ndarray) -> np.ndarray:
        """Periods per step of each feature: ``clip(x, 0, 1) * max_freq * dt`` (its spikes per step in
        the long run)."""
        return np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0) * (self.max_freq * self.dt)


def sinusoid_spikes(x: np.ndarray, encoding: SinusoidEncoding, timesteps: int) -> np.ndarray:
    """Bool ``[samples, timesteps, n]`` of :class:`SinusoidEncoding` for features ``[samples, n]``: step
    ``t`` spikes when a peak falls in ``[t, t + 1)``, i.e. when the number of peaks before ``t + 1``,
    ``max(0, ceil(c (t + 1) - 1/4))`` with ``c`` cycles per step, exceeds that before ``t``."""
    c = encoding.cycles_per_step(np.asarray(x, dtype=np.float64).reshape(len(x), -1))
    edges = np.arange(timesteps + 1, dtype=np.float64)
    peaks = np.maximum(0.0, np.ceil(edges[None, :, None] * c[:, None, :] - 0.25))  # peaks before each edge
    return np.diff(peaks, axis=1) > 0


@dataclass(frozen=True)
class CurrentEncoding:
    """Direct-current (graded) input: every step each feature ``x`` in [0, 1] sends the integer
    ``round(x * (2**bits - 1))`` — the same value at every step of the sample.

    The integers are the input's fixed-point format: one level stands for :attr:`unit` = ``1 / (2**bits
    - 1)`` in float units. The float IR reads the input as ``level * unit`` (the pixel value: the float
    network is the converted ANN's own arithmetic); the quantiser folds ``unit`` into the weights of the
    projections leaving the input and gives them ``num_message_bits = bits``, so Lava's ``Dense``/``Conv``
    treat the messages as values (``W @ x``) instead of casting them to bool. ``bits`` is 1..24 (Loihi's
    24-bit state; a graded spike carries at most that much here).
    """

    bits: int = 8
    kind: str = "current"

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)) or not 1 <= self.bits <= 24:
            raise ValueError(f"CurrentEncoding.bits: expected an int in 1..24, got {self.bits!r}")
        object.__setattr__(self, "bits", int(self.bits))

    @property
    def levels(self) -> int:
        """The largest integer a feature of 1.0 becomes: ``2**bits - 1``."""
        return 2 ** self.bits - 1

    @property
    def unit(self) -> float:
        """Float units of one integer level: ``1 / levels``."""
        return 1.0 / self.levels

    @property
    def dtype(self):
        """The smallest unsigned integer type holding every level."""
        return np.uint8 if self.bits <= 8 else np.uint16 if self.bits <= 16 else np.uint32


Encoding = Union[RateEncoding, LatencyEncoding, SinusoidEncoding, CurrentEncoding]


def is_graded(encoding) -> bool:
    """Whether an encoding sends graded values (integers) rather than spikes."""
    return isinstance(encoding, CurrentEncoding)


def rate_probabilities(x: np.ndarray, encoding: RateEncoding) -> np.ndarray:
    """Spike probability per step of each feature under a rate code: ``max_rate * clip(x, 0, 1)``
    (``[samples, n]``). The one definition the encoder draws with and Brian2 PoissonGroup references
    run at."""
    x = np.asarray(x, dtype=np.float64)
    return np.clip(x.reshape(len(x), -1), 0.0, 1.0) * encoding.max_rate


def encode(x: np.ndarray, encoding: Encoding, timesteps: int, seed: int = 0,
           indices: np.ndarray | None = None) -> np.ndarray:
    """Spike trains for feature rows ``x`` ``[samples, ...]`` -> bool ``[samples, timesteps, n]``
    (features flattened C-major); for :class:`CurrentEncoding` the integer levels ``[samples, timesteps,
    n]`` (:attr:`CurrentEncoding.dtype`) as a read-only view repeating one row per sample over the
    steps (no memory per step; engines see the steps are equal from its zero stride).

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
    if isinstance(encoding, SinusoidEncoding):
        return sinusoid_spikes(x, encoding, timesteps)
    if isinstance(encoding, CurrentEncoding):
        levels = np.rint(x * encoding.levels).astype(encoding.dtype)
        return np.broadcast_to(levels[:, None, :], (len(x), timesteps, x.shape[1]))
    raise TypeError(f"unknown encoding {encoding!r}")
