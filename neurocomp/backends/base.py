"""The one seam every target sits behind: a :class:`Backend` declares what it can do
(:class:`Capabilities`) and runs a network on samples laid out by a
:class:`~neurocomp.ir.schedule.Schedule`, returning one :class:`Result` type.

Code above this layer picks backends by capability and availability, never by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np

from neurocomp.ir import Network
from neurocomp.ir.schedule import Schedule

Progress = Optional[Callable[[int, int], None]]


@dataclass(frozen=True)
class Capabilities:
    """What a target can do.

    ``network``: which IR it runs — ``"fixed"`` (Loihi integers) or ``"float"``;
    ``batched`` / ``stream``: the schedules it runs; ``learning``: plastic projections learn on it;
    ``state_probes``: it can return u/v per step; ``reference``: it runs the *source* model (e.g. the
    user's Brian2 objects) rather than our IR, so it needs the spec; ``bit_exact``: equal to Lava's
    fixed-point models spike for spike (tests prove it).
    """

    network: str
    batched: bool = True
    stream: bool = True
    learning: bool = False
    state_probes: bool = False
    reference: bool = False
    bit_exact: bool = False
    hardware: bool = False         # a chip: its design rules (core limits) are errors, not warnings

    def supports(self, schedule: Schedule) -> bool:
        return self.batched if schedule.is_batched else self.stream


@dataclass
class Result:
    """What a target returns, whatever the schedule.

    Per population ``p`` (depth ``d``) and sample ``k`` the window is the ``window`` steps from
    ``k*window + d`` (see :mod:`neurocomp.ir.schedule`):

    * ``counts[p]``: spikes per sample and neuron ``[samples, n]``;
    * ``spikes[p]``: the windows' trains ``[samples, window, n]`` when recorded;
    * ``states[p]``: ``{"u": [samples, window, n], "v": ...}`` when probed (after each step's reset);
    * ``stream[p]``: stream schedule, recorded — the whole run's trains ``[steps, n]``;
    * ``weights[proj]``: final weight mantissas of projections that learned; ``learning_updates[proj]``:
      learning epochs that did work; ``peaks[p]``: ``(max |u|, max |v|)`` integers when probed;
    * ``thresholds[p]``: stream runs, ATRLIF populations — each neuron's adaptive threshold at the end
      (the learned state a learning run carries into evaluation besides its weights).
    """

    target: str
    output: str
    schedule: Schedule
    counts: Dict[str, np.ndarray]
    spikes: Dict[str, np.ndarray] = field(default_factory=dict)
    states: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    stream: Dict[str, np.ndarray] = field(default_factory=dict)
    weights: Dict[str, np.ndarray] = field(default_factory=dict)
    learning_updates: Dict[str, int] = field(default_factory=dict)
    peaks: Dict[str, tuple] = field(default_factory=dict)
    input_spikes: Optional[np.ndarray] = None
    seconds: float = 0.0
    details: dict = field(default_factory=dict)   # what the target did, JSON-able (e.g. how a reference fed its input)
    thresholds: Dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return int(len(next(iter(self.counts.values())))) if self.counts else 0

    @property
    def predictions(self) -> np.ndarray:
        """Class = output neuron with most spikes (lowest index wins ties, on every target); ``-1`` for a
        sample the output never spiked for (no answer: never counted correct)."""
        c = self.counts[self.output]
        return np.where(c.sum(axis=1) == 0, -1, np.argmax(c, axis=1))

    @property
    def silent(self) -> np.ndarray:
        """Samples on which the output population did not spike at all (no answer)."""
        return self.counts[self.output].sum(axis=1) == 0

    def accuracy(self, labels: np.ndarray) -> float:
        return float(np.mean(self.predictions == np.asarray(labels)))

    def head(self, n: int) -> "Result":
        """The first ``n`` samples (windows and counts; stream trains and weights kept whole)."""
        cut = lambda d: {k: v[:n] for k, v in d.items()}  # noqa: E731
        return Result(self.target, self.output, self.schedule, cut(self.counts), cut(self.spikes),
                      {k: cut(v) for k, v in self.states.items()}, self.stream, self.weights,
                      self.learning_updates, self.peaks,
                      None if self.input_spikes is None else self.input_spikes[:n], self.seconds)


def teacher_values(teacher: Optional[Dict[str, np.ndarray]]) -> Optional[Dict[str, np.ndarray]]:
    """A teacher given as 0/1 flags -> the third factor ``y2`` a fixed-point learning rule receives."""
    from neurocomp.ir.plasticity import THIRD_FACTOR_LEVEL
    return None if teacher is None else {k: np.asarray(v, dtype=np.int64) * THIRD_FACTOR_LEVEL
                                         for k, v in teacher.items()}


def concat_results(a: Result, b: Result) -> Result:
    """Two runs of consecutive batched samples as one."""
    join = lambda x, y: {k: np.concatenate([x[k], y[k]]) for k in x if k in y}  # noqa: E731
    return Result(a.target, a.output, a.schedule, join(a.counts, b.counts), join(a.spikes, b.spikes),
                  {k: join(a.states[k], b.states[k]) for k in a.states if k in b.states},
                  seconds=a.seconds + b.seconds)


@dataclass(frozen=True)
class Source:
    """What a reference target needs to run the original model: the spec, and the samples' features
    (a Brian2 PoissonGroup draws its own spikes from them, seeded with ``seed``)."""

    spec: object
    features: Optional[np.ndarray] = None
    seed: Optional[int] = None


class Backend:
    """A target. Subclasses set ``name``, ``description``, ``capabilities`` and implement :meth:`run`."""

    name: str = ""
    description: str = ""
    capabilities: Capabilities

    def unavailable(self) -> Optional[str]:
        """Why this target cannot run on this machine (``None`` when it can)."""
        return None

    def accepts(self, source: Optional[Source]) -> bool:
        """Reference targets: whether they can run this source's own model."""
        return not self.capabilities.reference

    def check(self, net: Network, schedule: Schedule) -> None:
        """Raise :class:`~neurocomp.errors.TargetError` naming what this target cannot run."""
        from neurocomp.errors import TargetError
        why = self.unavailable()
        if why:
            raise TargetError(why)
        if not self.capabilities.supports(schedule):
            raise TargetError(f"target {self.name!r} does not run the {schedule.kind} schedule")
        fixed = net.is_fixed_point
        if fixed != (self.capabilities.network == "fixed"):
            raise TargetError(f"target {self.name!r} runs {self.capabilities.network} networks; "
                              f"network {net.name!r} is {'fixed point' if fixed else 'float'}")

    def run(self, net: Network, spikes: np.ndarray, schedule: Schedule, *, record: bool = False,
            probe: bool = False, learn: bool = False, teacher: Optional[Dict[str, np.ndarray]] = None,
            progress: Progress = None, source=None) -> Result:
        """Run samples ``spikes`` ``[samples, timesteps, n_in]`` laid out by ``schedule``.

        ``record``: keep every population's trains; ``probe``: also u/v and their peaks;
        ``learn``: plastic projections learn (stream schedule); ``teacher[proj]``: ``[steps, n_post]``
        0/1 flags for the whole stream (1 = the neuron should be silent: a supervised rule depresses
        it); ``source``: the spec and the samples' features, for reference targets.
        """
        raise NotImplementedError
