"""How samples are laid out in time on a target: the schedule.

* ``batched`` — every sample runs from rest in its own window of ``timesteps`` steps, independent of
  the others, so a simulator may run a whole batch at once. On Lava the samples run back to back in
  one run: each population is a ``LIFReset`` whose reset offset is staggered by its depth, so with
  the one-step synaptic delay each population is reset exactly when a sample's window reaches it.
  Needs a layered network (:attr:`~neurocomp.ir.Network.is_layered`) without plasticity.
* ``stream`` — one continuous run: each sample is ``timesteps`` steps of input then ``rest`` silent
  steps, nothing is reset, weights may learn from sample to sample, recurrent projections act
  across steps. What a plastic or recurrent network needs.

Either way a run's result is cut into one window per sample and population: population ``p`` at
depth ``d`` owns steps ``[k*window + d, (k+1)*window + d)`` of the stream for sample ``k`` (in the
batched schedule that is exactly its reset window), so readouts and comparisons never depend on the
schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BATCHED, STREAM = "batched", "stream"
KINDS = (BATCHED, STREAM)


@dataclass(frozen=True)
class Schedule:
    kind: str
    timesteps: int          # input steps per sample
    rest: int = 0           # stream only: silent steps after each sample

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"schedule kind {self.kind!r}: allowed {KINDS}")
        if int(self.timesteps) < 1 or int(self.rest) < 0:
            raise ValueError(f"schedule: timesteps must be >= 1 and rest >= 0, got {self.timesteps}, {self.rest}")
        if self.kind == BATCHED and self.rest:
            raise ValueError("a batched schedule has no rest steps (every sample starts from rest)")
        object.__setattr__(self, "timesteps", int(self.timesteps))
        object.__setattr__(self, "rest", int(self.rest))

    @property
    def window(self) -> int:
        """Steps per sample: input plus rest."""
        return self.timesteps + self.rest

    @property
    def is_batched(self) -> bool:
        return self.kind == BATCHED

    def as_dict(self) -> dict:
        return {"kind": self.kind, "timesteps": self.timesteps, "rest": self.rest}

    @classmethod
    def from_dict(cls, d: dict) -> "Schedule":
        return cls(d["kind"], d["timesteps"], d.get("rest", 0))


def schedule_problem(net, kind: str):
    """Why ``net`` cannot run on a schedule of ``kind`` (``None`` when it can)."""
    if kind == BATCHED:
        if net.is_plastic:
            return "it learns (plastic projections carry state from sample to sample)"
        from neurocomp.ir.neurons import ATRLIF, LoihiATRLIF
        adaptive = [p.name for p in net.populations if isinstance(p.neuron, (ATRLIF, LoihiATRLIF))]
        if adaptive:
            return (f"populations {', '.join(adaptive)} are ATRLIF (Lava has no reset-interval ATRLIF: "
                    "samples are separated by rest steps, not resets)")
        return net.layering_problem()
    return None


def choose_schedule(net, timesteps: int, rest: int = 0) -> Schedule:
    """Batched when the network is layered feed-forward and does not learn, else one stream
    (``rest`` silent steps after each sample)."""
    if schedule_problem(net, BATCHED) is None:
        return Schedule(BATCHED, timesteps)
    return Schedule(STREAM, timesteps, rest)


def to_stream(samples: np.ndarray, rest: int) -> np.ndarray:
    """Samples ``[n, T, n_in]`` -> one stream ``[n * (T + rest), n_in]`` with silent rests."""
    n, T = samples.shape[:2]
    out = np.zeros((n, T + rest) + samples.shape[2:], dtype=samples.dtype)
    out[:, :T] = samples
    return out.reshape((n * (T + rest),) + samples.shape[2:])


def fold_stream(trains: np.ndarray, n_samples: int, window: int, delay: int) -> np.ndarray:
    """A stream's trains ``[steps, ...]`` -> per-sample windows ``[n_samples, window, ...]``: sample
    ``k`` owns steps ``[k*window + delay, (k+1)*window + delay)``; steps past the stream are zeros."""
    steps = trains.shape[0]
    padded = np.zeros((n_samples * window + delay,) + trains.shape[1:], dtype=trains.dtype)
    keep = min(steps, len(padded))
    padded[:keep] = trains[:keep]
    return padded[delay:].reshape((n_samples, window) + trains.shape[1:])


def unfold_windows(windows: np.ndarray, delay: int, steps: int) -> np.ndarray:
    """Inverse of :func:`fold_stream`: per-sample windows back to a stream of ``steps`` steps
    (the ``delay`` leading steps, which belong to no sample, are zeros)."""
    flat = windows.reshape((-1,) + windows.shape[2:])
    out = np.zeros((steps,) + windows.shape[2:], dtype=windows.dtype)
    n = max(0, min(len(flat), steps - delay))
    out[delay:delay + n] = flat[:n]
    return out
