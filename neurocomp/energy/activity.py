"""Activity counted from a backend's :class:`~neurocomp.backends.base.Result` — no simulation here.

The caller runs the network once on a target with ``record=True, probe=True`` (spikes and u/v of
every population) and passes the result; both schedules are counted by the same code, on the
result's per-sample windows (:mod:`neurocomp.ir.schedule`: population ``p`` at depth ``d`` owns steps
``[k*W + d, (k+1)*W + d)`` for sample ``k``). Per population and window step ``t``:

* **synaptic operations**, NeuroBench's *effective* definition: each spike (or nonzero graded input
  value: one message) reaching the population costs one op per nonzero synapse it fans out to
  (``Dense`` = all products, also kept). What reaches window step ``t`` is what the source emitted
  one stream step earlier (Lava's one-step ``Dense`` delay): for a projection one layer down that is
  the source's own window step ``t``; for any other (recurrent, lateral, skipping — stream schedule
  only) the source's raw train ``Result.stream`` one step before the target's step. A projection
  whose weights move during the run (it learns on the stream schedule) counts every synapse, zero or
  not;
* **neuron updates**, *active* when the neuron had something to compute — nonzero synaptic input,
  nonzero ``u`` or ``v`` entering the step, or a bias — and *inactive* otherwise (Loihi sweeps every
  neuron every step; an idle one costs less, Davies 2018 Table 2). From the probed states: with
  ``u`` and ``v`` zero entering the step, ``u`` after it is exactly the step's input (``decay(0) = 0``),
  so the input was nonzero iff ``u`` is (fixed point: ``64 a`` after Lava's 24-bit wrap, zero only
  for ``|a| = 2**18`` exactly). The state entering window step 0 is rest in the batched schedule
  (each window starts from a reset) and, in the stream schedule, the last step of the previous
  window (the windows are contiguous; the first window starts from rest). This needs no weights,
  so it is exact for learning populations too;
* **spikes**, and the **spike messages** they become: one per destination core (Loihi sends a spike
  once to each core holding its targets) with the east-west / north-south tile hops it travels and
  the chip crossings, from a :class:`~neurocomp.passes.place.Placement` read with the device's mesh;
  the output population's spikes go to the host (I/O, not counted);
* **learning updates** of a projection that learns: each pre spike updates its fan-out, each post
  spike its fan-in (pairwise STDP, Davies 2018's "synaptic update"), pre spikes counted when they
  reach the synapse's target (as the synops), post spikes at their step.

Stream schedule, the end of the stream: the last window of a population at depth ``d`` reaches
``d`` steps past it (:func:`~neurocomp.ir.schedule.fold_stream` pads them silent). Nothing arrives
there (a spike of the stream's last step is never delivered; its learning epoch did run and is
counted) and those steps start from rest — they stand for the ``d`` steps before the population's
first window, which ran but belong to no sample.

A projection learns when it carries a rule and the run let it: every plastic projection in a
batched result (the schedule never learns; the count is what the rule would cost on these spikes,
over the synapses as they are), in a stream result those the target reports learning
(``Result.learning_updates`` / ``Result.weights``), over all their synapses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.energy.devices import barrier_seconds
from neurocomp.errors import NeurocompError
from neurocomp.ir import Dense, LoihiDense, LoihiLIF, Network, is_graded
from neurocomp.ir.synapses import Conv, LoihiConv
from neurocomp.ir.schedule import fold_stream
from neurocomp.passes.place import Placement

#: samples counted at once (bounds the float64 work arrays)
BATCH = 256


@dataclass
class LayerCounts:
    """Per window step totals over all samples for one population (arrays of length ``timesteps``)."""

    population: str
    projections: Tuple[str, ...]
    neurons: int
    synapses: int          # nonzero weights into the population
    dense_synapses: int    # all weights into it
    synops: np.ndarray
    active_updates: np.ndarray
    inactive_updates: np.ndarray
    spikes: np.ndarray
    learning_updates: np.ndarray
    plastic: bool


@dataclass
class RoutingCounts:
    """What one placement adds: messages and hops per sending population and step (totals over
    samples), and each sample's modelled duration on the device."""

    placement: Placement
    messages: Dict[str, np.ndarray]
    hops_ew: Dict[str, np.ndarray]
    hops_ns: Dict[str, np.ndarray]
    chip_crossings: Dict[str, np.ndarray]
    sample_seconds: np.ndarray          # [samples]
    busiest_core_seconds: np.ndarray    # [timesteps] mean over samples of the slowest core's work


@dataclass
class Activity:
    samples: int
    timesteps: int                           # steps per sample: the schedule's window
    input_name: str
    input_size: int
    input_spikes: np.ndarray                 # [timesteps] totals over samples
    layers: List[LayerCounts]
    routing: Dict[str, RoutingCounts] = field(default_factory=dict)
    raster: Dict[str, np.ndarray] = field(default_factory=dict)   # sample 0's windows: name -> bool [T, n]
    predictions: Optional[np.ndarray] = None
    learning_epochs: Dict[str, int] = field(default_factory=dict)  # stream runs: steps a rule did work
    schedule: str = "batched"

    def layer(self, name: str) -> LayerCounts:
        for lc in self.layers:
            if lc.population == name:
                return lc
        raise KeyError(name)


def dense_weights(proj, net: Optional[Network] = None) -> np.ndarray:
    """The weights a projection multiplies with, ``[n_post, n_pre]`` (fixed point: Lava's effective
    integers, before ``weight_exp``); a convolution as its exact matrix over the source's shape (its
    nonzeros are the synapses the chip's kernel touches: NeuroBench's effective synops)."""
    syn = proj.synapse
    if isinstance(syn, Dense):
        return np.asarray(syn.weight)
    if isinstance(syn, LoihiDense):
        return fxp.effective_weights(syn)
    if isinstance(syn, (Conv, LoihiConv)) and net is not None:
        return syn.dense_matrix(net.shape_of(proj.source))
    raise NeurocompError(f"projection {proj.name!r}: energy counts Dense and Conv projections, "
                         f"not {type(syn).__name__}")


def bias_of(neuron) -> np.ndarray:
    return fxp.effective_bias(neuron) if isinstance(neuron, LoihiLIF) else np.asarray(neuron.bias)


def learning_projections(net: Network, result) -> set:
    """Projections that learn in ``result``'s run (module docstring)."""
    if result.schedule.is_batched:
        return {p.name for p in net.projections if p.plasticity is not None}
    learned = set(result.learning_updates) | set(result.weights)
    return {p.name for p in net.projections if p.plasticity is not None and p.name in learned}


def _routing_tables(net: Network, pl: Placement, nz: Dict[str, np.ndarray]):
    """Per sending neuron: messages per spike (distinct destination cores), E-W and N-S hops summed over
    those messages, and how many of them leave the chip."""
    slots, mesh = pl.n_slots, pl.mesh
    tables = {}
    for p in net.populations:
        outgoing = net.outgoing(p.name)
        if not outgoing:
            continue  # the output population: its spikes leave the chip to the host (I/O, not modelled)
        dest = np.zeros((p.size, slots), dtype=bool)
        for proj in outgoing:
            onehot = np.zeros((net.population(proj.target).size, slots))
            onehot[np.arange(onehot.shape[0]), pl.global_cores_of(proj.target)] = 1.0
            dest |= (nz[proj.name].T.astype(np.float64) @ onehot) > 0
        src = pl.global_cores_of(p.name)
        all_cores = np.arange(slots)
        cx, cy = mesh.xy(all_cores)
        sx, sy = mesh.xy(src)
        ew = np.abs(cx[None, :] - sx[:, None])
        ns = np.abs(cy[None, :] - sy[:, None])
        off_chip = mesh.chip(all_cores)[None, :] != mesh.chip(src)[:, None]
        tables[p.name] = (dest.sum(1).astype(np.float64), (dest * ew).sum(1).astype(np.float64),
                          (dest * ns).sum(1).astype(np.float64), (dest & off_chip).sum(1).astype(np.float64))
    return tables


class _Tally:
    """Adds batches of per-population activity ``[b, T, n]`` (synaptic ops delivered, active updates,
    spikes, learning updates) to per-layer totals and, for each placement, to messages, hops and the
    busiest core's time per step."""

    def __init__(self, net: Network, order: list, T: int, n_samples: int, nz: Dict[str, np.ndarray],
                 placements: Mapping[str, Tuple[Placement, object]], learning: set):
        self.net, self.order, self.n_samples = net, order, n_samples
        self.layers = []
        for p in order:
            inc = net.incoming(p.name)
            self.layers.append(LayerCounts(
                population=p.name, projections=tuple(x.name for x in inc), neurons=p.size,
                synapses=int(sum(nz[x.name].sum() for x in inc)),
                dense_synapses=int(sum(nz[x.name].size for x in inc)),
                synops=np.zeros(T), active_updates=np.zeros(T), inactive_updates=np.zeros(T),
                spikes=np.zeros(T), learning_updates=np.zeros(T), plastic=any(x.name in learning for x in inc)))
        self.by_name = {lc.population: lc for lc in self.layers}
        self.placements = dict(placements or {})
        self.routing, self.route_tables, self.onehots = {}, {}, {}
        for key, (pl, dev) in self.placements.items():
            self.routing[key] = RoutingCounts(
                pl, *({p.name: np.zeros(T) for p in order} for _ in range(4)),
                sample_seconds=np.zeros(n_samples), busiest_core_seconds=np.zeros(T))
            self.route_tables[key] = _routing_tables(net, pl, nz)
            self.onehots[key] = {}
            for p in order:
                oh = np.zeros((p.size, pl.n_slots))
                oh[np.arange(p.size), pl.global_cores_of(p.name)] = 1.0
                self.onehots[key][p.name] = oh
        self.input_spikes = np.zeros(T)

    def add(self, lo: int, input_trains: np.ndarray, pops: Dict[str, tuple]) -> None:
        """Samples ``lo..lo+b``: ``pops[name] = (synin, active, post, learn)``, each ``[b, T, n]``."""
        b, T = input_trains.shape[:2]
        self.input_spikes += input_trains.sum(axis=(0, 2))
        core_work = {key: np.zeros((b, T, rc.placement.n_slots)) for key, rc in self.routing.items()}
        for p in self.order:
            synin, active, post, learn = pops[p.name]
            lc = self.by_name[p.name]
            lc.synops += synin.sum(axis=(0, 2))
            lc.active_updates += active.sum(axis=(0, 2))
            lc.inactive_updates += (~active).sum(axis=(0, 2))
            lc.spikes += post.sum(axis=(0, 2))
            lc.learning_updates += learn.sum(axis=(0, 2))
            for key, (pl, dev) in self.placements.items():
                work = (synin * dev["synop_time"] + active * dev["neuron_update_active_time"]
                        + (~active) * dev["neuron_update_inactive_time"] + learn * dev["learning_update_time"])
                core_work[key] += work @ self.onehots[key][p.name]
                if p.name in self.route_tables[key]:
                    msgs, ew, ns, off = self.route_tables[key][p.name]
                    rc = self.routing[key]
                    rc.messages[p.name] += (post @ msgs).sum(axis=0)
                    rc.hops_ew[p.name] += (post @ ew).sum(axis=0)
                    rc.hops_ns[p.name] += (post @ ns).sum(axis=0)
                    rc.chip_crossings[p.name] += (post @ off).sum(axis=0)
        for key, (pl, dev) in self.placements.items():
            busiest = core_work[key].max(axis=2)                                       # [b, T]
            self.routing[key].sample_seconds[lo:lo + b] = (busiest + barrier_seconds(dev, pl.tiles_used)).sum(axis=1)
            self.routing[key].busiest_core_seconds += busiest.sum(axis=0)

    def activity(self, **kw) -> Activity:
        for rc in self.routing.values():
            rc.busiest_core_seconds /= max(self.n_samples, 1)
        return Activity(samples=self.n_samples, timesteps=len(self.input_spikes), input_name=self.net.input.name,
                        input_size=self.net.input.size, input_spikes=self.input_spikes, layers=self.layers,
                        routing=self.routing, **kw)


def _learning_synapse_updates(pre: np.ndarray, post: np.ndarray, connected: np.ndarray) -> np.ndarray:
    """Synapse updates of a pairwise-STDP projection per step ``[..., n_post]``: each pre spike updates
    its fan-out, each post spike its fan-in (``connected``: ``[n_post, n_pre]`` float 0/1)."""
    return pre @ connected.T + post * connected.sum(axis=1)


class _Windows:
    """A result's trains as per-sample windows ``[samples, W, n]``, and what reaches each projection's
    target at each of its window steps."""

    def __init__(self, net: Network, result):
        sch = result.schedule
        self.net, self.result, self.W = net, result, sch.window
        self.S = result.samples
        self.depths = net.depths()
        missing = [p.name for p in net.populations if p.name not in result.spikes]
        unprobed = [p.name for p in net.populations if p.name not in result.states]
        if missing or unprobed or result.input_spikes is None:
            what = (f"spikes of {', '.join(missing)}" if missing else f"u/v of {', '.join(unprobed)}"
                    if unprobed else "its input spikes")
            raise NeurocompError(f"energy: the {result.target} result lacks {what}; count activity on a run "
                                 "with record=True, probe=True")
        inp = np.asarray(result.input_spikes)
        if is_graded(net.input.encoding):   # graded input: one message per nonzero value and step
            inp = inp != 0
        self.input = inp if sch.is_batched else fold_stream(inp, self.S, self.W, 0)
        self.raw_input = None if sch.is_batched else inp
        self.steps = None if sch.is_batched else len(inp)     # stream steps that ran

    def depth(self, name: str) -> int:
        return self.depths.get(name, 0)

    def own(self, name: str) -> np.ndarray:
        return self.input if name == self.net.input.name else self.result.spikes[name]

    def ran(self, name: str, lo: int, hi: int) -> Optional[np.ndarray]:
        """Stream schedule: ``[hi-lo, W]`` whether each window step of ``name`` is a step the stream
        ran (the last windows of a deeper population reach past its end); ``None``: all of them."""
        d = self.depth(name)
        if self.steps is None or hi * self.W + d <= self.steps:
            return None
        return (np.arange(lo * self.W, hi * self.W) + d < self.steps).reshape(hi - lo, self.W)

    def arriving(self, proj, lo: int, hi: int, delivered: bool = True) -> np.ndarray:
        """``[hi-lo, W, n_pre]``: the source spikes reaching ``proj.target`` at each window step of
        samples ``lo..hi`` — emitted one stream step before it. ``delivered``: only those delivered
        at a step the stream ran (a spike of its last step was emitted, and learnt from, but never
        integrated)."""
        d_t = self.depth(proj.target)
        if self.depth(proj.source) == d_t - 1:
            out = self.own(proj.source)[lo:hi]         # one layer up: the source's same window step
            if not delivered or self.steps is None or (hi * self.W + d_t <= self.steps):
                return out
            # the last windows of a deeper population reach past the end of the stream: spikes of the
            # stream's last steps were never delivered (steps that did not run count nothing)
            out = out.copy().reshape((-1,) + out.shape[2:])
            out[max(self.steps - d_t - lo * self.W, 0):] = False
            return out.reshape((hi - lo, self.W) + out.shape[1:])
        if self.result.schedule.is_batched:
            raise NeurocompError(f"projection {proj.name!r} does not lead one layer down; the batched schedule "
                                 "runs layered networks only")
        raw = (self.raw_input if proj.source == self.net.input.name else self.result.stream.get(proj.source))
        if raw is None:
            raise NeurocompError(f"energy: projection {proj.name!r} is recurrent and the {self.result.target} "
                                 f"result has no stream train of {proj.source!r} (record=True)")
        # target window step j of sample k is stream step k*W + d_t + j; it receives step - 1
        first = lo * self.W + d_t - 1
        n = (hi - lo) * self.W
        out = np.zeros((n,) + raw.shape[1:], dtype=raw.dtype)
        a, b = max(first, 0), min(first + n, len(raw) - (1 if delivered else 0))
        if b > a:
            out[a - first:b - first] = raw[a:b]
        return out.reshape((hi - lo, self.W) + raw.shape[1:])


def count_activity(net: Network, result, placements: Optional[Mapping[str, Tuple[Placement, object]]] = None,
                   batch_size: int = BATCH) -> Activity:
    """The activity of ``net`` in ``result`` (a run with ``record=True, probe=True``, either schedule),
    per population and window step, totals over samples (module docstring).

    ``placements``: ``{key: (Placement, Device)}`` (:func:`neurocomp.energy.devices.device_placements`)
    — for each, spike messages/hops and the modelled time per sample (the slowest core's synaptic,
    neuron and learning work per step, plus barrier sync).
    """
    win = _Windows(net, result)
    S, W = win.S, win.W
    order = net.execution_order()
    learning = learning_projections(net, result)
    moving = set() if result.schedule.is_batched else learning     # weights that change during the run
    nz = {p.name: (np.ones(p.synapse.shape, dtype=bool) if p.name in moving else dense_weights(p, net) != 0)
          for p in net.projections}
    nz_f = {k: v.astype(np.float64) for k, v in nz.items()}
    tally = _Tally(net, order, W, S, nz, placements or {}, learning)
    stream = not result.schedule.is_batched
    for lo in range(0, S, batch_size):
        hi = min(lo + batch_size, S)
        pops = {}
        for p in order:
            inc = net.incoming(p.name)
            arriving = {x.name: win.arriving(x, lo, hi).astype(np.float64) for x in inc}
            ran = win.ran(p.name, lo, hi)
            synin = sum((arriving[x.name] @ nz_f[x.name].T for x in inc), np.zeros((hi - lo, W, p.size)))
            first = max(lo - 1, 0)
            u, v = result.states[p.name]["u"][first:hi], result.states[p.name]["v"][first:hi]
            busy = (u != 0) | (v != 0)                                   # after each step
            before = np.zeros((hi - lo, W, p.size), dtype=bool)          # entering each step
            before[:, 1:] = busy[lo - first:, :-1]
            if stream:   # contiguous windows: step 0 follows the previous window's last step
                before[:, 0] = np.concatenate([busy[:1, -1] if lo > 0 else np.zeros((1, p.size), bool),
                                               busy[lo - first:-1, -1]])
            if ran is not None:   # steps past the stream's end: from rest, like the steps before its first window
                before &= ran[:, :, None]
            active = (u[lo - first:] != 0) | before | (bias_of(p.neuron) != 0)[None, None, :]
            post = win.own(p.name)[lo:hi].astype(np.float64)
            learn = np.zeros((hi - lo, W, p.size))
            for x in inc:
                if x.name in learning:
                    pre = arriving[x.name] if ran is None else win.arriving(x, lo, hi, delivered=False).astype(np.float64)
                    learn += _learning_synapse_updates(pre, post, nz_f[x.name])
            pops[p.name] = (synin, active, post, learn)
        tally.add(lo, win.input[lo:hi].astype(np.float64), pops)
    raster = {net.input.name: np.asarray(win.input[0], dtype=bool)} if S else {}
    if S:
        raster.update({p.name: np.asarray(result.spikes[p.name][0], dtype=bool) for p in order})
    return tally.activity(raster=raster, predictions=result.predictions if S else None,
                          learning_epochs=dict(result.learning_updates), schedule=result.schedule.kind)
