"""Energy estimates: activity counted from real runs x per-operation costs from cited device tables.

The pipeline's last stage (DESIGN.md: ``energy(device tables) -> EnergyReport``). Three parts:

**Device descriptors** (``targets/*.yaml`` with an ``energy:`` section, see the header of
``targets/loihi.yaml``). Every figure is ``{value, unit, source}``; :func:`load_device` validates them and
names the file and field of anything missing, negative or unsourced (:class:`TargetError`, exit 2).

**Activity** (:func:`measure_activity`): the deployed network is run on the bit-accurate ``cpu`` target
(:func:`neurocomp.backends.sim.simulate`, spikes recorded and u/v probed) and, per layer and per step,
we count

* synaptic operations with NeuroBench's *effective* definition: nonzero input x nonzero weight, i.e. each
  input spike costs one op per nonzero synapse it fans out to (``Dense`` = all products, also kept);
* neuron updates, *active* when the neuron had something to compute (nonzero synaptic input, nonzero
  u or v entering the step, or a bias) and *inactive* otherwise — Loihi sweeps every neuron every step,
  an idle one costs less (Davies 2018, Table 2);
* output spikes, and the spike messages they become: one message per destination core (Loihi sends a
  spike once to each core holding its targets), with the east-west / north-south tile hops it travels,
  from a core placement (``neurocomp.mapping`` when it exists, a given ``{population: [cores]}``, or a
  default sequential placement);
* learning updates when a projection is plastic (``Projection.plasticity`` is not None; the hook below
  counts pairwise-STDP synapse updates: each pre spike updates its fan-out, each post spike its fan-in).

**Estimates** (:func:`estimate_energy`). A neuromorphic device pays per counted event, plus static power x
time, where time per step is modelled from the per-op times of the busiest core plus barrier sync. A
conventional device runs the equivalent non-spiking network (same layers, one dense pass) and is charged
both by an op model (dense MACs x energy per op) and by time x power at batch 1 (latency measured here, or
modelled from the descriptor when the device is absent). Every number in the result says where it came
from: ``sources`` maps each figure used to its citation, and each baseline says what was measured.

Left out, and said so in the report: host I/O (input spikes injected into the chip, output spikes read
back), inter-chip link energy (no public figure; chip crossings are counted), and synaptic-memory limits
in the default placement.
"""
from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import yaml

from neurocomp.backends import fixed_point as fxp
from neurocomp.backends.sim import layer_order, simulate
from neurocomp.errors import NeurocompError, TargetError
from neurocomp.ir import Dense, LoihiDense, LoihiLIF, Network

# ------------------------------------------------------------------------------- device tables
NEUROMORPHIC, CONVENTIONAL = "neuromorphic", "conventional"

#: the figures each device class must give (``energy.<key>: {value, unit, source}``)
NEUROMORPHIC_FIGURES = (
    "synop", "synop_time", "neuron_update_active", "neuron_update_inactive", "neuron_update_active_time",
    "neuron_update_inactive_time", "learning_update", "learning_update_time", "spike_within_tile",
    "hop_ew", "hop_ns", "static_power")
MESH_FIGURES = ("cores_per_chip", "neurons_per_core", "cores_per_tile", "tiles_x", "tiles_y")
MESH_FROM_LIMITS = ("cores_per_chip", "neurons_per_core")  # taken from ``limits:`` when the mesh omits them
CONVENTIONAL_FIGURES = ("mac", "neuron_update", "arithmetic_mac", "active_power", "idle_power")
GPU_LATENCY_FIGURES = ("kernel_launch", "kernels_per_layer", "transfers")
PROCESSORS = ("gpu", "cpu")

#: ``--baseline`` shorthands -> descriptor names; any conventional descriptor name or .yaml path also works
BASELINE_DEVICES = {"gpu": "gpu-titan-black", "cpu": "cpu-i7-4960x"}
DEFAULT_DEVICES = ("loihi", "loihi2")


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class Device:
    """A validated ``energy:`` section. ``figures`` is flat: ``"synop"``, ``"mesh.tiles_x"``,
    ``"barrier_sync_time.min"``, ``"latency_model.kernel_launch"``..."""

    name: str
    description: str
    device_class: str
    path: str
    figures: Dict[str, Figure]
    processor: Optional[str] = None

    def __getitem__(self, key: str) -> float:
        return self.figures[key].value

    def has(self, key: str) -> bool:
        return key in self.figures

    def sources(self) -> Dict[str, str]:
        return {f"{self.name}.{k}": f.source for k, f in self.figures.items()}


def energy_devices() -> List[str]:
    """Names of the descriptors in ``targets/`` that carry an energy section (for error messages)."""
    from neurocomp.targets import TARGETS_DIR
    out = []
    for p in sorted(TARGETS_DIR.glob("*.yaml")):
        try:
            doc = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("energy"), dict):
            out.append(p.stem)
    return out


def _read_descriptor(name_or_path: str) -> Tuple[dict, str]:
    """The raw descriptor (``inherits:`` merged) and the file it came from."""
    from neurocomp.targets import descriptor_path, is_descriptor_path, load_descriptor
    s = str(name_or_path)
    if is_descriptor_path(s):
        return load_descriptor(s), s
    if not descriptor_path(s).is_file():
        raise TargetError(f"unknown device {s!r}; devices with an energy table: {', '.join(energy_devices())} "
                          "(or a path to a .yaml descriptor)")
    doc = load_descriptor(s)
    return doc, str(doc.get("_path", descriptor_path(s)))


def _number(path: str, key: str, node: Any, field_name: str = "value") -> float:
    v = node.get(field_name) if isinstance(node, dict) else None
    if v is None:
        raise TargetError(f"{path}: energy.{key}.{field_name}: missing (each figure is {{value, unit, source}})")
    if isinstance(v, str):  # PyYAML reads '81e-12' (no decimal point) as a string
        try:
            v = float(v)
        except ValueError:
            raise TargetError(f"{path}: energy.{key}.{field_name}: must be a number, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TargetError(f"{path}: energy.{key}.{field_name}: must be a number, got {v!r}")
    if not math.isfinite(v) or v < 0:
        raise TargetError(f"{path}: energy.{key}.{field_name}: must be a finite number >= 0, got {v!r}")
    return float(v)


def _figure(path: str, section: dict, key: str, prefix: str = "", positive_int: bool = False) -> Figure:
    full = f"{prefix}{key}"
    node = section.get(key)
    if node is None:
        raise TargetError(f"{path}: energy.{full}: missing (each figure is {{value, unit, source}})")
    if not isinstance(node, dict):
        raise TargetError(f"{path}: energy.{full}: must be a mapping {{value, unit, source}}, got {node!r}")
    value = _number(path, full, node)
    if positive_int and (value != int(value) or value < 1):
        raise TargetError(f"{path}: energy.{full}.value: must be a positive integer, got {node.get('value')!r}")
    source = node.get("source")
    if not isinstance(source, str) or not source.strip():
        raise TargetError(f"{path}: energy.{full}.source: missing; every figure needs its source")
    return Figure(value, str(node.get("unit", "")), source.strip())


def load_device(name_or_path: str) -> Device:
    """Read and validate a device's ``energy:`` section (by descriptor name or .yaml path)."""
    doc, path = _read_descriptor(name_or_path)
    name = str(doc.get("name", name_or_path))
    energy = doc.get("energy")
    if energy is None:
        raise TargetError(f"{path}: energy: missing; {name!r} has no energy table "
                          f"(devices with one: {', '.join(energy_devices())})")
    if not isinstance(energy, dict):
        raise TargetError(f"{path}: energy: must be a mapping")
    cls = energy.get("device_class")
    if cls not in (NEUROMORPHIC, CONVENTIONAL):
        raise TargetError(f"{path}: energy.device_class: {cls!r}; allowed: {NEUROMORPHIC}, {CONVENTIONAL}")
    figures: Dict[str, Figure] = {}
    processor = None
    if cls == NEUROMORPHIC:
        for key in NEUROMORPHIC_FIGURES:
            figures[key] = _figure(path, energy, key)
        mesh = energy.get("mesh")
        if not isinstance(mesh, dict):
            raise TargetError(f"{path}: energy.mesh: missing (core and tile geometry: {', '.join(MESH_FIGURES)})")
        limits = doc.get("limits") if isinstance(doc.get("limits"), dict) else {}
        for key in MESH_FIGURES:
            if key not in mesh and key in MESH_FROM_LIMITS and key in limits:
                # one home per number: a run target's core limits (neurocomp.mapping) serve the mesh too
                fig = _figure(path, limits, key, positive_int=True)
                figures[f"mesh.{key}"] = Figure(fig.value, fig.unit, f"limits.{key}: {fig.source}")
                continue
            figures[f"mesh.{key}"] = _figure(path, mesh, key, "mesh.", positive_int=True)
        geometry = figures["mesh.cores_per_tile"].value * figures["mesh.tiles_x"].value * figures["mesh.tiles_y"].value
        if geometry < figures["mesh.cores_per_chip"].value:
            raise TargetError(f"{path}: energy.mesh: cores_per_tile x tiles_x x tiles_y = {geometry:g} is less "
                              f"than cores_per_chip = {figures['mesh.cores_per_chip'].value:g}")
        barrier = energy.get("barrier_sync_time")
        if not isinstance(barrier, dict):
            raise TargetError(f"{path}: energy.barrier_sync_time: missing ({{min, max, tiles_max, unit, source}})")
        src = barrier.get("source")
        if not isinstance(src, str) or not src.strip():
            raise TargetError(f"{path}: energy.barrier_sync_time.source: missing; every figure needs its source")
        for k in ("min", "max", "tiles_max"):
            figures[f"barrier_sync_time.{k}"] = Figure(_number(path, "barrier_sync_time", barrier, k),
                                                       str(barrier.get("unit", "s") if k != "tiles_max" else "tiles"),
                                                       src.strip())
        if figures["barrier_sync_time.max"].value < figures["barrier_sync_time.min"].value:
            raise TargetError(f"{path}: energy.barrier_sync_time: max < min")
        if figures["barrier_sync_time.tiles_max"].value < 1:
            raise TargetError(f"{path}: energy.barrier_sync_time.tiles_max: must be >= 1")
    else:
        for key in CONVENTIONAL_FIGURES:
            figures[key] = _figure(path, energy, key)
        processor = energy.get("processor")
        if processor not in PROCESSORS:
            raise TargetError(f"{path}: energy.processor: {processor!r}; allowed: {', '.join(PROCESSORS)}")
        if figures["idle_power"].value > figures["active_power"].value:
            raise TargetError(f"{path}: energy.idle_power: {figures['idle_power'].value:g} W exceeds "
                              f"active_power {figures['active_power'].value:g} W")
        lat = energy.get("latency_model")
        if processor == "gpu" and not isinstance(lat, dict):
            raise TargetError(f"{path}: energy.latency_model: missing (a GPU baseline needs "
                              f"{', '.join(GPU_LATENCY_FIGURES)} to model latency when no GPU is present)")
        if isinstance(lat, dict):
            for key in GPU_LATENCY_FIGURES:
                figures[f"latency_model.{key}"] = _figure(path, lat, key, "latency_model.")
    return Device(name=name, description=str(doc.get("description", "")), device_class=cls, path=path,
                  figures=figures, processor=processor)


# ---------------------------------------------------------------------------------- placement
@dataclass
class CoreMap:
    """Where each neuron sits: a global core index per neuron, and each core's chip and tile position.

    Global core ``g`` is core ``g % cores_per_chip`` of chip ``g // cores_per_chip``; its tile is
    ``core // cores_per_tile`` at mesh position ``(tile % tiles_x, tile // tiles_x)``.
    """

    neuron_core: Dict[str, np.ndarray]
    source: str
    cores_per_chip: int
    cores_per_tile: int
    tiles_x: int

    @property
    def cores_used(self) -> List[int]:
        return sorted({int(c) for arr in self.neuron_core.values() for c in np.unique(arr)})

    @property
    def n_slots(self) -> int:
        return max(self.cores_used) + 1 if self.cores_used else 1

    def chip(self, g):
        return np.asarray(g) // self.cores_per_chip

    def tile(self, g):
        return (np.asarray(g) % self.cores_per_chip) // self.cores_per_tile

    def xy(self, g):
        t = self.tile(g)
        return t % self.tiles_x, t // self.tiles_x

    @property
    def tiles_used(self) -> int:
        cores = np.array(self.cores_used)
        return len(set(zip(self.chip(cores).tolist(), self.tile(cores).tolist())))

    def as_dict(self) -> Dict[str, List[List[int]]]:
        """``{population: [[chip, core], ...]}`` in neuron order (contiguous blocks)."""
        out = {}
        for pop, arr in self.neuron_core.items():
            seen = list(dict.fromkeys(int(c) for c in arr))
            out[pop] = [[g // self.cores_per_chip, g % self.cores_per_chip] for g in seen]
        return out


def _placement_entries(placement) -> Mapping[str, Sequence]:
    cores = getattr(placement, "cores", placement)
    if not isinstance(cores, Mapping):
        raise NeurocompError(f"placement: expected a mapping population -> list of cores or a Placement with "
                             f".cores, got {type(placement).__name__}")
    return cores


def core_map(net: Network, device: Device, placement=None) -> CoreMap:
    """The core map of ``net`` on ``device``.

    ``placement``: ``{population: [core, ...]}`` where a core is a global core index or a ``(chip, core)``
    pair (``neurocomp.mapping``'s ``Placement.cores`` has that shape); each population's neurons are split
    over its cores in contiguous blocks, in list order. ``None``: the default sequential placement — each
    population in layer order takes ``ceil(size / neurons_per_core)`` fresh cores.
    """
    cpc = int(device["mesh.cores_per_chip"])
    geometry = dict(cores_per_chip=cpc, cores_per_tile=int(device["mesh.cores_per_tile"]),
                    tiles_x=int(device["mesh.tiles_x"]))
    pops = [p for p in net.populations]
    if placement is None:
        npc = int(device["mesh.neurons_per_core"])
        nxt, out = 0, {}
        for p in population_order(net):
            n_cores = max(1, -(-p.size // npc))
            out[p.name] = nxt + np.repeat(np.arange(n_cores), -(-p.size // n_cores))[:p.size]
            nxt += n_cores
        return CoreMap(out, f"default sequential placement ({npc} neurons per core, populations in layer "
                            "order, synaptic memory not checked)", **geometry)
    entries = _placement_entries(placement)
    out = {}
    for p in pops:
        if hasattr(placement, "neuron_cores"):  # neurocomp.mapping.Placement knows each neuron's core exactly
            try:
                chip_core = np.asarray(placement.neuron_cores(p.name), dtype=np.int64)
            except KeyError:
                chip_core = None
            if chip_core is not None and chip_core.shape == (p.size, 2):
                out[p.name] = chip_core[:, 0] * cpc + chip_core[:, 1]
                continue
        if p.name not in entries:
            raise NeurocompError(f"placement: population {p.name!r} missing (placed: {', '.join(map(str, entries))})")
        cores = []
        for c in entries[p.name]:
            if isinstance(c, (tuple, list)) and len(c) == 2:
                g = int(c[0]) * cpc + int(c[1])
            elif isinstance(c, (int, np.integer)):
                g = int(c)
            else:
                raise NeurocompError(f"placement: population {p.name!r}: core {c!r} is neither an index nor (chip, core)")
            if g < 0:
                raise NeurocompError(f"placement: population {p.name!r}: negative core {c!r}")
            cores.append(g)
        if not cores:
            raise NeurocompError(f"placement: population {p.name!r} has no cores")
        blocks = np.array_split(np.arange(p.size), len(cores))
        arr = np.empty(p.size, dtype=np.int64)
        for g, idx in zip(cores, blocks):
            arr[idx] = g
        out[p.name] = arr
    return CoreMap(out, getattr(placement, "source", None) or "given placement", **geometry)


def population_order(net: Network) -> list:
    """Populations in layer order for a feed-forward network, in declaration order for a recurrent one."""
    try:
        return layer_order(net)
    except NeurocompError:
        return list(net.populations)


def mapping_placement(net: Network, device: Device) -> Tuple[Optional[Any], str]:
    """``(placement, note)``: what ``neurocomp.mapping`` computes from ``device``'s descriptor, or ``None``
    and why not (no such module, no ``limits:`` in the descriptor, or a design-rule violation)."""
    try:
        from neurocomp.mapping import map_network  # optional: core mapping lives in its own module
    except ImportError:
        return None, "neurocomp.mapping not available"
    desc, path = _read_descriptor(device.path)
    desc.setdefault("_path", path)
    if not isinstance(desc.get("limits"), dict):
        return None, f"{device.name} has no limits: section for neurocomp.mapping"
    try:
        return map_network(net, desc), ""
    except NeurocompError as e:
        return None, f"neurocomp.mapping could not place the network: {e}"


# ------------------------------------------------------------------------------------ activity
def is_plastic(proj) -> bool:
    """Learning hook: a projection learns when it carries a plasticity rule (``Projection.plasticity``,
    added to the IR by the STDP work; absent means static)."""
    return getattr(proj, "plasticity", None) is not None


def _weights(proj) -> np.ndarray:
    syn = proj.synapse
    return syn.weight if isinstance(syn, Dense) else fxp.effective_weights(syn)


def _activation(s: np.ndarray, proj, w: np.ndarray) -> np.ndarray:
    """The synaptic input a population receives, exactly as the simulator computes it."""
    a = s @ w.T
    if isinstance(proj.synapse, LoihiDense):
        a = fxp.shift_activation(np.rint(a).astype(np.int64), proj.synapse.weight_exp)
    return a


def _bias(neuron) -> np.ndarray:
    return fxp.effective_bias(neuron) if isinstance(neuron, LoihiLIF) else np.asarray(neuron.bias)


@dataclass
class LayerCounts:
    """Per-step totals over all samples for one population (arrays of length ``timesteps``)."""

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
    """What one core map adds: messages and hops per sending population and step (totals over samples),
    and each sample's modelled duration on the device."""

    core_map: CoreMap
    messages: Dict[str, np.ndarray]
    hops_ew: Dict[str, np.ndarray]
    hops_ns: Dict[str, np.ndarray]
    chip_crossings: Dict[str, np.ndarray]
    sample_seconds: np.ndarray          # [samples]
    busiest_core_seconds: np.ndarray    # [timesteps] mean over samples of the slowest core's work


@dataclass
class Activity:
    samples: int
    timesteps: int
    input_name: str
    input_size: int
    input_spikes: np.ndarray                 # [timesteps] totals over samples
    layers: List[LayerCounts]
    routing: Dict[str, RoutingCounts] = field(default_factory=dict)
    raster: Dict[str, np.ndarray] = field(default_factory=dict)   # sample 0: name -> bool [T, n]
    predictions: Optional[np.ndarray] = None
    learning_epochs: Dict[str, int] = field(default_factory=dict)  # stream runs: steps a rule did work

    def layer(self, name: str) -> LayerCounts:
        for lc in self.layers:
            if lc.population == name:
                return lc
        raise KeyError(name)


def _routing_tables(net: Network, cm: CoreMap, nz: Dict[str, np.ndarray]):
    """Per sending neuron: messages per spike (distinct destination cores), E-W and N-S hops summed over
    those messages, and how many of them leave the chip."""
    slots = cm.n_slots
    tables = {}
    for p in net.populations:
        outgoing = [proj for proj in net.projections if proj.source == p.name]
        if not outgoing:
            continue  # the output population: its spikes leave the chip to the host (I/O, not modelled)
        dest = np.zeros((p.size, slots), dtype=bool)
        for proj in outgoing:
            onehot = np.zeros((net.population(proj.target).size, slots))
            onehot[np.arange(onehot.shape[0]), cm.neuron_core[proj.target]] = 1.0
            dest |= (nz[proj.name].T.astype(np.float64) @ onehot) > 0
        src = cm.neuron_core[p.name]
        all_cores = np.arange(slots)
        cx, cy = cm.xy(all_cores)
        sx, sy = cm.xy(src)
        ew = np.abs(cx[None, :] - sx[:, None])
        ns = np.abs(cy[None, :] - sy[:, None])
        off_chip = cm.chip(all_cores)[None, :] != cm.chip(src)[:, None]
        tables[p.name] = (dest.sum(1).astype(np.float64), (dest * ew).sum(1).astype(np.float64),
                          (dest * ns).sum(1).astype(np.float64), (dest & off_chip).sum(1).astype(np.float64))
    return tables


class _Tally:
    """Adds batches of per-population activity ``[b, T, n]`` (synaptic ops delivered, active updates,
    spikes, learning updates) to per-layer totals and, for each core map, to messages, hops and the
    busiest core's time per step. One home for that arithmetic: the batched (feed-forward) and the
    stream counters both feed it."""

    def __init__(self, net: Network, order: list, T: int, n_samples: int, nz: Dict[str, np.ndarray],
                 core_maps: Optional[Dict[str, Tuple[CoreMap, Device]]], plastic: Callable = None):
        plastic = plastic or is_plastic
        self.net, self.order, self.n_samples = net, order, n_samples
        self.layers = []
        for p in order:
            inc = net.incoming(p.name)
            self.layers.append(LayerCounts(
                population=p.name, projections=tuple(x.name for x in inc), neurons=p.size,
                synapses=int(sum(nz[x.name].sum() for x in inc)),
                dense_synapses=int(sum(nz[x.name].size for x in inc)),
                synops=np.zeros(T), active_updates=np.zeros(T), inactive_updates=np.zeros(T),
                spikes=np.zeros(T), learning_updates=np.zeros(T), plastic=any(plastic(x) for x in inc)))
        self.by_name = {lc.population: lc for lc in self.layers}
        self.core_maps = core_maps or {}
        self.routing, self.route_tables, self.onehots = {}, {}, {}
        for key, (cm, dev) in self.core_maps.items():
            self.routing[key] = RoutingCounts(
                cm, *({p.name: np.zeros(T) for p in order} for _ in range(4)),
                sample_seconds=np.zeros(n_samples), busiest_core_seconds=np.zeros(T))
            self.route_tables[key] = _routing_tables(net, cm, nz)
            self.onehots[key] = {}
            for p in order:
                oh = np.zeros((p.size, cm.n_slots))
                oh[np.arange(p.size), cm.neuron_core[p.name]] = 1.0
                self.onehots[key][p.name] = oh
        self.input_spikes = np.zeros(T)

    def add(self, lo: int, input_trains: np.ndarray, pops: Dict[str, tuple]) -> None:
        """Samples ``lo..lo+b``: ``pops[name] = (synin, active, post, learn)``, each ``[b, T, n]``."""
        b, T = input_trains.shape[:2]
        self.input_spikes += input_trains.sum(axis=(0, 2))
        core_work = {key: np.zeros((b, T, rc.core_map.n_slots)) for key, rc in self.routing.items()}
        for p in self.order:
            synin, active, post, learn = pops[p.name]
            lc = self.by_name[p.name]
            lc.synops += synin.sum(axis=(0, 2))
            lc.active_updates += active.sum(axis=(0, 2))
            lc.inactive_updates += (~active).sum(axis=(0, 2))
            lc.spikes += post.sum(axis=(0, 2))
            lc.learning_updates += learn.sum(axis=(0, 2))
            for key, (cm, dev) in self.core_maps.items():
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
        for key, (cm, dev) in self.core_maps.items():
            busiest = core_work[key].max(axis=2)                                       # [b, T]
            self.routing[key].sample_seconds[lo:lo + b] = (busiest + barrier_seconds(dev, cm.tiles_used)).sum(axis=1)
            self.routing[key].busiest_core_seconds += busiest.sum(axis=0)

    def activity(self, raster: dict, predictions: Optional[np.ndarray]) -> "Activity":
        for rc in self.routing.values():
            rc.busiest_core_seconds /= max(self.n_samples, 1)
        T = len(self.input_spikes)
        return Activity(samples=self.n_samples, timesteps=T, input_name=self.net.input.name,
                        input_size=self.net.input.size, input_spikes=self.input_spikes, layers=self.layers,
                        routing=self.routing, raster=raster, predictions=predictions)


def _learning_synapse_updates(pre: np.ndarray, post: np.ndarray, connected: np.ndarray) -> np.ndarray:
    """Synapse updates of a pairwise-STDP projection per step ``[..., n_post]``: each pre spike updates
    its fan-out, each post spike its fan-in (``connected``: ``[n_post, n_pre]`` float 0/1)."""
    return pre @ connected.T + post * connected.sum(axis=1)


def measure_activity(net: Network, spikes_in: np.ndarray, core_maps: Optional[Dict[str, Tuple[CoreMap, Device]]] = None,
                     batch_size: int = 256) -> Activity:
    """Run ``net`` on ``spikes_in`` ``[samples, T, n_in]`` with the batched simulator (float or fixed
    point, whichever ``net`` is) and count its activity per layer and step; see the module docstring.

    ``core_maps``: ``{key: (CoreMap, Device)}`` — for each, spike messages/hops and the modelled time
    per sample (the slowest core's synaptic, neuron and learning work per step, plus barrier sync).
    """
    spikes_in = np.asarray(spikes_in)
    n_samples, T, _ = spikes_in.shape
    order = layer_order(net)
    w = {proj.name: _weights(proj).astype(np.float64) for proj in net.projections}
    nz = {k: (v != 0) for k, v in w.items()}
    nz_f = {k: v.astype(np.float64) for k, v in nz.items()}
    tally = _Tally(net, order, T, n_samples, nz, core_maps)
    raster = {}
    predictions = []
    for lo in range(0, n_samples, batch_size):
        chunk = spikes_in[lo:lo + batch_size]
        res = simulate(net, chunk, record=True, probe=True, target="energy")
        predictions.append(res.predictions)
        trains = {net.input.name: chunk.astype(np.float64)}
        trains.update({name: s.astype(np.float64) for name, s in res.spikes.items()})
        if lo == 0:
            raster = {name: np.asarray(s[0], dtype=bool) for name, s in trains.items()}
        pops = {}
        for p in order:
            inc = net.incoming(p.name)
            synin = sum(trains[x.source] @ nz_f[x.name].T for x in inc)               # [b, T, n]
            a = sum(_activation(trains[x.source], x, w[x.name]) for x in inc)
            u, v = res.states[p.name]["u"], res.states[p.name]["v"]
            busy_before = np.zeros_like(u, dtype=bool)
            busy_before[:, 1:] = (u[:, :-1] != 0) | (v[:, :-1] != 0)
            active = (a != 0) | busy_before | (_bias(p.neuron) != 0)[None, None, :]
            post = trains[p.name]
            learn = np.zeros_like(synin)
            for x in inc:
                if is_plastic(x):
                    learn += _learning_synapse_updates(trains[x.source], post, nz_f[x.name])
            pops[p.name] = (synin, active, post, learn)
        tally.add(lo, trains[net.input.name], pops)
    return tally.activity(raster, np.concatenate(predictions) if predictions else None)


def measure_stream_activity(net: Network, stream: np.ndarray, window: int,
                            core_maps: Optional[Dict[str, Tuple[CoreMap, Device]]] = None, learn: bool = False,
                            teacher: Optional[Dict[str, np.ndarray]] = None) -> Activity:
    """Activity of a plastic/recurrent fixed-point network on one continuous ``stream`` ``[steps, n_in]``,
    run on the cpu stream simulator (:func:`neurocomp.backends.learning.run_stream`), counted per step
    and folded into samples of ``window`` steps (sample ``k`` = steps ``k*window ..``), so the energy
    model sees it exactly like :func:`measure_activity`'s per-sample windows. Per population and step ``t``:

    * synaptic ops: the spikes its incoming projections (recurrent ones too) carried at ``t-1``, each
      times its nonzero weights as the chip holds them (Lava's one-step Dense delay: they are what
      the neuron integrates at ``t``); a plastic projection that is *learning* counts every synapse
      (its weights move, zero or not);
    * neuron updates, active when the buffered input is nonzero, ``u`` or ``v`` entered the step
      nonzero, or there is a bias. ``u``/``v`` are replayed from the recorded spikes with the single
      LIF kernel (:func:`neurocomp.backends.fixed_point.lif_step`) and the replay must reproduce every recorded
      spike. A population fed by a learning projection cannot be replayed (its weights change every
      step): all its updates are counted active, an upper bound;
    * spikes; learning synapse updates (``learn``): per plastic projection each pre spike updates its
      fan-out, each post spike its fan-in, on the spikes of step ``t`` (Lava's learning epoch).
    """
    from neurocomp.backends.learning import initial_weights, run_stream

    stream = np.asarray(stream, dtype=bool)
    steps = len(stream)
    n_samples = -(-steps // window)
    res = run_stream(net, stream, teacher=teacher, learn=learn, record=None)
    learning = {p.name for p in net.projections if p.plasticity is not None and learn}
    order = population_order(net)
    w = {p.name: initial_weights(p).astype(np.float64) for p in net.projections}
    nz = {k: (np.ones_like(v, dtype=bool) if k in learning else v != 0) for k, v in w.items()}
    nz_f = {k: v.astype(np.float64) for k, v in nz.items()}
    tally = _Tally(net, order, window, n_samples, nz, core_maps, plastic=lambda x: x.name in learning)
    trains = {net.input.name: stream.astype(np.float64)}
    trains.update({name: s.astype(np.float64) for name, s in res.spikes.items()})
    sent = {k: np.concatenate([np.zeros((1, v.shape[1])), v[:-1]]) for k, v in trains.items()}  # spikes at t-1

    def fold(x):
        pad = np.zeros((n_samples * window - steps,) + x.shape[1:], dtype=x.dtype)
        return np.concatenate([x, pad]).reshape((n_samples, window) + x.shape[1:])

    pops = {}
    for p in order:
        inc = net.incoming(p.name)
        synin = sum((sent[x.source] @ nz_f[x.name].T for x in inc), np.zeros((steps, p.size)))
        post = trains[p.name]
        if any(x.name in learning for x in inc):
            active = np.ones((steps, p.size), dtype=bool)
        else:
            a = sum((_activation(sent[x.source], x, w[x.name]) for x in inc), np.zeros((steps, p.size), np.int64))
            active = (a != 0) | (_bias(p.neuron) != 0)[None, :]
            u = v = np.zeros((1, p.size), dtype=np.int64)
            for t in range(steps):
                active[t] |= ((u[0] != 0) | (v[0] != 0))
                u, v, s = fxp.lif_step(u, v, a[t][None, :], p.neuron)
                if not np.array_equal(s[0].astype(bool), post[t].astype(bool)):
                    raise NeurocompError(f"population {p.name!r}: replaying u/v from the recorded spikes "
                                         f"disagrees with the stream simulator at step {t}")
        learn_updates = np.zeros((steps, p.size))
        for x in inc:
            if x.name in learning:
                learn_updates += _learning_synapse_updates(trains[x.source], post, nz_f[x.name])
        pops[p.name] = (fold(synin), fold(active), fold(post), fold(learn_updates))
    tally.add(0, fold(trains[net.input.name]), pops)
    raster = {name: np.asarray(s[:window], dtype=bool) for name, s in trains.items()}
    act = tally.activity(raster, None)
    act.learning_epochs = dict(res.learning_updates)
    return act


def barrier_seconds(device: Device, tiles: int) -> float:
    """Mesh-wide barrier sync per step: Davies' 113-465 ns for 1-32 tiles, linear in tiles used."""
    lo, hi, tmax = device["barrier_sync_time.min"], device["barrier_sync_time.max"], device["barrier_sync_time.tiles_max"]
    if tmax <= 1:
        return hi
    frac = min(max((tiles - 1) / (tmax - 1), 0.0), 1.0)
    return lo + frac * (hi - lo)


# ------------------------------------------------------------------------- neuromorphic energy
def neuromorphic_energy(device: Device, activity: Activity, routing_key: str) -> Dict[str, Any]:
    """Per-inference energy of ``activity`` on a neuromorphic ``device`` (its core map: ``routing_key``)."""
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
            "cores": sorted({int(c) for c in np.unique(rc.core_map.neuron_core[lc.population])}),
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
        "placement": {"source": rc.core_map.source, "cores": rc.core_map.as_dict(),
                      "cores_used": len(rc.core_map.cores_used), "tiles_used": rc.core_map.tiles_used},
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
def equivalent_ann(net: Network, float_net: Optional[Network] = None) -> List[Tuple[str, np.ndarray, np.ndarray]]:
    """The non-spiking network with the same layers: ``[(name, W [n_post, n_pre], bias [n_post])]`` in
    layer order, float weights from the float network when given (else the fixed-point effective
    weights). One dense pass of it is the conventional devices' workload."""
    src = float_net if float_net is not None else net
    out = []
    for p in layer_order(src):
        inc = src.incoming(p.name)
        if len(inc) != 1:
            raise NeurocompError(f"population {p.name!r}: {len(inc)} incoming projections; the equivalent "
                                 "non-spiking baseline takes one projection per layer")
        proj = inc[0]
        W = _weights(proj).astype(np.float32)
        if isinstance(proj.synapse, LoihiDense):
            W = W * np.float32(2.0 ** proj.synapse.weight_exp)
        bias = np.asarray(_bias(p.neuron), dtype=np.float32)
        out.append((p.name, W, bias))
    return out


def ann_op_counts(layers) -> Dict[str, int]:
    macs = int(sum(W.size for _, W, _ in layers))
    neurons = int(sum(W.shape[0] for _, W, _ in layers))
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
            W = _weights(proj).astype(np.float32)
            if isinstance(proj.synapse, LoihiDense):
                W = W * np.float32(2.0 ** proj.synapse.weight_exp)
            layers.append((proj.name, W, np.zeros(W.shape[0], dtype=np.float32)))
        return cls(layers, int(sum(p.size for p in net.populations)), int(steps))

    @property
    def input_size(self) -> int:
        return int(sum(W.shape[1] for _, W, _ in self.layers))

    def op_counts(self) -> Dict[str, int]:
        return {"macs": self.steps * int(sum(W.size for _, W, _ in self.layers)),
                "neuron_updates": self.steps * self.neurons}


class _Parallel:
    """torch: every projection's Linear on its own slice of one input vector (one step of a stream)."""

    def __new__(cls, layers, device="cpu"):
        import torch
        from torch import nn

        class Step(nn.Module):
            def __init__(self):
                super().__init__()
                self.lins = nn.ModuleList()
                for _, W, b in layers:
                    lin = nn.Linear(W.shape[1], W.shape[0])
                    with torch.no_grad():
                        lin.weight.copy_(torch.from_numpy(W))
                        lin.bias.copy_(torch.from_numpy(b))
                    self.lins.append(lin)
                self.sizes = [W.shape[1] for _, W, _ in layers]

            def forward(self, x):
                return [lin(part) for lin, part in zip(self.lins, torch.split(x, self.sizes, dim=1))]

        return Step().eval().to(device)


def _torch_model(layers, device="cpu"):
    return _Parallel(layers.layers, device) if isinstance(layers, StreamWorkload) else _torch_mlp(layers, device)


def _torch_mlp(layers, device="cpu"):
    import torch
    from torch import nn
    mods = []
    for i, (_, W, b) in enumerate(layers):
        lin = nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        mods.append(lin)
        if i < len(layers) - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval().to(device)


def _cpu_model_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _rapl_energy_uj() -> Optional[int]:
    p = Path("/sys/class/powercap/intel-rapl:0/energy_uj")
    try:
        return int(p.read_text().strip())
    except (OSError, ValueError):
        return None


def measure_cpu_latency(layers, x: np.ndarray, repeats: int = 300, warmup: int = 30) -> Dict[str, Any]:
    """Median batch-1 latency of the equivalent network in torch on this machine's CPU (float32), and
    package energy per inference when a RAPL counter is readable."""
    import torch
    model = _torch_model(layers)
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(1, -1))
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(xt)
        e0, t_all = _rapl_energy_uj(), time.perf_counter()
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(xt)
            times.append(time.perf_counter() - t0)
        t_all = time.perf_counter() - t_all
        e1 = _rapl_energy_uj()
    out = {"latency_s": float(np.median(times)), "latency_p95_s": float(np.percentile(times, 95)),
           "repeats": repeats, "threads": torch.get_num_threads(), "cpu": _cpu_model_name(),
           "framework": f"torch {torch.__version__}", "energy_j": None}
    if e0 is not None and e1 is not None and e1 >= e0:
        out["energy_j"] = (e1 - e0) * 1e-6 / repeats
        out["energy_how"] = f"RAPL package counter over {repeats} inferences ({t_all:.3f} s)"
    return out


def _to_cpu(out):
    return [o.cpu() for o in out] if isinstance(out, list) else out.cpu()


def measure_gpu(layers, x: np.ndarray, repeats: int = 300, warmup: int = 30) -> Optional[Dict[str, Any]]:
    """Batch-1 latency on a CUDA GPU (and NVML energy when pynvml is installed); ``None`` without a GPU."""
    import torch
    if not torch.cuda.is_available():
        return None
    model = _torch_model(layers, "cuda")
    xt = torch.from_numpy(np.asarray(x, dtype=np.float32).reshape(1, -1))
    nvml = None
    try:
        import pynvml  # type: ignore
        pynvml.nvmlInit()
        nvml = (pynvml, pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device()))
    except Exception:  # pynvml absent or no energy counter: latency only
        nvml = None
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            _to_cpu(model(xt.to("cuda")))
        torch.cuda.synchronize()
        e0 = nvml[0].nvmlDeviceGetTotalEnergyConsumption(nvml[1]) if nvml else None
        for _ in range(repeats):
            t0 = time.perf_counter()
            _to_cpu(model(xt.to("cuda")))  # includes both copies, as the modelled latency does
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        e1 = nvml[0].nvmlDeviceGetTotalEnergyConsumption(nvml[1]) if nvml else None
    out = {"latency_s": float(np.median(times)), "latency_p95_s": float(np.percentile(times, 95)),
           "repeats": repeats, "gpu": torch.cuda.get_device_name(), "energy_j": None}
    if e0 is not None and e1 is not None and e1 >= e0:
        out["energy_j"] = (e1 - e0) * 1e-3 / repeats  # NVML reports mJ
        out["energy_how"] = f"NVML total energy counter over {repeats} inferences"
    return out


def conventional_energy(device: Device, layers, x: np.ndarray, measure: bool = True) -> Dict[str, Any]:
    """Op model and time x power of one batch-1 pass of the equivalent network on ``device``
    (``layers``: the equivalent ANN's layers, or a :class:`StreamWorkload`: ``steps`` dense steps)."""
    stream = layers if isinstance(layers, StreamWorkload) else None
    ops = stream.op_counts() if stream else ann_op_counts(layers)
    op_model = ops["macs"] * device["mac"] + ops["neuron_updates"] * device["neuron_update"]
    floor = ops["macs"] * device["arithmetic_mac"]
    measured = None
    if measure:
        measured = measure_gpu(layers, x) if device.processor == "gpu" else measure_cpu_latency(layers, x)
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
                           "projections": [name for name, _, _ in stream.layers],
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


# ----------------------------------------------------------------------------------- the report
def resolve_devices(devices: Sequence[str], baseline: str) -> Tuple[List[Device], Dict[str, Device]]:
    """Load and check the neuromorphic ``devices`` and the baselines: the chosen one first, then the other
    shorthands (``gpu``, ``cpu``) so the report can compare all of them."""
    if not devices:
        raise TargetError(f"--devices: give at least one neuromorphic device ({', '.join(DEFAULT_DEVICES)})")
    devs = [load_device(d) for d in devices]
    for d in devs:
        if d.device_class != NEUROMORPHIC:
            raise TargetError(f"{d.path}: energy.device_class: {d.device_class}; --devices takes neuromorphic "
                              f"devices, conventional ones go to --baseline")
    bases = {}
    for b in [baseline] + [b for b in BASELINE_DEVICES if b != baseline]:
        dev = load_device(BASELINE_DEVICES.get(b, b))
        if dev.device_class != CONVENTIONAL:
            raise TargetError(f"{dev.path}: energy.device_class: {dev.device_class}; --baseline takes a "
                              f"conventional device ({', '.join(BASELINE_DEVICES)} or a descriptor)")
        bases[b] = dev
    return devs, bases


def estimate_energy(fixed: Network, spikes_in: np.ndarray, devices: Sequence[str] = DEFAULT_DEVICES,
                    baseline: str = "gpu", float_net: Optional[Network] = None, placement=None,
                    measure: bool = True, batch_size: int = 256) -> "EnergyReport":
    """The energy report of ``fixed`` on held-out ``spikes_in``: ``devices`` (neuromorphic descriptors,
    names or .yaml paths) against the ``baseline`` (``gpu``/``cpu`` or a conventional descriptor).

    ``placement``: ``{population: [core | (chip, core)]}`` used for every neuromorphic device; without it
    each device uses ``neurocomp.mapping`` when present (for its own descriptor), else the default
    sequential placement. ``measure=False`` skips the latency measurements (the cpu baseline needs them).
    """
    devs, bases = resolve_devices(devices, baseline)
    cmaps = device_core_maps(fixed, devs, placement)
    activity = measure_activity(fixed, spikes_in, cmaps, batch_size=batch_size)
    ann = equivalent_ann(fixed, float_net)
    x = np.asarray(spikes_in[0], dtype=np.float32).mean(axis=0) if len(spikes_in) else np.zeros(fixed.input.size)
    return _energy_report(fixed, activity, devs, bases, baseline, ann, x, measure,
                          "cpu target (neurocomp.backends.sim, Lava-bit-accurate fixed point)")


def device_core_maps(net: Network, devs: Sequence[Device], placement=None) -> Dict[str, Tuple[CoreMap, Device]]:
    """Each neuromorphic device's core map: the given ``placement``, else ``neurocomp.mapping``'s for
    that device, else the default sequential placement."""
    cmaps = {}
    for d in devs:
        pl, note = (placement, "") if placement is not None else mapping_placement(net, d)
        cm = core_map(net, d, pl)
        if note:
            cm.source += f"; {note}"
        cmaps[d.name] = (cm, d)
    return cmaps


def estimate_stream_energy(fixed: Network, stream: np.ndarray, window: int, devices: Sequence[str] = DEFAULT_DEVICES,
                           baseline: str = "gpu", float_net: Optional[Network] = None, placement=None,
                           measure: bool = True, learning_stream: Optional[np.ndarray] = None,
                           learning_net: Optional[Network] = None) -> "EnergyReport":
    """The energy report of a recurrent and/or plastic network (a Brian2 stream build) on one continuous
    held-out ``stream`` of samples of ``window`` steps, learning off; one inference = one sample's
    window. Activity: :func:`measure_stream_activity`; devices, placement and the report exactly as
    :func:`estimate_energy`. Baseline: :class:`StreamWorkload` (the same network stepped densely).

    ``learning_stream`` (with ``learning_net``, the network before learning, rules on): also the energy
    of *learning* on the chip, per training sample, in ``data["learning"]``.
    """
    devs, bases = resolve_devices(devices, baseline)
    cmaps = device_core_maps(fixed, devs, placement)
    activity = measure_stream_activity(fixed, stream, window, cmaps)
    workload = StreamWorkload.of(float_net if float_net is not None else fixed, window)
    x = np.full(workload.input_size, 0.1, dtype=np.float32)   # values do not change a dense mat-vec's time
    report = _energy_report(fixed, activity, devs, bases, baseline, workload, x, measure,
                            "cpu stream simulator (neurocomp.backends.learning, Lava-bit-accurate fixed point), "
                            "one continuous stream, learned weights frozen")
    if learning_stream is not None:
        net = learning_net if learning_net is not None else fixed
        learn_act = measure_stream_activity(net, learning_stream, window, device_core_maps(net, devs, placement),
                                            learn=True)
        per_dev = {d.name: neuromorphic_energy(d, learn_act, d.name) for d in devs}
        report.data["learning"] = {
            "samples": learn_act.samples,
            "learning_epochs": learn_act.learning_epochs,
            "learning_updates_per_sample": sum(lc.learning_updates.sum() for lc in learn_act.layers)
            / max(learn_act.samples, 1),
            "devices": {k: {f: v[f] for f in ("joules_per_inference", "dynamic_joules_per_inference",
                                               "static_joules_per_inference", "seconds_per_inference",
                                               "breakdown")} for k, v in per_dev.items()},
            "notes": ["per training sample (joules_per_inference = per sample of the training stream): the "
                      "network before learning, rules on, over the compile's first training samples",
                      "learning updates: each pre spike updates its fan-out, each post spike its fan-in "
                      "(learning_epochs: steps in which a rule did work, from the simulator)",
                      "neurons fed by a learning projection are all counted active (upper bound)"],
        }
    return report


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
    total_spikes = sum(lc.spikes.sum() for lc in activity.layers)
    data = {
        "model": fixed.name,
        "samples": activity.samples,
        "timesteps": activity.timesteps,
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
                "Effective_ACs": sum(lc.synops.sum() for lc in activity.layers) / max(activity.samples, 1),
                "Effective_MACs": 0.0,
                "Dense": sum(lc.dense_synapses for lc in activity.layers) * activity.timesteps,
                "definition": "NeuroBench SynapticOperations: per step, nonzero input x nonzero weight "
                              "(binary spikes, so all are ACs); Dense counts every product; per sample",
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
            "synaptic_operations": d["activity"]["synaptic_operations"]["Effective_ACs"],
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
