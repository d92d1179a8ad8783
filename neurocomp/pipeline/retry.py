"""Diehl & Cook's re-presentation of silent samples (``learning.retry_silent``), at evaluation.

A rate-coded labelling or held-out sample answered with fewer than ``below_spikes`` output spikes is
played again on its own, from the network's rest state (learned weights and thresholds frozen), at
``max_rate * (1 + k * rate_step)`` for retry ``k`` (capped at a spike every step), until it answers or
``retries`` are spent; its counts become the last presentation's. On a chip the host does this: it
reads the output spike counters after a sample and sends the sample again. Diehl & Cook (2015) raise
the rate by 32 Hz on 63.75 Hz, i.e. ``rate_step`` 0.5, for every sample under 5 spikes.

Every target and the reference replay the same retry samples (a retried sample's spikes depend on its
position and the retry only); each decides from its own counts which samples it retries.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import numpy as np

from neurocomp.errors import NeurocompError
from neurocomp.ir import RateEncoding
from neurocomp.ir.encodings import encode

RETRY_SEED = 7919     # retry k encodes with seed input_seed + RETRY_SEED * k (apart from every other stream)


@dataclass(frozen=True)
class SilentRetry:
    below_spikes: int = 5
    rate_step: float = 0.5
    retries: int = 3

    @classmethod
    def from_spec(cls, spec) -> Optional["SilentRetry"]:
        """The spec's ``learning.retry_silent`` (None: off); refused for a code that has no rate to raise."""
        r = spec.learning.retry_silent if spec.learning is not None else None
        if r is None:
            return None
        if spec.input.encoding != "rate":
            raise NeurocompError(f"{spec.path}: learning.retry_silent raises the input rate, so it needs "
                                 f"input.encoding: rate (have {spec.input.encoding!r})")
        return cls(r.below_spikes, r.rate_step, r.retries)

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> Optional["SilentRetry"]:
        return None if not d else cls(int(d["below_spikes"]), float(d["rate_step"]), int(d["retries"]))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def encoding(self, base: RateEncoding, k: int) -> RateEncoding:
        return dataclasses.replace(base, max_rate=min(1.0, base.max_rate * (1.0 + k * self.rate_step)))


RunCounts = Callable[[RateEncoding, np.ndarray, np.ndarray], np.ndarray]


def retry_silent(counts: np.ndarray, x: np.ndarray, encoding: RateEncoding, timesteps: int, input_seed: int,
                 retry: SilentRetry, run: RunCounts) -> Tuple[np.ndarray, List[int]]:
    """``(counts, retried per round)``: ``counts [samples, n_out]`` of one evaluation with its silent samples
    shown again. ``x``: the samples' features; ``run(encoding, spikes, rows)`` plays ``spikes [len(rows),
    timesteps, n_in]`` (samples ``rows``, encoded with ``encoding``) from rest and returns their output counts."""
    if not isinstance(encoding, RateEncoding):
        raise NeurocompError(f"retry_silent: a rate code is needed, the input is {type(encoding).__name__}")
    counts = np.array(counts, dtype=np.int64, copy=True)
    rounds: List[int] = []
    for k in range(1, retry.retries + 1):
        rows = np.nonzero(counts.sum(axis=1) < retry.below_spikes)[0]
        if not len(rows):
            break
        enc = retry.encoding(encoding, k)
        spikes = encode(np.asarray(x)[rows], enc, timesteps, seed=input_seed + RETRY_SEED * k, indices=rows)
        counts[rows] = run(enc, spikes, rows)
        rounds.append(int(len(rows)))
    return counts, rounds
