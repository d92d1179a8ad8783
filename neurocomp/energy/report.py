"""The energy report: one entry point, :func:`estimate_energy`, for both schedules.

The caller runs the deployed network once on a target (``record=True, probe=True``) and passes its
:class:`~neurocomp.backends.base.Result`; this module counts the activity in it
(:mod:`neurocomp.energy.activity`), prices it on each neuromorphic device and on the conventional
baselines (:mod:`neurocomp.energy.cost`), and assembles :class:`EnergyReport` — ``data`` is what
``energy.json`` holds. Every number says where it came from: ``sources`` maps each figure used to
its citation, and each baseline says what was measured.

The conventional devices' job is chosen from the network's properties: the equivalent ANN for a
layered, non-plastic network, the densely stepped network for a recurrent or plastic one — or, for a
network converted from an ANN, that ANN itself (its own layers, pooling and all: ``ann=``), which is
what the SNN replaces. ``data["baseline_network"]`` says which.

Left out, and said so in the report: host I/O (input spikes injected into the chip, output spikes read
back), inter-chip link energy (no public figure; chip crossings are counted), and synaptic-memory limits
in the default placement.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from neurocomp.energy.activity import Activity, count_activity
from neurocomp.energy.cost import (StreamWorkload, ann_problem, conventional_energy, equivalent_ann,
                                   neuromorphic_energy)
from neurocomp.energy.devices import DEFAULT_DEVICES, device_placements, resolve_devices
from neurocomp.ir import Network


def _counted_on(result) -> str:
    """Which target and schedule the activity was counted on, for the report."""
    from neurocomp.backends import TARGETS, get_backend
    what = f" ({get_backend(result.target).description})" if result.target in TARGETS else ""
    sch = result.schedule
    how = ("independent samples" if sch.is_batched else
           f"one continuous stream, {sch.timesteps} input + {sch.rest} rest steps per sample")
    return f"{result.target} target{what}, {sch.kind} schedule ({how})"


def conventional_workload(net: Network, float_net: Optional[Network], activity: Activity, timesteps: int,
                          ann: Optional[list] = None):
    """``(workload, x)``: the conventional devices' job and an input vector for timing it — the
    equivalent ANN (input: sample 0's mean input spikes) for a network on the batched schedule
    (layered, non-plastic: :func:`~neurocomp.energy.cost.ann_problem`), else :class:`StreamWorkload`,
    ``activity.timesteps`` dense steps per sample (the values of ``x`` do not change a dense mat-vec's
    time): a stream network carries its state from step to step and sample to sample, so no one-pass
    ANN stands for it even when its frozen form is layered. ``ann``: the source ANN's own layers, for a
    converted network (used instead of the equivalent ANN)."""
    if activity.schedule == "batched" and (ann is not None or ann_problem(net) is None):
        raster = activity.raster.get(net.input.name)
        x = (np.asarray(raster[:timesteps], dtype=np.float32).mean(axis=0) if raster is not None
             else np.zeros(net.input.size, dtype=np.float32))
        return (ann if ann is not None else equivalent_ann(net, float_net)), x
    workload = StreamWorkload.of(float_net if float_net is not None else net, activity.timesteps)
    return workload, np.full(workload.input_size, 0.1, dtype=np.float32)


def estimate_energy(fixed_net: Network, result, devices: Sequence[str] = DEFAULT_DEVICES, baseline: str = "gpu",
                    float_net: Optional[Network] = None, placement=None, measure: bool = True,
                    learning_result=None, learning_net: Optional[Network] = None,
                    ann: Optional[list] = None) -> "EnergyReport":
    """The energy report of ``fixed_net`` from ``result``, a run of it on held-out samples with
    ``record=True, probe=True`` (either schedule; one inference = one sample's window): ``devices``
    (neuromorphic descriptors, names or .yaml paths) against the ``baseline`` (``gpu``/``cpu`` or a
    conventional descriptor), every other shorthand baseline too.

    ``placement``: a :class:`~neurocomp.passes.place.Placement` or ``{population: [core | (chip,
    core)]}`` used on every neuromorphic device; without it each device uses
    :func:`~neurocomp.passes.place.map_network` on its own descriptor when it has ``limits:``, else the
    default sequential placement. ``float_net``: the float network, whose weights the conventional
    workload uses. ``measure=False`` skips the latency measurements (the cpu baseline needs them).

    ``learning_result`` (with ``learning_net``, the network before learning, rules on; default
    ``fixed_net``): a run with ``learn=True, record=True, probe=True`` over training samples — adds
    the energy of *learning* on the chip, per training sample, in ``data["learning"]``.

    ``ann``: for a network converted from an ANN, that ANN's own layers (:class:`~neurocomp.energy.cost.
    AnnLayer` list, :func:`neurocomp.pipeline.conversion.source_ann_workload`): the conventional devices
    run it instead of the equivalent ANN of the SNN's (pooling-folded) layers.
    """
    devs, bases = resolve_devices(devices, baseline)
    activity = count_activity(fixed_net, result, device_placements(fixed_net, devs, placement))
    workload, x = conventional_workload(fixed_net, float_net, activity, result.schedule.timesteps, ann)
    report = _energy_report(fixed_net, activity, devs, bases, baseline, workload, x, measure, _counted_on(result))
    report.data["baseline_network"] = _baseline_network(workload, ann is not None)
    if learning_result is not None:
        net = learning_net if learning_net is not None else fixed_net
        learn_act = count_activity(net, learning_result, device_placements(net, devs, placement))
        per_dev = {d.name: neuromorphic_energy(d, learn_act, d.name) for d in devs}
        report.data["learning"] = {
            "samples": learn_act.samples,
            "learning_epochs": learn_act.learning_epochs,
            "learning_updates_per_sample": sum(lc.learning_updates.sum() for lc in learn_act.layers)
            / max(learn_act.samples, 1),
            "devices": {k: {f: v[f] for f in ("joules_per_inference", "dynamic_joules_per_inference",
                                               "static_joules_per_inference", "seconds_per_inference",
                                               "breakdown")} for k, v in per_dev.items()},
            "counted_on": _counted_on(learning_result),
            "notes": ["per training sample (joules_per_inference = per sample of the training stream): the "
                      "network before learning, rules on, over the compile's first training samples",
                      "learning updates: each pre spike updates its fan-out, each post spike its fan-in "
                      "(learning_epochs: steps in which a rule did work, from the target)",
                      "active neuron updates of populations fed by a learning projection are exact: read "
                      "from the probed u/v of the learning run (before, u/v could not be replayed under "
                      "moving weights and every update was counted active, an upper bound)"],
        }
    return report


def _baseline_network(workload, source_ann: bool) -> dict:
    """What the conventional devices run, for the report."""
    if isinstance(workload, StreamWorkload):
        return {"kind": "the same network stepped densely", "steps": workload.steps}
    return {"kind": "the source ANN (the network this SNN was converted from)" if source_ann else
            "the equivalent ANN of the SNN's layers (same weights, one dense pass)",
            "layers": [{"name": layer.name, "macs": int(layer.macs)} for layer in workload],
            "macs": int(sum(layer.macs for layer in workload))}


def _energy_report(fixed: Network, activity: "Activity", devs, bases, baseline: str, workload, x: np.ndarray,
                   measure: bool, counted_on: str) -> "EnergyReport":
    """Devices' and baselines' energy of a counted ``activity``; ``workload`` is the conventional
    devices' job (an equivalent ANN's layers or a :class:`StreamWorkload`)."""
    dev_results = {d.name: neuromorphic_energy(d, activity, d.name) for d in devs}
    ann = workload
    baselines = {}
    for key, dev in bases.items():
        # the cpu baseline is always measured; the others only when asked
        baselines[key] = conventional_energy(dev, ann, x, measure=measure or dev.processor == "cpu")
    chosen = baselines[baseline]

    ratios = {}
    for name, r in dev_results.items():
        ratios[name] = {}
        for key, b in baselines.items():
            ratios[name][key] = {
                "op_model": b["op_model_joules_per_inference"] / r["joules_per_inference"],
                "time_power": b["time_power_joules_per_inference"] / r["joules_per_inference"],
                "op_model_vs_dynamic": b["op_model_joules_per_inference"] / r["dynamic_joules_per_inference"],
                "time_power_vs_dynamic": b["time_power_joules_per_inference"] / r["dynamic_joules_per_inference"],
            }
    sources, figures = {}, {}
    for d in devs + list(bases.values()):
        sources.update(d.sources())
        figures.update({f"{d.name}.{k}": {"value": f.value, "unit": f.unit} for k, f in d.figures.items()})
    total_neuron_steps = sum(lc.neurons for lc in activity.layers) * activity.timesteps * activity.samples
    # graded input (num_message_bits > 0): each synaptic op multiplies a value — a MAC, not an AC
    graded = {p.target for p in fixed.projections if getattr(p.synapse, "num_message_bits", 0)}
    macs = sum(lc.synops.sum() for lc in activity.layers if lc.population in graded) / max(activity.samples, 1)
    acs = sum(lc.synops.sum() for lc in activity.layers if lc.population not in graded) / max(activity.samples, 1)
    total_spikes = sum(lc.spikes.sum() for lc in activity.layers)
    data = {
        "model": fixed.name,
        "samples": activity.samples,
        "timesteps": activity.timesteps,
        "schedule": activity.schedule,
        "devices": dev_results,
        "baseline": chosen,
        "baselines": baselines,
        "ratios": {name: r[baseline] for name, r in ratios.items()},
        "ratios_all_baselines": ratios,
        "activity": {
            "input_spikes_per_inference": activity.input_spikes.sum() / max(activity.samples, 1),
            "input_sparsity": 1.0 - activity.input_spikes.sum() / max(activity.samples * activity.timesteps * activity.input_size, 1),
            "spikes_per_inference": total_spikes / max(activity.samples, 1),
            "activation_sparsity": 1.0 - total_spikes / total_neuron_steps if total_neuron_steps else 1.0,
            "synaptic_operations": {
                "Effective_ACs": acs,
                "Effective_MACs": macs,
                "Dense": sum(lc.dense_synapses for lc in activity.layers) * activity.timesteps,
                "definition": "NeuroBench SynapticOperations: per step, nonzero input x nonzero weight "
                              "(ACs for binary spikes, MACs for graded input values); Dense counts every "
                              "product; per sample",
            },
            "counted_on": counted_on,
        },
        "sources": sources,
        "figures": figures,
    }
    return EnergyReport(data=data, activity=activity)


@dataclass
class EnergyReport:
    data: Dict[str, Any]
    activity: Activity

    def summary(self) -> Dict[str, Any]:
        """The compact form folded into a compile report (``report.json["energy"]``)."""
        d = self.data
        return {
            "samples": d["samples"],
            "devices": {k: {f: v[f] for f in ("joules_per_inference", "dynamic_joules_per_inference",
                                               "static_joules_per_inference", "joules_per_spike",
                                               "joules_per_synop", "seconds_per_inference")}
                        for k, v in d["devices"].items()},
            "baseline": {f: d["baseline"][f] for f in ("device", "op_model_joules_per_inference",
                                                       "time_power_joules_per_inference", "measured",
                                                       "time_power_how")},
            "ratios": d["ratios"],
            "synaptic_operations": d["activity"]["synaptic_operations"]["Effective_ACs"]
            + d["activity"]["synaptic_operations"]["Effective_MACs"],
            **({"baseline_network": d["baseline_network"]["kind"]} if "baseline_network" in d else {}),
            "activation_sparsity": d["activity"]["activation_sparsity"],
            **({"learning_joules_per_training_sample": {k: v["joules_per_inference"] for k, v in
                                                        d["learning"]["devices"].items()}}
               if "devices" in d.get("learning", {}) else {}),
        }


def dominant(breakdown: Mapping[str, float]) -> Tuple[str, float]:
    """The largest component of a breakdown and its share of the total."""
    total = sum(breakdown.values())
    k = max(breakdown, key=lambda key: breakdown[key])
    return k, (breakdown[k] / total if total else 0.0)
