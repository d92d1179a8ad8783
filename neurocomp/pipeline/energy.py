"""Energy of a compiled network: one cpu run of the scored samples (spikes recorded, u/v probed) —
and, for a network that learned, one of its training samples with learning on — handed to
:func:`neurocomp.energy.estimate_energy`, which counts activity on those results (no re-simulation)."""
from __future__ import annotations

from typing import Optional, Sequence

from neurocomp.backends import get_backend
from neurocomp.backends.learning_engine import freeze
from neurocomp.passes.quantize_rules import supervised_projections


def energy_of_network(deployed, float_net, plan, schedule, learn_net=None, teacher=None,
                      devices: Optional[Sequence[str]] = None, baseline: str = "gpu", placement=None,
                      measure: bool = True, log=lambda s: None, ann=None):
    """The energy report of ``deployed`` (learning frozen) on ``plan``'s held-out samples, plus the
    learning run of ``learn_net`` (the network before learning) on ``plan``'s training samples."""
    from neurocomp.energy import DEFAULT_DEVICES, estimate_energy

    cpu = get_backend("cpu")
    frozen = freeze(deployed, {p.name: p.synapse.weight for p in deployed.projections if p.plasticity is not None})
    log(f"counting activity on {len(plan.test)} held-out samples ({schedule.kind} schedule, cpu)")
    result = cpu.run(frozen, plan.test.spikes, schedule, record=True, probe=True)
    learning = None
    if learn_net is not None and len(plan.train):
        log(f"and learning over {len(plan.train)} training samples")
        learning = cpu.run(learn_net, plan.train.spikes, schedule, learn=True, teacher=teacher, record=True,
                           probe=True)
    return estimate_energy(frozen, result, devices=devices or DEFAULT_DEVICES, baseline=baseline,
                           float_net=float_net, placement=placement, measure=measure, learning_result=learning,
                           learning_net=learn_net, ann=ann)


def energy_of_build(build, samples: Optional[int] = None, devices=None, baseline: str = "gpu", placement=None,
                    measure: bool = True, learning: bool = True, log=lambda s: None):
    """:func:`energy_of_network` for a build directory's network on its first ``samples`` held-out
    (and training) samples."""
    from neurocomp.pipeline.compile import plan_teacher

    plan = build.plan(samples, warmup=False)
    learn_net, teacher = None, None
    if learning and build.learned and len(plan.train):
        plan.train = plan.train.head(samples or len(plan.train))
        learn_net = build.initial
        teacher = plan_teacher(build.initial, plan, build.schedule, supervised_projections(build.initial))
    ann = None
    if build.info.get("source") == "ann":    # a converted ANN: the baseline is that ANN (its spec names it)
        from neurocomp.pipeline.conversion import build_source_ann
        ann = build_source_ann(build, log)
    return energy_of_network(build.fixed, build.float_net, plan, build.schedule, learn_net=learn_net,
                             teacher=teacher, devices=devices, baseline=baseline, placement=placement,
                             measure=measure, log=log, ann=ann)
