"""The build directory: what a compile leaves, and the one way every command reads it back.

::

    network.npz           the deployed fixed-point network (learned weights; learning rules kept)
    network_initial.npz   plastic builds: the fixed-point network before learning
    network_float.npz     the imported float network
    stimulus.npz          replay builds: the source's own input stream
    build.json            how to regenerate the compile's samples: spec, dataset, seeds, schedule,
                          sample counts, readout (machines)
    report.json           what the compile measured (machines); report.html (people)

Everything is written at once (a temporary directory renamed into place).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np

from neurocomp.backends.learning_engine import freeze
from neurocomp.errors import NeurocompError
from neurocomp.io import (BUILD_INFO_FIELDS, atomic_directory, atomic_write_json, read_build_info, read_json,
                          require_build_files)
from neurocomp.ir import Network, load_network, save_network
from neurocomp.ir.schedule import BATCHED, Schedule
from neurocomp.passes.learn import Readout
from neurocomp.pipeline.retry import SilentRetry
from neurocomp.pipeline.samples import PlanSizes, SamplePlan, plan_samples

BUILD_FORMAT = 2


@dataclass
class Build:
    """A compiled network as stored on disk."""

    path: Path
    fixed: Network                     # deployed: learned weights, rules kept (it could go on learning)
    float_net: Optional[Network]
    info: dict                         # build.json
    report: dict                       # report.json
    initial: Optional[Network] = None  # plastic builds: before learning
    stimulus: Optional[np.ndarray] = None

    @property
    def schedule(self) -> Schedule:
        s = self.info.get("schedule")
        return Schedule.from_dict(s) if s else Schedule(BATCHED, self.fixed.timesteps)

    @property
    def sizes(self) -> PlanSizes:
        return PlanSizes(**self.info.get("samples", {}))

    @property
    def readout(self) -> Readout:
        return Readout.from_dict(self.info.get("readout") or {})

    @property
    def retry_silent(self) -> Optional[SilentRetry]:
        """The compile's re-presentation of silent evaluation samples (None: off)."""
        return SilentRetry.from_dict(self.info.get("retry_silent"))

    @property
    def learned(self) -> bool:
        return self.initial is not None

    @property
    def frozen(self) -> Network:
        """The deployed network with learning switched off: what run, verify, energy and hil deploy."""
        return freeze(self.fixed, {p.name: p.synapse.weight for p in self.fixed.projections
                                   if p.plasticity is not None})

    @property
    def scales(self) -> Dict[str, float]:
        """Per population, the quantisation scale S (integer = float x S)."""
        return {row["name"]: float(row["scale"]) for row in self.report.get("layers", [])}

    def float_with_learned_weights(self) -> Optional[Network]:
        """The float network with the target's learned weights in float units (``w * 2**exp / S``,
        exactly representable), learning rules kept — what a float reference runs to compare
        dynamics rather than learning."""
        if self.float_net is None:
            return None
        learned = {p.name: p.synapse.weight * 2.0 ** p.synapse.weight_exp / self.scales[p.target]
                   for p in self.fixed.projections if p.plasticity is not None}
        from neurocomp.ir import Dense, Projection
        projs = [Projection(p.name, p.source, p.target, Dense(learned[p.name]), p.plasticity) if p.name in learned
                 else p for p in self.float_net.projections]
        return self.float_net.replace(projections=projs)

    def split(self):
        from neurocomp.data import load_split
        ds = self.info["dataset"]
        return load_split(ds["name"], ds["holdout"], ds["seed"], Path(ds["base_dir"]), classes=ds.get("classes"))

    def plan(self, samples: Optional[int] = None, warmup: bool = True) -> SamplePlan:
        """The compile's evaluation samples, encoded as at compile; ``samples``: the first N held-out
        ones (default: as many as the compile scored); ``warmup=False`` drops the labelling samples."""
        sizes = self.sizes
        if sizes.replay:
            return plan_samples(sizes, self.schedule, self.fixed, None, 0, stimulus=self.stimulus)
        split = self.split()
        from neurocomp.process import check_run_memory
        check_run_memory(self.fixed, samples or len(split.x_test) + self.sizes.train + self.sizes.label,
                         where=self.path, lower="--samples")
        if self.schedule.is_batched:
            want = PlanSizes(test=min(samples or len(split.x_test), len(split.x_test)), calibration=1)
        else:
            want = PlanSizes(train=sizes.train, label=sizes.label if warmup else 0,
                             test=min(samples or sizes.test, len(split.x_test)))
        return plan_samples(want, self.schedule, self.fixed, split, int(self.info["input_seed"]))

    def held_out(self, samples: Optional[int] = None):
        """(spikes, labels) for the first ``samples`` held-out samples, encoded as at compile."""
        plan = self.plan(samples, warmup=False)
        return plan.test.spikes, plan.test.y


def save_build(out: Path, info: dict, report: dict, fixed: Network, float_net: Optional[Network],
               initial: Optional[Network] = None, stimulus: Optional[np.ndarray] = None,
               html: Optional[str] = None, force: bool = False, protect=(), started: Optional[float] = None) -> None:
    """Write a build directory atomically (see the module docstring); ``force``/``protect`` as
    :func:`neurocomp.io.atomic_directory`; ``started``: the compile's start (its total time then
    includes the saving)."""
    info = {"build_format": BUILD_FORMAT, **info}
    with atomic_directory(Path(out), force=force, protect=protect) as tmp:
        save_network(fixed, tmp / "network.npz")
        if initial is not None:
            save_network(initial, tmp / "network_initial.npz")
        if float_net is not None:
            save_network(float_net, tmp / "network_float.npz")
        if stimulus is not None:
            np.savez_compressed(tmp / "stimulus.npz", stimulus=np.asarray(stimulus, dtype=bool))
        atomic_write_json(tmp / "build.json", info)
        if started is not None:
            report["timing_s"]["total"] = round(time.perf_counter() - started, 3)   # saving included
        atomic_write_json(tmp / "report.json", report)
        if html is not None:
            (tmp / "report.html").write_text(html)


# what run / verify / energy / hil read from build.json (checked on load: one line naming what is wrong)
INFO_FIELDS = {**BUILD_INFO_FIELDS, "spec": str, "schedule": {"kind": str, "timesteps": int, "rest": int},
               "samples": {"train": int, "label": int, "test": int, "calibration": int, "replay": bool}}


def load_build(path) -> Build:
    path = require_build_files(path)
    info = read_build_info(path, INFO_FIELDS)
    report = (read_json(path / "report.json", dict, "compile report (report.json)")
              if (path / "report.json").is_file() else {})
    if info["samples"]["replay"] and not (path / "stimulus.npz").is_file():
        raise NeurocompError(f"{path}: a replay build without stimulus.npz; compile again")
    opt = lambda name: load_network(path / name) if (path / name).is_file() else None  # noqa: E731
    stimulus = None
    if (path / "stimulus.npz").is_file():
        with np.load(path / "stimulus.npz", allow_pickle=False) as z:
            stimulus = z["stimulus"]
    return Build(path, load_network(path / "network.npz"), opt("network_float.npz"), info, report,
                 initial=opt("network_initial.npz"), stimulus=stimulus)
