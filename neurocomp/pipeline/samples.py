"""Which samples a compile uses, and how they are encoded — the one home of these rules, so
``run``, ``verify``, ``energy`` and ``hil`` see exactly the samples the compile saw.

Batched schedule (a network that does not learn): every held-out sample is scored; the quantiser
calibrates on the first ``quantize.calibration_samples`` training samples.

Stream schedule: a plastic network learns on the first ``learning.samples`` training samples; an
unsupervised one is then labelled on the next ``learning.label_samples`` (a supervised readout needs
none: output neuron ``j`` is class ``j``) and scored on ``learning.test_samples`` held-out samples,
played after the labelling samples as one stream. Training and labelling positions past the training
set cycle through it again (position ``i`` is training digit ``i mod n``, freshly encoded: its random
stream is seeded by the position), so a network can learn on every training digit and more than once, and
be labelled on digits it learned from, as Diehl & Cook do. Calibration: the first 20 training samples (or,
for a network that does not learn, the first 20 evaluation samples).

Replay: a source that carries its own input (a Brian2 ``SpikeGeneratorGroup`` with spikes) and
names no ``learning:`` section plays that stimulus once, followed by 20 silent steps.

Encoding seeds (each sample's stream is seeded by its position, so a subset encodes as inside the
whole): batched held-out samples with ``input.seed``, calibration samples with ``input.seed + 1``;
stream training and labelling samples with ``input.seed``, held-out ones with ``input.seed + 1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from neurocomp.errors import NeurocompError
from neurocomp.ir import Network
from neurocomp.ir.encodings import encode
from neurocomp.ir.schedule import BATCHED, STREAM, Schedule
from neurocomp.passes.quantize_rules import supervised_projections

REPLAY_TAIL = 20          # silent steps after a replayed stimulus
STREAM_CALIBRATION = 20   # samples the stream calibration runs


@dataclass
class Samples:
    """Encoded samples ``spikes [n, T, n_in]`` with their features ``x`` and labels ``y`` (None: replay)."""

    spikes: np.ndarray
    x: Optional[np.ndarray] = None
    y: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.spikes)

    def head(self, n: int) -> "Samples":
        return Samples(self.spikes[:n], None if self.x is None else self.x[:n], None if self.y is None else self.y[:n])

    @staticmethod
    def concat(a: "Samples", b: "Samples") -> "Samples":
        cat = lambda u, v: None if u is None or v is None else np.concatenate([u, v])  # noqa: E731
        return Samples(np.concatenate([a.spikes, b.spikes]), cat(a.x, b.x), cat(a.y, b.y))


@dataclass(frozen=True)
class PlanSizes:
    """The counts (and flags) a build records to regenerate its samples (``build.json["samples"]``)."""

    train: int = 0
    label: int = 0
    test: int = 0
    calibration: int = 0
    replay: bool = False

    def as_dict(self) -> dict:
        return dict(train=self.train, label=self.label, test=self.test, calibration=self.calibration,
                    replay=self.replay)


@dataclass
class SamplePlan:
    schedule: Schedule
    sizes: PlanSizes
    n_classes: int
    train: Samples
    label: Samples
    test: Samples
    calibration: Samples
    notes: list = field(default_factory=list)

    @property
    def evaluation(self) -> Samples:
        """What the evaluation plays: labelling samples, then the held-out ones."""
        return Samples.concat(self.label, self.test) if len(self.label) else self.test

    def only(self, test: Samples) -> "SamplePlan":
        """A plan that evaluates just ``test`` (no labelling samples before it), e.g. samples shown again."""
        empty = _empty(test.spikes.shape[2], self.schedule.timesteps)
        sizes = PlanSizes(test=len(test), calibration=self.sizes.calibration, replay=self.sizes.replay)
        return SamplePlan(self.schedule, sizes, self.n_classes, empty, empty, test, empty)


def _empty(n_in: int, T: int) -> Samples:
    return Samples(np.zeros((0, T, n_in), dtype=bool), np.zeros((0, n_in)), np.zeros(0, dtype=np.int64))


def _encode(split_x, split_y, lo, hi, enc, T, seed) -> Samples:
    """Positions ``lo..hi-1`` of the split (cycling past its end), each encoded with its position's seed."""
    if hi <= lo:
        return Samples(np.zeros((0, T, split_x[0].size), dtype=bool), split_x[:0], split_y[:0])
    idx = np.arange(lo, hi)
    take = idx % len(split_x)
    return Samples(encode(split_x[take], enc, T, seed=seed, indices=idx), split_x[take], split_y[take])


def stream_sizes(spec, net: Network, split, test_override: Optional[int] = None) -> PlanSizes:
    from neurocomp.spec import LearningSpec
    ls = spec.learning or LearningSpec()
    plastic, supervised = net.is_plastic, bool(supervised_projections(net))
    n_train = ls.samples if plastic else 0              # past the training set: cycles through it
    n_label = ls.label_samples if plastic and not supervised else 0
    n_test = min(test_override or ls.test_samples, len(split.x_test))
    if plastic and not supervised and n_label < 1:
        raise NeurocompError(f"{spec.path}: learning.label_samples must be >= 1 (an unsupervised readout "
                             "labels its neurons)")
    return PlanSizes(n_train, n_label, n_test, STREAM_CALIBRATION)


def plan_samples(sizes: PlanSizes, schedule: Schedule, net: Network, split, input_seed: int,
                 stimulus: Optional[np.ndarray] = None, calibration_samples: int = 0) -> SamplePlan:
    """Encode the samples ``sizes`` asks for (see the module docstring for the rules)."""
    enc, T, n_in = net.input.encoding, schedule.timesteps, net.input.size
    if sizes.replay:
        s = Samples(np.asarray(stimulus, dtype=bool)[None])
        return SamplePlan(schedule, sizes, 0, s, _empty(n_in, T), s, s)
    n_classes = split.n_classes
    if schedule.kind == BATCHED:
        test = _encode(split.x_test, split.y_test, 0, sizes.test, enc, T, input_seed)
        n_cal = min(calibration_samples or sizes.calibration, len(split.x_train))
        cal = Samples(encode(split.x_train[:n_cal], enc, T, seed=input_seed + 1))
        return SamplePlan(schedule, PlanSizes(test=sizes.test, calibration=n_cal), n_classes,
                          _empty(n_in, T), _empty(n_in, T), test, cal)
    first = _encode(split.x_train, split.y_train, 0, sizes.train + sizes.label, enc, T, input_seed)
    train, label = first.head(sizes.train), Samples(first.spikes[sizes.train:], first.x[sizes.train:],
                                                    first.y[sizes.train:])
    test = Samples(encode(split.x_test[:sizes.test], enc, T, seed=input_seed + 1), split.x_test[:sizes.test],
                   split.y_test[:sizes.test])
    evaluation = Samples.concat(label, test) if len(label) else test
    cal = (train if net.is_plastic else evaluation).head(STREAM_CALIBRATION)
    return SamplePlan(schedule, sizes, n_classes, train, label, test, cal)


def replay_schedule(stimulus: np.ndarray) -> Schedule:
    return Schedule(STREAM, len(stimulus), REPLAY_TAIL)
