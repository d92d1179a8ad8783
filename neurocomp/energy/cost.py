"""The cost model: what counted activity costs on a neuromorphic device, and what the same job costs
on a conventional one.

**Neuromorphic** (:func:`neuromorphic_energy`): every counted event (synop, active / inactive neuron
update, spike message and tile hop, learning update) times its per-op energy from the device table,
plus static power x time, where time per step is the busiest core's per-op times plus the mesh-wide
barrier sync (:func:`~neurocomp.energy.devices.barrier_seconds`).

**Conventional** (:func:`conventional_energy`): the device runs the non-spiking equivalent of the
network — for a layered network the equivalent ANN (:func:`equivalent_ann`: same layers, one dense
pass), for a recurrent or plastic one the same network stepped densely (:class:`StreamWorkload`) — and
is charged both by an op model (dense MACs x energy per op) and by time x power at batch 1 (latency
measured on this machine by :mod:`neurocomp.energy.baseline`, or modelled from the descriptor when
the device is absent).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from neurocomp.energy.activity import Activity, bias_of, dense_weights
from neurocomp.energy.baseline import measure_cpu_latency, measure_gpu
from neurocomp.energy.devices import Device, barrier_seconds  # noqa: F401  (barrier: part of the model)
from neurocomp.errors import NeurocompError
from neurocomp.ir import LoihiDense, Network
from neurocomp.ir.synapses import Conv, LoihiConv

# ------------------------------------------------------------------------- neuromorphic energy
def neuromorphic_energy(device: Device, activity: Activity, routing_key: str) -> Dict[str, Any]:
    """Per-inference energy of ``activity`` on a neuromorphic ``device`` (its placement: ``routing_key``)."""
    S = max(activity.samples, 1)
    rc = activity.routing[routing_key]
    per_layer = []
    totals = dict(synops=0.0, neuron_updates_active=0.0, neuron_updates_inactive=0.0, spike_messages=0.0,
                  learning=0.0)
    counts_total = dict(synops=0.0, spikes=0.0, messages=0.0)
    for lc in activity.layers:
        msgs = rc.messages.get(lc.population, np.zeros(activity.timesteps))
        ew = rc.hops_ew.get(lc.population, np.zeros(activity.timesteps))
        ns = rc.hops_ns.get(lc.population, np.zeros(activity.timesteps))
        off = rc.chip_crossings.get(lc.population, np.zeros(activity.timesteps))
        e = {
            "synops": lc.synops.sum() / S * device["synop"],
            "neuron_updates_active": lc.active_updates.sum() / S * device["neuron_update_active"],
            "neuron_updates_inactive": lc.inactive_updates.sum() / S * device["neuron_update_inactive"],
            "spike_messages": (msgs.sum() * device["spike_within_tile"] + ew.sum() * device["hop_ew"]
                               + ns.sum() * device["hop_ns"]) / S,
            "learning": lc.learning_updates.sum() / S * device["learning_update"],
        }
        for k, val in e.items():
            totals[k] += val
        counts_total["synops"] += lc.synops.sum() / S
        counts_total["spikes"] += lc.spikes.sum() / S
        counts_total["messages"] += msgs.sum() / S
        n_steps_total = lc.neurons * activity.timesteps
        per_layer.append({
            "population": lc.population,
            "projections": list(lc.projections),
            "neurons": lc.neurons,
            "cores": sorted({int(c) for c in np.unique(rc.placement.global_cores_of(lc.population))}),
            "synapses_nonzero": lc.synapses,
            "synops_per_inference": lc.synops.sum() / S,
            "dense_synops_per_inference": lc.dense_synapses * activity.timesteps,
            "neuron_updates_active_per_inference": lc.active_updates.sum() / S,
            "neuron_updates_inactive_per_inference": lc.inactive_updates.sum() / S,
            "spikes_per_inference": lc.spikes.sum() / S,
            "activation_sparsity": 1.0 - lc.spikes.sum() / (S * n_steps_total) if n_steps_total else 1.0,
            "spike_messages_per_inference": msgs.sum() / S,
            "hops_ew_per_inference": ew.sum() / S,
            "hops_ns_per_inference": ns.sum() / S,
            "chip_crossings_per_inference": off.sum() / S,
            "learning_updates_per_inference": lc.learning_updates.sum() / S,
            "plastic": lc.plastic,
            "energy_j": {**e, "total": sum(e.values())},
            "per_step": {
                "synops": (lc.synops / S).tolist(),
                "spikes": (lc.spikes / S).tolist(),
                "active_neurons": (lc.active_updates / S).tolist(),
            },
        })
    seconds = float(rc.sample_seconds.mean()) if activity.samples else 0.0
    dynamic = sum(totals.values())
    static = device["static_power"] * seconds
    breakdown = {**totals, "static": static}
    total = dynamic + static
    spikes = counts_total["spikes"]
    synops = counts_total["synops"]
    return {
        "description": device.description,
        "joules_per_inference": total,
        "dynamic_joules_per_inference": dynamic,
        "static_joules_per_inference": static,
        "joules_per_spike": total / spikes if spikes else None,
        "joules_per_synop": total / synops if synops else None,
        "dynamic_joules_per_synop": dynamic / synops if synops else None,
        "seconds_per_inference": seconds,
        "seconds_per_inference_modelled": True,
        "spikes_per_inference": spikes,
        "synops_per_inference": synops,
        "spike_messages_per_inference": counts_total["messages"],
        "breakdown": breakdown,
        "per_layer": per_layer,
        "placement": {"source": rc.placement.source, "cores": rc.placement.core_lists(),
                      "cores_used": len(rc.placement.global_cores), "tiles_used": rc.placement.tiles_used},
        "notes": [
            "joules_per_inference = dynamic (synops + neuron updates + spike messages + learning) + static power "
            "x modelled time; joules_per_spike and joules_per_synop divide that total by the on-chip spikes "
            "(populations, not the input) and effective synops per inference",
            "time per step = slowest core's (synops x synop_time + neuron updates x update time + learning "
            "updates x update time) + barrier sync; steps per inference = timesteps (pipelined samples)",
            "static power is charged for the whole chip whatever the number of cores used",
            "not modelled: host I/O (input spike injection, output read-out), inter-chip link energy "
            "(chip crossings are counted)",
        ],
    }


# --------------------------------------------------------------------------- conventional energy
def ann_problem(net: Network) -> Optional[str]:
    """Why ``net`` has no one-pass equivalent ANN (``None`` when it has one): it must be layered, not
    plastic, and feed each population from one source population (several projections from that
    source add up to one weight matrix)."""
    if net.is_plastic:
        return "it learns (its answer depends on weights that move from step to step)"
    problem = net.layering_problem()
    if problem:
        return problem
    for p in net.populations:
        sources = sorted({x.source for x in net.incoming(p.name)})
        if len(sources) != 1:
            return f"population {p.name!r} is fed by {len(sources)} populations ({', '.join(sources)})"
    return None


class AnnLayer(NamedTuple):
    """One layer of the equivalent non-spiking network: ``weight`` ``[n_post, n_pre]`` over flat states
    and ``bias``; a convolution also keeps its own form (``conv``: the synapse and its input shape),
    so its MACs are the kernel's taps and a measured baseline runs it as a conv layer."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    conv: Optional[tuple] = None

    @property
    def macs(self) -> int:
        return self.conv[0].macs(self.conv[1]) if self.conv is not None else int(self.weight.size)


def _float_weights(proj, net: Optional[Network] = None) -> np.ndarray:
    """A projection's weights in float units as the chip applies them (``weight_exp`` included)."""
    W = dense_weights(proj, net).astype(np.float32)
    if isinstance(proj.synapse, LoihiDense):
        W = W * np.float32(2.0 ** proj.synapse.weight_exp)
    return W


def equivalent_ann(net: Network, float_net: Optional[Network] = None) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """The non-spiking network with the same layers: ``[(name, W [n_post, n_pre], bias [n_post])]`` in
    layer order, float weights from the float network when given (else the fixed-point effective
    weights); a population's projections from its one source add up. One dense pass of it is the
    conventional devices' workload (:func:`ann_problem` says when there is none)."""
    problem = ann_problem(net)
    if problem:
        raise NeurocompError(f"network {net.name!r}: no equivalent non-spiking network: {problem} (such a "
                             "network is stepped densely instead: StreamWorkload)")
    src = float_net if float_net is not None else net     # same layers (the float rules, if any, unused)
    out = []
    for p in src.execution_order():
        inc = src.incoming(p.name)
        W = sum(_float_weights(proj, src) for proj in inc)
        convs = [proj for proj in inc if isinstance(proj.synapse, (Conv, LoihiConv))]
        conv = (convs[0].synapse, src.shape_of(convs[0].source)) if len(convs) == 1 == len(inc) else None
        out.append(AnnLayer(p.name, W, np.asarray(bias_of(p.neuron), dtype=np.float32), conv))
    return out


def ann_op_counts(layers) -> Dict[str, int]:
    macs = int(sum(layer.macs for layer in layers))
    neurons = int(sum(layer.weight.shape[0] for layer in layers))
    return {"macs": macs, "neuron_updates": neurons}


@dataclass
class StreamWorkload:
    """The conventional devices' job for a recurrent and/or plastic network.

    Such a network has no one-pass equivalent ANN: its answer depends on state carried from step to
    step (membranes, lateral inhibition, an adaptive threshold). The defensible dense baseline is the
    same network stepped on the conventional device at batch 1: every step, every projection's dense
    mat-vec (recurrent ones too, zeros included) and every neuron's update, ``steps`` steps per
    inference. Latency is one such step measured (or modelled) times ``steps``."""

    layers: List[Tuple[str, np.ndarray, np.ndarray]]   # per projection: (name, W float [n_post, n_pre], 0 bias)
    neurons: int                                       # neuron updates per step
    steps: int

    @classmethod
    def of(cls, net: Network, steps: int) -> "StreamWorkload":
        layers = []
        for proj in net.projections:
            W = _float_weights(proj, net)
            layers.append(AnnLayer(proj.name, W, np.zeros(W.shape[0], dtype=np.float32)))
        return cls(layers, int(sum(p.size for p in net.populations)), int(steps))

    @property
    def input_size(self) -> int:
        return int(sum(layer.weight.shape[1] for layer in self.layers))

    def op_counts(self) -> Dict[str, int]:
        return {"macs": self.steps * int(sum(layer.macs for layer in self.layers)),
                "neuron_updates": self.steps * self.neurons}


def conventional_energy(device: Device, layers, x: np.ndarray, measure: bool = True) -> Dict[str, Any]:
    """Op model and time x power of one batch-1 pass of the equivalent network on ``device``
    (``layers``: the equivalent ANN's layers, or a :class:`StreamWorkload`: ``steps`` dense steps)."""
    stream = layers if isinstance(layers, StreamWorkload) else None
    ops = stream.op_counts() if stream else ann_op_counts(layers)
    op_model = ops["macs"] * device["mac"] + ops["neuron_updates"] * device["neuron_update"]
    floor = ops["macs"] * device["arithmetic_mac"]
    measured = None
    if measure:
        job, parallel = (stream.layers, True) if stream else (layers, False)
        measured = (measure_gpu(job, x, parallel=parallel) if device.processor == "gpu"
                    else measure_cpu_latency(job, x, parallel=parallel))
        if measured is not None and stream:  # one step measured; an inference is ``steps`` of them
            measured = {**measured, "step_latency_s": measured["latency_s"], "steps": stream.steps,
                        "latency_s": measured["latency_s"] * stream.steps,
                        "latency_p95_s": measured["latency_p95_s"] * stream.steps,
                        "energy_j": None if measured["energy_j"] is None else measured["energy_j"] * stream.steps}
    p_hi, p_lo = device["active_power"], device["idle_power"]
    out = {
        "device": device.name,
        "description": device.description,
        "processor": device.processor,
        **ops,
        "op_model_joules_per_inference": op_model,
        "arithmetic_floor_joules_per_inference": floor,
        "active_power_w": p_hi,
        "idle_power_w": p_lo,
    }
    if measured is not None:
        lat = measured["latency_s"]
        where = measured.get("gpu") or measured.get("cpu")
        out.update(latency_s=lat, latency_measured=True, measurement=measured)
        if measured.get("energy_j") is not None:
            out.update(time_power_joules_per_inference=measured["energy_j"], energy_measured=True,
                       time_power_how=f"measured: {measured['energy_how']} on {where}")
        else:
            out.update(time_power_joules_per_inference=lat * p_hi, energy_measured=False,
                       time_power_how=(f"latency measured on this machine ({where}, batch 1, median of "
                                       f"{measured['repeats']}); power modelled: {device.name} active power "
                                       f"{p_hi:g} W (range uses idle {p_lo:g} W)"))
        out["time_power_range_joules"] = [lat * p_lo, lat * p_hi]
    else:
        if device.processor == "gpu":
            n_layers = len(layers.layers) * layers.steps if stream else len(layers)
            kernels = device["latency_model.kernels_per_layer"] * n_layers + device["latency_model.transfers"]
            lat = kernels * device["latency_model.kernel_launch"]
            why = ("no GPU on this machine (torch.cuda.is_available() is False)" if measure
                   else "measurement disabled")
            how = (f"{why}: latency modelled as {kernels:g} launches x {device['latency_model.kernel_launch'] * 1e6:g} us; "
                   f"power modelled: active {p_hi:g} W (range uses idle {p_lo:g} W)")
        else:
            raise NeurocompError(f"{device.path}: a cpu baseline is always measured on this machine; "
                                 "call with measure=True")
        out.update(latency_s=lat, latency_measured=False, energy_measured=False,
                   time_power_joules_per_inference=lat * p_hi, time_power_how=how,
                   time_power_range_joules=[lat * p_lo, lat * p_hi])
    out["measured"] = bool(out["latency_measured"] or out["energy_measured"])
    if stream:
        out["workload"] = {"kind": "stream", "steps_per_inference": stream.steps,
                           "projections": [layer.name for layer in stream.layers],
                           "macs_per_step": ops["macs"] // max(stream.steps, 1),
                           "neuron_updates_per_step": stream.neurons}
    out["notes"] = ([
        "recurrent/plastic network: no one-pass equivalent ANN exists (the answer depends on state carried "
        "between steps), so the baseline steps the same network densely at batch 1: per step every "
        "projection's dense mat-vec (recurrent ones included) and every neuron update, x steps per sample; "
        "latency = one step (all projections' mat-vecs) measured or modelled, x steps"] if stream else []) + [
        "op model: (dense MACs + neuron activations) of one pass of the equivalent non-spiking network x the "
        "device's energy per op (Degnan 2015 via KerasSpiking); arithmetic floor: MACs x 32-bit FP MAC (Horowitz 2014)",
        "time x power: batch-1 latency x power; at batch 1 a GPU is launch-bound, so this, not the op "
        "model, is the realistic figure",
        "measured is true when the time x power figure rests on a measurement on this machine "
        "(latency, and energy where a RAPL/NVML counter was readable)",
    ]
    return out

