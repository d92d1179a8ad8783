"""Learning on the target and reading classes out: the teacher a supervised rule needs, and the
readout that turns output spike counts into classes.

* :func:`supervision_flags`: the teacher of a supervised readout — output neuron ``j`` stands for
  class ``j`` and is flagged "wrong" while a sample of another class owns the stream;
* :class:`Readout`: ``argmax`` (the output neuron that fires most is the class) or ``assignments``
  (Diehl & Cook 2015: each output neuron is labelled with the class it answers most to on labelling
  samples, and a sample's class is the one whose neurons fire most on average).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

ARGMAX, ASSIGNMENTS = "argmax", "assignments"
SILENT = -1   # the prediction of a sample the output population never spiked for


def supervision_flags(labels: np.ndarray, n_out: int, window: int, delay: int, steps: int) -> np.ndarray:
    """The teacher of a supervised readout, ``[steps, n_out]`` 0/1: output neuron ``j`` stands for
    class ``j`` and is flagged "wrong" (1) while a sample of another class owns the stream.

    Sample ``k`` owns steps ``[k*window + delay, (k+1)*window + delay)`` — the steps whose output
    spikes are credited to it. The shift by ``delay`` (a synapse delivers a spike one step later per
    layer) makes the first post spike a sample can cause meet that sample's flags, and the sample's
    rest steps stay flagged: a spike there still comes from that sample's input (its decaying
    current, and the pre traces still hold its pixels). The first ``delay`` steps, before any sample
    can reach the output, are unflagged.
    """
    flags = np.zeros((steps, n_out), dtype=np.int64)
    for k, label in enumerate(labels):
        lo, hi = k * window + delay, min((k + 1) * window + delay, steps)
        if lo < steps:
            flags[lo:hi] = np.arange(n_out) != label
    return flags


def assign_labels(counts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Each neuron's class: the one it answers most to on average (-1 if it never spiked)."""
    rates = np.zeros((n_classes, counts.shape[1]))
    for c in range(n_classes):
        sel = labels == c
        if sel.any():
            rates[c] = counts[sel].mean(axis=0)
    out = np.argmax(rates, axis=0)
    out[rates.max(axis=0) == 0] = -1
    return out


def classify(counts: np.ndarray, assignments: np.ndarray, n_classes: int) -> np.ndarray:
    """Per sample, the class whose assigned neurons fire most on average (Diehl & Cook's readout)."""
    scores = np.full((len(counts), n_classes), -1.0)
    for c in range(n_classes):
        sel = assignments == c
        if sel.any():
            scores[:, c] = counts[:, sel].mean(axis=1)
    return np.argmax(scores, axis=1)


@dataclass(frozen=True)
class Readout:
    """How output spike counts ``[samples, n_out]`` become classes."""

    kind: str = ARGMAX
    n_classes: int = 0
    assignments: Optional[tuple] = None

    @classmethod
    def labelled(cls, counts: np.ndarray, labels: np.ndarray, n_classes: int) -> "Readout":
        """Diehl & Cook's readout, labelled on ``counts`` of samples with ``labels``."""
        return cls(ASSIGNMENTS, n_classes, tuple(int(a) for a in assign_labels(counts, labels, n_classes)))

    def predict(self, counts: np.ndarray) -> np.ndarray:
        """Classes per sample; ``-1`` (no answer, never correct) where the output did not spike at all."""
        if self.kind == ASSIGNMENTS:
            out = classify(counts, np.asarray(self.assignments), self.n_classes)
        else:
            out = np.argmax(counts, axis=1)
        return np.where(np.asarray(counts).sum(axis=1) == 0, SILENT, out)

    def describe(self) -> str:
        if self.kind == ASSIGNMENTS:
            return "per-neuron class assignments (Diehl & Cook)"
        return "output neuron j = class j (most spikes)"

    def neurons_per_class(self) -> Optional[list]:
        if self.kind != ASSIGNMENTS:
            return None
        a = np.asarray(self.assignments)
        return np.bincount(a[a >= 0], minlength=self.n_classes).tolist()

    def as_dict(self) -> dict:
        return {"kind": self.kind, "n_classes": self.n_classes,
                "assignments": None if self.assignments is None else list(self.assignments)}

    @classmethod
    def from_dict(cls, d: dict) -> "Readout":
        a = d.get("assignments")
        return cls(d.get("kind", ARGMAX), int(d.get("n_classes", 0)), None if a is None else tuple(a))


def accuracy(predictions: np.ndarray, labels: Sequence[int]) -> float:
    return float(np.mean(np.asarray(predictions) == np.asarray(labels)))
