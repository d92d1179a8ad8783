"""Core mapping with design-rule checks: where each population and its synapses live on the chip.

``map_network(net, load_descriptor("loihi2"))`` allocates every population to neurocores within the
target descriptor's ``limits:`` section (each number with its source in ``targets/loihi2.yaml``) and
returns a :class:`Placement`; a network that cannot be placed raises :class:`DesignRuleError` naming
the layer and the limit.

The model (one population per core group, as Lava's compiler maps one process to its own cores):

* a population's neurons are split over ``k`` cores in contiguous blocks, ``np.array_split`` style;
* a core stores the incoming synapses of its neurons: for each input axon (presynaptic neuron) a
  dense row of ``neurons_in_core`` weights of ``num_weight_bits`` bits, packed into 64-bit words
  (the dense synapse format nengo-loihi models for Loihi; Loihi 2's exact encoding is not public) —
  bounded by ``synaptic_memory_per_core``;
* fan-in: every core of a dense layer receives one input axon per presynaptic neuron, so a layer
  whose fan-in exceeds ``fan_in_per_core`` cannot be split to fit — an error;
* a convolution (assumption stated in ``targets/loihi2.yaml``): a core stores each output channel's
  kernel once (``C_in/groups * kH * kW`` weights per channel it holds) and receives the axons of the
  source neurons whose receptive fields reach its outputs, so fewer neurons per core also means fewer
  input axons (the core count grows until both fit);
* fan-out: a neuron sends one axon to every core of every population it projects to, so a core's
  output axons are ``neurons_in_core * cores of its targets`` — bounded by ``fan_out_per_core``.
  The input layer streams in from the host (embedded processors) and uses no neurocore;
* ``k`` is the smallest core count meeting all per-core limits; cores are then numbered chip by chip
  in layer order, and the total must fit ``chips * cores_per_chip`` and ``synapses_per_chip``;
* weights wider than the target's ``fixed_point.weight_bits`` (or mantissas outside its range) are errors.

The same :class:`Placement` is the energy model's core map (:mod:`neurocomp.energy`): with a
:class:`Mesh` (chip / tile geometry, from a device's ``energy.mesh``) it gives each neuron's global
core, each core's chip and tile position, and the tiles used. Besides :func:`map_network` it can be
built by :func:`sequential_placement` (a device without ``limits:``: each population in layer order
takes fresh cores of ``neurons_per_core``, synaptic memory not checked) and :func:`placement_from_cores`
(a user-given ``{population: [core | (chip, core), ...]}``).

Why one module of ~590 lines: one Placement for every layer kind; dense, conv and pooled layers
share the core-budget arithmetic and the over-capacity errors, which would otherwise be copied.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from neurocomp.errors import NeurocompError, TargetError
from neurocomp.ir import LoihiDense, Network

WORD_BITS = 64  # synaptic memory is allocated in 64-bit words


class DesignRuleError(NeurocompError):
    """The network cannot be placed on the target: names the layer and the limit it breaks."""


@dataclass(frozen=True)
class Limits:
    """A target's resource limits (``limits:`` in its descriptor); ``sources`` holds each one's citation."""

    chips: int
    cores_per_chip: int
    neurons_per_core: int
    synaptic_memory_per_core: int  # bytes
    fan_in_per_core: int
    fan_out_per_core: int
    synapses_per_chip: int
    weight_bits: int
    sources: Dict[str, str] = field(default_factory=dict, compare=False)

    FIELDS = ("chips", "cores_per_chip", "neurons_per_core", "synaptic_memory_per_core",
              "fan_in_per_core", "fan_out_per_core", "synapses_per_chip")

    @classmethod
    def from_descriptor(cls, desc: Dict[str, Any]) -> "Limits":
        where = desc.get("_path", desc.get("name"))
        section = desc.get("limits")
        if not isinstance(section, dict):
            raise TargetError(f"{where}: target {desc.get('name')!r} has no limits: section (cannot map to cores)")
        values, sources = {}, {}
        for key in cls.FIELDS:
            node = section.get(key)
            if not isinstance(node, dict) or "value" not in node:
                raise TargetError(f"{where}: limits.{key} missing (expected {{value: <int>, source: ...}})")
            v = node["value"]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise TargetError(f"{where}: limits.{key}.value must be a positive integer, got {v!r}")
            if not str(node.get("source", "")).strip():
                raise TargetError(f"{where}: limits.{key}.source missing: every number needs its source")
            values[key], sources[key] = v, str(node["source"])
        fp = desc.get("fixed_point") or {}
        try:
            wb = fp["weight_bits"]["value"]
            sources["weight_bits"] = str(fp["weight_bits"].get("source", ""))
        except (KeyError, TypeError):
            raise TargetError(f"{where}: fixed_point.weight_bits.value missing (needed to check weight widths)") from None
        return cls(weight_bits=int(wb), sources=sources, **values)

    def as_dict(self) -> dict:
        return {k: {"value": getattr(self, k), "source": self.sources.get(k, "")}
                for k in self.FIELDS + ("weight_bits",)}


@dataclass(frozen=True)
class Mesh:
    """Chip and tile geometry. Global core ``g`` is core ``g % cores_per_chip`` of chip
    ``g // cores_per_chip``; its tile is ``core // cores_per_tile`` at mesh position
    ``(tile % tiles_x, tile // tiles_x)``."""

    cores_per_chip: int
    cores_per_tile: int
    tiles_x: int

    def chip(self, g):
        return np.asarray(g) // self.cores_per_chip

    def tile(self, g):
        return (np.asarray(g) % self.cores_per_chip) // self.cores_per_tile

    def xy(self, g):
        t = self.tile(g)
        return t % self.tiles_x, t // self.tiles_x


@dataclass(frozen=True)
class CoreAllocation:
    """One core's share of a population: neurons ``[start, stop)`` and their incoming synapses."""

    chip: int
    core: int
    population: str
    start: int
    stop: int
    synapses: int
    memory_bytes: int
    fan_in: int
    fan_out: int

    @property
    def neurons(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Placement:
    """Where every population sits: ``allocations`` are contiguous neuron blocks ``[start, stop)``
    each on one ``(chip, core)``, in neuron order (:func:`map_network` splits as ``np.array_split``).
    ``cores[pop]`` -> ``[(chip, core), ...]`` in neuron order.

    ``limits``: the target's limits the placement was checked against (``None``: not checked);
    ``mesh``: chip/tile geometry, needed for global cores and tiles (set with :meth:`on`);
    ``how``: where the placement came from, when not :func:`map_network`.
    """

    network: str
    target: str
    limits: Optional[Limits]
    allocations: Tuple[CoreAllocation, ...]
    order: Tuple[str, ...]
    mesh: Optional[Mesh] = None
    how: Optional[str] = None
    core_order: Optional[Dict[str, np.ndarray]] = None   # population -> neuron ids in block order

    @property
    def source(self) -> str:
        if self.how:
            return self.how
        return f"neurocomp.passes.place for {self.target} (limits: targets/{self.target}.yaml)"

    @property
    def cores(self) -> Dict[str, List[Tuple[int, int]]]:
        out: Dict[str, List[Tuple[int, int]]] = {name: [] for name in self.order}
        for a in self.allocations:
            out[a.population].append((a.chip, a.core))
        return out

    @property
    def cores_used(self) -> int:
        return len(self.allocations)

    @property
    def chips_used(self) -> int:
        return len({a.chip for a in self.allocations})

    def neuron_cores(self, population: str) -> np.ndarray:
        """``[n, 2]`` (chip, core) of every neuron of ``population`` — for spike routing."""
        rows = [np.tile([a.chip, a.core], (a.neurons, 1)) for a in self.allocations if a.population == population]
        if not rows:
            raise KeyError(population)
        rows = np.concatenate(rows).astype(np.int64)
        order = (self.core_order or {}).get(population)
        if order is None:
            return rows
        out = np.empty_like(rows)
        out[order] = rows            # block positions -> the neurons they hold
        return out

    # -- the core map (needs a mesh) ---------------------------------------------------------
    def on(self, mesh: Mesh) -> "Placement":
        """This placement read with ``mesh``'s geometry (chip numbering included)."""
        return replace(self, mesh=mesh)

    def _mesh(self) -> Mesh:
        if self.mesh is None:
            raise NeurocompError(f"placement of {self.network!r}: no chip/tile geometry (Placement.on(mesh))")
        return self.mesh

    def global_cores_of(self, population: str) -> np.ndarray:
        """``[n]`` global core index ``chip * cores_per_chip + core`` of every neuron of ``population``."""
        nc = self.neuron_cores(population)
        return nc[:, 0] * self._mesh().cores_per_chip + nc[:, 1]

    @property
    def global_cores(self) -> List[int]:
        """The global cores used, sorted."""
        cpc = self._mesh().cores_per_chip
        return sorted({a.chip * cpc + a.core for a in self.allocations})

    @property
    def n_slots(self) -> int:
        """Global core indices ``0 .. n_slots - 1`` cover every core used."""
        used = self.global_cores
        return used[-1] + 1 if used else 1

    @property
    def tiles_used(self) -> int:
        mesh, cores = self._mesh(), np.array(self.global_cores)
        return len(set(zip(mesh.chip(cores).tolist(), mesh.tile(cores).tolist())))

    def core_lists(self) -> Dict[str, List[List[int]]]:
        """``{population: [[chip, core], ...]}``: each population's distinct cores in neuron order."""
        out: Dict[str, List[List[int]]] = {name: [] for name in self.order}
        for a in self.allocations:
            if [a.chip, a.core] not in out[a.population]:
                out[a.population].append([a.chip, a.core])
        return out

    def layers(self) -> List[dict]:
        """Per population: neurons, cores, chips, synapses, memory use (peak core), fan-in/out."""
        mem = self.limits.synaptic_memory_per_core if self.limits else None
        rows = []
        for name in self.order:
            al = [a for a in self.allocations if a.population == name]
            rows.append({
                "population": name,
                "neurons": sum(a.neurons for a in al),
                "cores": len(al),
                "chips": sorted({a.chip for a in al}),
                "neurons_per_core_max": max(a.neurons for a in al),
                "synapses": sum(a.synapses for a in al),
                "memory_bytes": sum(a.memory_bytes for a in al),
                "memory_utilisation_peak": round(max(a.memory_bytes for a in al) / mem, 4) if mem else None,
                "memory_utilisation_mean": (round(sum(a.memory_bytes for a in al) / (len(al) * mem), 4)
                                            if mem else None),
                "fan_in": max(a.fan_in for a in al),
                "fan_out_max": max(a.fan_out for a in al),
            })
        return rows

    def as_dict(self) -> dict:
        """The core map for reports (``report.json["mapping"]``)."""
        lim = self.limits
        total_mem = sum(a.memory_bytes for a in self.allocations)
        return {
            "target": self.target,
            "chips_used": self.chips_used,
            "cores_used": self.cores_used,
            "cores_available": lim.chips * lim.cores_per_chip if lim else None,
            "memory_utilisation": (round(total_mem / (self.cores_used * lim.synaptic_memory_per_core), 4)
                                   if lim else None),
            "layers": self.layers(),
            "cores": {name: [list(c) for c in cores] for name, cores in self.cores.items()},
            "limits": lim.as_dict() if lim else None,
            "model": "one population per core group; dense synapse rows packed in 64-bit words (a convolution: "
                     "each output channel's kernel stored once per core, input axons = the receptive fields "
                     "the core's outputs reach — targets/loihi2.yaml states the assumption); "
                     "fan-out counted per destination core",
        }

    def format_table(self) -> str:
        lim = self.limits
        if lim is None:
            raise NeurocompError(f"placement of {self.network!r} ({self.source}): no limits to report against")
        hdr = (f"{'layer':<12} {'neurons':>7} {'cores':>5} {'chips':>7} {'max n/core':>10} {'synapses':>10} "
               f"{'mem peak':>8} {'fan-in':>6} {'fan-out':>7}")
        lines = [hdr, "-" * len(hdr)]
        for r in self.layers():
            chips = ",".join(map(str, r["chips"]))
            lines.append(f"{r['population']:<12} {r['neurons']:>7} {r['cores']:>5} {chips:>7} "
                         f"{r['neurons_per_core_max']:>10} {r['synapses']:>10} "
                         f"{100 * r['memory_utilisation_peak']:>7.1f}% {r['fan_in']:>6} {r['fan_out_max']:>7}")
        d = self.as_dict()
        lines.append(f"{self.cores_used} of {d['cores_available']} cores ({lim.chips} chips x {lim.cores_per_chip}), "
                     f"{self.chips_used} chip(s) used, synaptic memory {100 * d['memory_utilisation']:.1f}% of the "
                     f"cores used ({lim.synaptic_memory_per_core // 1024} KB each)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ mapping
def _weight_bits(proj, limits: Limits) -> int:
    """Bits each synapse of ``proj`` stores; checks the weights fit the target's weight format."""
    syn = proj.synapse
    if not isinstance(syn, LoihiDense):
        return limits.weight_bits  # float network: assume the widest weights the target stores
    if syn.num_weight_bits > limits.weight_bits:
        raise DesignRuleError(
            f"projection {proj.name!r} -> layer {proj.target!r}: weights are {syn.num_weight_bits} bits wide, "
            f"the target stores at most {limits.weight_bits} (fixed_point.weight_bits)")
    lo, hi = -(2 ** limits.weight_bits), 2 ** limits.weight_bits - 1
    if syn.weight.size and (syn.weight.min() < lo or syn.weight.max() > hi):
        raise DesignRuleError(
            f"projection {proj.name!r} -> layer {proj.target!r}: weight mantissas span "
            f"[{int(syn.weight.min())}, {int(syn.weight.max())}], beyond the {limits.weight_bits}-bit range "
            f"[{lo}, {hi}] the target stores (fixed_point.weight_bits)")
    return syn.num_weight_bits


class _Incoming:
    """One projection into a population, as a core holding neurons ``[lo, hi)`` of it sees it.

    Dense: every input axon (presynaptic neuron) reaches every core, and the core stores one row of
    ``hi - lo`` weights per axon. Convolution (``limits.conv_kernel_sharing``): the core receives the
    axons of the source neurons whose receptive fields reach its outputs, and stores each output
    channel's kernel once (``C_in/groups * kH * kW`` weights per channel it holds)."""

    def __init__(self, proj, n_pre: int, bits: int, pre_shape=None, post_order=None):
        self.n_pre, self.bits = int(n_pre), int(bits)
        self.conv = None
        syn = proj.synapse
        if hasattr(syn, "dense_matrix"):
            nz = syn.dense_matrix(pre_shape) != 0
            rows = np.arange(nz.shape[0]) if post_order is None else np.asarray(post_order)
            per_channel = int(np.prod(syn.output_shape(pre_shape)[1:]))
            # rows in the cores' order; each row's output channel (its kernel)
            self.conv = (nz[rows], rows // per_channel, syn.fan_in)

    def fan_in(self, lo: int, hi: int) -> int:
        if self.conv is None:
            return self.n_pre
        return int(self.conv[0][lo:hi].any(axis=0).sum())

    def synapses(self, lo: int, hi: int) -> int:
        return (hi - lo) * self.n_pre if self.conv is None else int(self.conv[0][lo:hi].sum())

    def memory(self, lo: int, hi: int) -> int:
        if self.conv is None:
            return self.n_pre * math.ceil((hi - lo) * self.bits / WORD_BITS) * (WORD_BITS // 8)
        _, channel_of, taps = self.conv
        channels = np.unique(channel_of[lo:hi]).size
        return math.ceil(channels * taps * self.bits / WORD_BITS) * (WORD_BITS // 8)


def _reach(inc: "_Incoming", n_target: int, cuts: List[Tuple[int, int]]) -> np.ndarray:
    """Per source neuron, how many of the target's cores (neuron blocks ``cuts``) it sends an axon to:
    all of them for a dense projection, those whose outputs its projective field reaches for a conv."""
    if inc.conv is None:
        return np.full(inc.n_pre, len([c for c in cuts if c[1] > c[0]]), dtype=np.int64)
    nz = inc.conv[0]
    return np.sum([nz[lo:hi].any(axis=0) for lo, hi in cuts if hi > lo], axis=0).astype(np.int64)


def _cuts(size: int, n_cores: int) -> List[Tuple[int, int]]:
    return [(int(b[0]), int(b[-1]) + 1) for b in np.array_split(np.arange(size), n_cores) if len(b)]


def _core_memory(neurons: int, incoming: List["_Incoming"], start: int = 0) -> int:
    """Bytes of synaptic memory for neurons ``[start, start + neurons)`` with their incoming projections."""
    return sum(inc.memory(start, start + neurons) for inc in incoming)


def _core_fan_in(neurons: int, incoming: List["_Incoming"], start: int = 0) -> int:
    return sum(inc.fan_in(start, start + neurons) for inc in incoming)


def _max_neurons_per_core(incoming: List["_Incoming"], budget: int, fan_in_limit: int, cap: int) -> int:
    """Largest ``k <= cap`` whose synapses fit ``budget`` bytes and whose input axons fit
    ``fan_in_limit`` (both grow with ``k``: bisect)."""
    lo, hi = 0, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _core_memory(mid, incoming) <= budget and _core_fan_in(mid, incoming) <= fan_in_limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _allocate(net: Network, blocks: Dict[str, List[Tuple[int, int, int, int]]], bits,
              orders: Optional[Dict[str, np.ndarray]] = None) -> Tuple[CoreAllocation, ...]:
    """Allocations from ``blocks[pop] = [(chip, core, start, stop), ...]`` (contiguous neuron blocks in
    neuron order; empty ones skipped): each core's synapses (dense rows), memory with ``bits(proj)``
    bits per weight, fan-in, and fan-out (one axon per neuron and distinct destination core)."""
    incoming = {name: [] for name in blocks}      # name -> [_Incoming]
    outgoing = {name: [] for name in blocks}      # name -> [(target, _Incoming)]
    orders = orders or {}
    for proj in net.projections:
        inc = _Incoming(proj, net.size_of(proj.source), bits(proj), net.shape_of(proj.source),
                        orders.get(proj.target))
        incoming[proj.target].append(inc)
        if proj.source in outgoing:
            outgoing[proj.source].append((proj.target, inc))
    reach = {}
    for name in blocks:   # per neuron (in block order): output axons, one per destination core it reaches
        cuts = {t: [(lo, hi) for _, _, lo, hi in blocks[t]] for t, _ in outgoing[name]}
        r = sum((_reach(inc, 0, cuts[t]) for t, inc in outgoing[name]), np.zeros(net.size_of(name), dtype=np.int64))
        reach[name] = r if name not in orders else r[orders[name]]
    out = []
    for name, bl in blocks.items():
        for chip, core, lo, hi in bl:
            k = hi - lo
            if k <= 0:
                continue
            inc = incoming[name]
            out.append(CoreAllocation(chip=chip, core=core, population=name, start=lo, stop=hi,
                                      synapses=sum(i.synapses(lo, hi) for i in inc),
                                      memory_bytes=_core_memory(k, inc, lo), fan_in=_core_fan_in(k, inc, lo),
                                      fan_out=int(reach[name][lo:hi].sum())))
    return tuple(out)


def _stored_bits(proj) -> int:
    """Bits per weight without a target to check against: the synapse's own (8 for float weights)."""
    return int(getattr(proj.synapse, "num_weight_bits", 8))


def sequential_placement(net: Network, neurons_per_core: int, mesh: Mesh, target: str = "") -> Placement:
    """The default placement where a device gives no ``limits:``: each population in layer order takes
    ``ceil(size / neurons_per_core)`` fresh cores, neurons spread evenly (blocks of
    ``ceil(size / cores)``); synaptic memory, fan-in and fan-out are not checked."""
    order = [p.name for p in net.execution_order()]
    blocks, nxt = {}, 0
    for name in order:
        size = net.population(name).size
        n_cores = max(1, -(-size // neurons_per_core))
        per = -(-size // n_cores)
        blocks[name] = [((nxt + i) // mesh.cores_per_chip, (nxt + i) % mesh.cores_per_chip,
                         min(i * per, size), min((i + 1) * per, size)) for i in range(n_cores)]
        nxt += n_cores
    how = (f"default sequential placement ({neurons_per_core} neurons per core, populations in layer order, "
           "synaptic memory not checked)")
    return Placement(net.name, target, None, _allocate(net, blocks, _stored_bits), tuple(order), mesh, how)


def placement_from_cores(net: Network, cores, mesh: Mesh, target: str = "", how: str = "given placement") -> Placement:
    """A given placement ``{population: [core, ...]}``, a core being a global index or a ``(chip, core)``
    pair: each population's neurons are split over its list in contiguous blocks
    (``np.array_split``), in list order (a core may appear more than once)."""
    if not isinstance(cores, Mapping):
        raise NeurocompError(f"placement: expected a mapping population -> list of cores or a Placement, "
                             f"got {type(cores).__name__}")
    order = [p.name for p in net.execution_order()]
    blocks = {}
    for name in order:
        if name not in cores:
            raise NeurocompError(f"placement: population {name!r} missing (placed: {', '.join(map(str, cores))})")
        gs = []
        for c in cores[name]:
            if isinstance(c, (tuple, list)) and len(c) == 2:
                g = int(c[0]) * mesh.cores_per_chip + int(c[1])
            elif isinstance(c, (int, np.integer)) and not isinstance(c, bool):
                g = int(c)
            else:
                raise NeurocompError(f"placement: population {name!r}: core {c!r} is neither an index nor (chip, core)")
            if g < 0:
                raise NeurocompError(f"placement: population {name!r}: negative core {c!r}")
            gs.append(g)
        if not gs:
            raise NeurocompError(f"placement: population {name!r} has no cores")
        split = np.array_split(np.arange(net.population(name).size), len(gs))
        blocks[name] = [(g // mesh.cores_per_chip, g % mesh.cores_per_chip, int(b[0]) if len(b) else 0,
                         int(b[-1]) + 1 if len(b) else 0) for g, b in zip(gs, split)]
    return Placement(net.name, target, None, _allocate(net, blocks, _stored_bits), tuple(order), mesh, how)


def conv_core_orders(net: Network) -> Dict[str, np.ndarray]:
    """Populations a convolution feeds are placed position-major — a core holds every channel of a
    patch of positions, whose receptive fields overlap — rather than in their C-major neuron order,
    where a core would hold one channel's scattered positions: ``{population: neuron ids in core order}``."""
    out = {}
    for p in net.populations:
        if len(p.shape) == 3 and any(hasattr(x.synapse, "dense_matrix") for x in net.incoming(p.name)):
            c, h, w = p.shape
            out[p.name] = np.arange(p.size).reshape(c, h, w).transpose(1, 2, 0).ravel()
    return out


def map_network(net: Network, descriptor: Dict[str, Any]) -> Placement:
    """Place ``net`` on the target ``descriptor`` (``neurocomp.targets.load_descriptor``) or raise
    :class:`DesignRuleError` naming the layer and the limit it breaks."""
    limits = Limits.from_descriptor(descriptor)
    target = descriptor.get("name", "?")
    pops = {p.name: p for p in net.populations}
    orders = conv_core_orders(net)
    incoming = {name: [] for name in pops}  # name -> [_Incoming]
    targets_of = {name: [] for name in pops}  # name -> populations it projects to
    for proj in net.projections:
        incoming[proj.target].append(_Incoming(proj, net.size_of(proj.source), _weight_bits(proj, limits),
                                               net.shape_of(proj.source), orders.get(proj.target)))
        if proj.source in targets_of:
            targets_of[proj.source].append(proj.target)

    # per-core capacity from neurons, fan-in and synaptic memory (independent of other layers)
    cap = {}
    for name, pop in pops.items():
        fan_in = _core_fan_in(1, incoming[name])
        if fan_in > limits.fan_in_per_core:
            raise DesignRuleError(
                f"layer {name!r}: fan-in {fan_in} input axons exceeds limits.fan_in_per_core="
                f"{limits.fan_in_per_core}; one neuron's inputs cannot be split across cores")
        k = _max_neurons_per_core(incoming[name], limits.synaptic_memory_per_core, limits.fan_in_per_core,
                                  limits.neurons_per_core)
        if k < 1:
            raise DesignRuleError(
                f"layer {name!r}: one neuron's {fan_in} synapses need {_core_memory(1, incoming[name])} bytes, "
                f"more than limits.synaptic_memory_per_core={limits.synaptic_memory_per_core} bytes")
        cap[name] = min(k, pop.size)

    # a block's receptive fields (convolutions) depend on where it starts, and a source's output axons
    # on its targets' core counts (and, for a convolution, on which of them its projective field
    # reaches): grow the core counts until every block fits
    n_cores = {name: math.ceil(pops[name].size / cap[name]) for name in pops}
    outgoing = {name: [] for name in pops}   # name -> [(target, _Incoming)]
    for proj in net.projections:
        if proj.source in outgoing:
            t_inc = incoming[proj.target][[p.name for p in net.incoming(proj.target)].index(proj.name)]
            outgoing[proj.source].append((proj.target, t_inc))
    for _ in range(64 + 4 * len(pops)):
        changed = False
        for name, pop in pops.items():
            while not all(_core_fan_in(hi - lo, incoming[name], lo) <= limits.fan_in_per_core and
                          _core_memory(hi - lo, incoming[name], lo) <= limits.synaptic_memory_per_core
                          for lo, hi in _cuts(pop.size, n_cores[name])):
                n_cores[name] += max(1, n_cores[name] // 16)
                changed = True
        for name, pop in pops.items():
            if not outgoing[name]:
                continue
            reach = sum(_reach(inc, 0, _cuts(pops[t].size, n_cores[t])) for t, inc in outgoing[name])
            if name in orders:
                reach = reach[orders[name]]
            worst = int(reach.max())
            if worst > limits.fan_out_per_core:
                raise DesignRuleError(
                    f"layer {name!r}: a neuron needs {worst} output axons (one per destination core it reaches), "
                    f"more than limits.fan_out_per_core={limits.fan_out_per_core}")
            while any(int(reach[lo:hi].sum()) > limits.fan_out_per_core for lo, hi in _cuts(pop.size, n_cores[name])):
                n_cores[name] += max(1, n_cores[name] // 16)
                changed = True
        if not changed:
            break
    else:  # pragma: no cover - the core counts only grow and are bounded by the neuron counts
        raise DesignRuleError(f"network {net.name!r}: fan-in/fan-out limits did not settle")

    # number the cores chip by chip, populations in layer order (declaration order when not layered)
    order = [p.name for p in net.execution_order()]
    blocks, g = {}, 0
    for name in order:
        blocks[name] = []
        for block in np.array_split(np.arange(pops[name].size), n_cores[name]):
            blocks[name].append((g // limits.cores_per_chip, g % limits.cores_per_chip, int(block[0]), int(block[-1]) + 1))
            g += 1
    allocations = _allocate(net, blocks, lambda proj: _weight_bits(proj, limits), orders)
    available = limits.chips * limits.cores_per_chip
    if g > available:
        per_layer = ", ".join(f"{n}: {n_cores[n]}" for n in order)
        raise DesignRuleError(
            f"network {net.name!r} needs {g} cores ({per_layer}), more than limits.chips={limits.chips} x "
            f"limits.cores_per_chip={limits.cores_per_chip} = {available}")
    for chip in sorted({a.chip for a in allocations}):
        syn = sum(a.synapses for a in allocations if a.chip == chip)
        if syn > limits.synapses_per_chip:
            layers = sorted({a.population for a in allocations if a.chip == chip})
            raise DesignRuleError(
                f"chip {chip} (layers {', '.join(layers)}): {syn} synapses exceed "
                f"limits.synapses_per_chip={limits.synapses_per_chip}")
    return Placement(net.name, target, limits, tuple(allocations), tuple(order), core_order=orders or None)


def mapping_report(net: Network, descriptor: Dict[str, Any], strict: bool = False) -> Optional[dict]:
    """``Placement.as_dict()`` for the compile report, or ``None`` when the target has no ``limits:``.

    A design-rule violation raises when ``strict`` (compiling for the chip itself); otherwise — a
    simulator target, where the network still runs — it is reported as ``{"target", "error"}``.
    """
    if not isinstance(descriptor.get("limits"), dict):
        return None
    try:
        return map_network(net, descriptor).as_dict()
    except DesignRuleError as e:
        if strict:
            raise
        return {"target": descriptor.get("name"), "error": str(e)}
