"""The network graph: one input layer, populations, projections between them, one output population.

A :class:`Network` validates itself on construction (names, ends, shapes, float vs fixed-point
pairings) and answers its own structural questions, so no pass or backend re-derives them:

* :meth:`Network.depths` — each population's distance (in projections) from the input: Lava's
  ``Dense`` delays by one step per projection, so this is also the earliest step at which an input
  spike can reach it;
* :attr:`Network.is_layered` — every projection goes from depth ``d`` to ``d + 1`` (no recurrence,
  no skips): samples can then run as independent, batched windows (the ``batched`` schedule);
* :attr:`Network.is_feedforward`, :meth:`Network.recurrent_projections`, :attr:`Network.is_plastic`;
* :meth:`Network.execution_order` — layer order for a layered network, declaration order otherwise.

Timing is Lava's: a projection delivers the spikes its source emitted at step ``t`` to its target at
step ``t+1``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Dict, Optional

from neurocomp.ir._common import as_shape, volume
from neurocomp.ir.encodings import Encoding, RateEncoding
from neurocomp.ir.neurons import FIXED_NEURONS, Neuron
from neurocomp.ir.plasticity import LoihiLearning, Plasticity
from neurocomp.ir.synapses import FIXED_SYNAPSES, Synapse


@dataclass(frozen=True)
class Input:
    """The input layer: ``size`` channels (``shape`` when spatial, e.g. ``(1, 28, 28)``)."""

    name: str
    size: int
    encoding: Encoding = field(default_factory=RateEncoding)
    shape: tuple = None  # type: ignore[assignment]

    def __post_init__(self):
        shape = as_shape(self.shape if self.shape is not None else (self.size,), f"input {self.name!r}")
        if volume(shape) != int(self.size):
            raise ValueError(f"input {self.name!r}: shape {shape} holds {volume(shape)} channels, size is {self.size}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "size", int(self.size))


@dataclass(frozen=True)
class Population:
    """Neurons of one model; ``shape`` defaults to ``(size,)`` and may be spatial ``(C, H, W)``."""

    name: str
    neuron: Neuron
    shape: tuple = None  # type: ignore[assignment]

    def __post_init__(self):
        shape = as_shape(self.shape if self.shape is not None else (self.neuron.size,), f"population {self.name!r}")
        if volume(shape) != self.neuron.size:
            raise ValueError(f"population {self.name!r}: shape {shape} holds {volume(shape)} neurons, "
                             f"its {type(self.neuron).__name__} has {self.neuron.size}")
        object.__setattr__(self, "shape", shape)

    @property
    def size(self) -> int:
        return self.neuron.size


@dataclass(frozen=True)
class Projection:
    name: str
    source: str
    target: str
    synapse: Synapse
    plasticity: Optional[Plasticity] = None  # a learning rule; None = fixed weights


def _shape_error(synapse, pre_shape: tuple, post_shape: tuple) -> Optional[str]:
    check = getattr(synapse, "shape_error", None)
    if check is not None:
        return check(pre_shape, post_shape)
    want = (volume(post_shape), volume(pre_shape))
    if tuple(synapse.shape) != want:
        return f"weight shape {tuple(synapse.shape)}, expected {want}"
    return None


@dataclass(frozen=True)
class Network:
    """A spiking network: one input layer, populations, projections, one output population."""

    name: str
    input: Input
    populations: tuple
    projections: tuple
    output: str
    timesteps: int

    def __post_init__(self):
        object.__setattr__(self, "populations", tuple(self.populations))
        object.__setattr__(self, "projections", tuple(self.projections))
        names = [self.input.name] + [p.name for p in self.populations]
        if len(set(names)) != len(names):
            raise ValueError(f"network {self.name!r}: duplicate population names in {names}")
        proj_names = [p.name for p in self.projections]
        if len(set(proj_names)) != len(proj_names):
            raise ValueError(f"network {self.name!r}: duplicate projection names in {proj_names}")
        shapes = {self.input.name: self.input.shape, **{p.name: p.shape for p in self.populations}}
        for proj in self.projections:
            for end in (proj.source, proj.target):
                if end not in shapes:
                    raise ValueError(f"projection {proj.name!r}: unknown population {end!r}")
            if proj.target == self.input.name:
                raise ValueError(f"projection {proj.name!r}: cannot target the input layer")
            problem = _shape_error(proj.synapse, shapes[proj.source], shapes[proj.target])
            if problem:
                raise ValueError(f"projection {proj.name!r} ({proj.source} {shapes[proj.source]} -> "
                                 f"{proj.target} {shapes[proj.target]}): {problem}")
            if proj.plasticity is not None and (
                    isinstance(proj.plasticity, LoihiLearning) != isinstance(proj.synapse, FIXED_SYNAPSES)):
                raise ValueError(f"projection {proj.name!r}: {type(proj.plasticity).__name__} plasticity "
                                 f"cannot act on a {type(proj.synapse).__name__} synapse")
        if self.output not in shapes or self.output == self.input.name:
            raise ValueError(f"network {self.name!r}: output {self.output!r} is not a population")
        if int(self.timesteps) < 1:
            raise ValueError(f"network {self.name!r}: timesteps must be >= 1, got {self.timesteps}")

    # -- lookups ---------------------------------------------------------------------------
    @property
    def is_fixed_point(self) -> bool:
        return all(isinstance(p.neuron, FIXED_NEURONS) for p in self.populations)

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def projection(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(name)

    def shape_of(self, name: str) -> tuple:
        return self.input.shape if name == self.input.name else self.population(name).shape

    def size_of(self, name: str) -> int:
        return self.input.size if name == self.input.name else self.population(name).size

    def incoming(self, name: str) -> tuple:
        return tuple(p for p in self.projections if p.target == name)

    def outgoing(self, name: str) -> tuple:
        return tuple(p for p in self.projections if p.source == name)

    def without_plasticity(self) -> "Network":
        """The same network with every learning rule removed (weights fixed as they are)."""
        return self.replace(projections=[Projection(p.name, p.source, p.target, p.synapse) for p in self.projections])

    def with_weights(self, weights: Dict[str, object]) -> "Network":
        """The same network with the synapses of the named projections replaced (rules kept)."""
        return self.replace(projections=[Projection(p.name, p.source, p.target, weights[p.name], p.plasticity)
                                         if p.name in weights else p for p in self.projections])

    def with_encoding(self, encoding: Encoding) -> "Network":
        """The same network fed by ``encoding`` (e.g. a rate code played faster)."""
        return self.replace(input=Input(self.input.name, self.input.size, encoding, self.input.shape))

    def replace(self, **changes) -> "Network":
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw.update(changes)
        return Network(**kw)

    # -- structure -------------------------------------------------------------------------
    def depths(self) -> Dict[str, int]:
        """Shortest distance in projections from the input to each reachable population (input: 0).
        With Lava's one-step synaptic delay it is also the first step an input spike can reach it."""
        dist, frontier = {self.input.name: 0}, [self.input.name]
        while frontier:
            nxt = []
            for name in frontier:
                for proj in self.outgoing(name):
                    if proj.target not in dist:
                        dist[proj.target] = dist[name] + 1
                        nxt.append(proj.target)
            frontier = nxt
        return dist

    def unreachable(self) -> tuple:
        """Populations no path from the input reaches."""
        d = self.depths()
        return tuple(p.name for p in self.populations if p.name not in d)

    def recurrent_projections(self) -> tuple:
        """Projections that do not lead strictly deeper (lateral, backward, self-connections): the
        edges that close a loop or that reach a population no shorter path reaches first."""
        d = self.depths()
        return tuple(p for p in self.projections
                     if p.source in d and p.target in d and d[p.target] <= d[p.source])

    @property
    def is_feedforward(self) -> bool:
        """No loops: the graph is acyclic (skip connections allowed)."""
        graph = {name: [p.target for p in self.outgoing(name)] for name in [self.input.name] +
                 [p.name for p in self.populations]}
        state: Dict[str, int] = {}

        def visit(n) -> bool:
            state[n] = 1
            for m in graph[n]:
                if state.get(m) == 1 or (m not in state and not visit(m)):
                    return False
            state[n] = 2
            return True

        return all(visit(n) for n in graph if n not in state)

    @property
    def is_layered(self) -> bool:
        """Every population reachable and every projection from depth ``d`` to ``d + 1``: each sample
        can run as its own window, layer after layer (the batched schedule)."""
        d = self.depths()
        return (not self.unreachable() and all(self.incoming(p.name) for p in self.populations)
                and all(d[p.target] == d[p.source] + 1 for p in self.projections))

    @property
    def is_plastic(self) -> bool:
        return any(p.plasticity is not None for p in self.projections)

    def layering_problem(self) -> Optional[str]:
        """Why the network is not layered (``None`` when it is): names the populations involved."""
        bad = self.unreachable()
        if bad:
            return f"populations {', '.join(bad)} are unreachable from the input"
        rec = self.recurrent_projections()
        if rec:
            return f"projections {', '.join(p.name for p in rec)} are recurrent"
        d = self.depths()
        for p in self.projections:
            if d[p.target] != d[p.source] + 1:
                return (f"population {p.target!r}: inputs from different depths (projection {p.name!r} "
                        "skips a layer); Lava's one-step synaptic delay would misalign them")
        return None

    def execution_order(self) -> list:
        """Populations in layer order (by depth, then declaration) when layered, else declaration order."""
        if not self.is_layered:
            return list(self.populations)
        d = self.depths()
        index = {p.name: i for i, p in enumerate(self.populations)}
        return sorted(self.populations, key=lambda p: (d[p.name], index[p.name]))
