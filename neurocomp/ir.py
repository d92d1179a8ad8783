"""The neurocomp intermediate representation: a spiking network as plain data.

No torch, Lava or Brian2 objects live here, only numpy arrays and frozen dataclasses, so every
pipeline stage (front ends, quantiser, targets, energy) can be built and tested alone.

A :class:`Network` is an input layer, populations of neurons and projections between them. The same
node set serves two numeric worlds:

* float: :class:`LIF` populations and :class:`Dense` projections, in the units of a discrete-time LIF
  with Lava's float semantics (``u = u*(1-du) + a``, ``v = v*(1-dv) + u + bias``, spike on
  ``v > vth``, reset ``v = 0``);
* Loihi fixed point: :class:`LoihiLIF` and :class:`LoihiDense`, integers exactly as Lava's bit-accurate
  process models take them.

Timing is Lava's: a projection delivers the spikes its source emitted at step ``t`` to its target at
step ``t+1`` (Lava's ``Dense`` buffers one step), so a feed-forward chain of ``L`` projections
delays the output by ``L`` steps. Each sample occupies ``timesteps`` steps per population, the window
of a population at depth ``d`` opening ``d`` steps after the input's (see ``backends/sim.py``,
``population_depths``).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Union

import numpy as np

IR_VERSION = 1


def _frozen_array(a, dtype) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.setflags(write=False)
    return arr


# --------------------------------------------------------------------------------------- neurons
@dataclass(frozen=True)
class LIF:
    """Float current-based LIF, one step = one ``dt``.

    ``du``/``dv`` are the fractions of current/voltage lost per step (0 = no decay, 1 = no memory);
    ``vth`` the threshold, ``bias`` a constant input per neuron (float, same units as v).
    """

    size: int
    du: float
    dv: float
    vth: float
    bias: np.ndarray = None  # type: ignore[assignment]

    def __post_init__(self):
        b = np.zeros(self.size) if self.bias is None else self.bias
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), (self.size,))
        object.__setattr__(self, "bias", _frozen_array(b, np.float64))


@dataclass(frozen=True)
class LoihiLIF:
    """Loihi fixed-point LIF as Lava's ``PyLifModelBitAcc`` runs it.

    ``du``/``dv``: 12-bit decays (0..4095); ``vth``: 17-bit threshold mantissa compared as
    ``v > vth << 6``; ``bias_mant`` 13-bit signed mantissa per neuron, ``bias_exp`` 3-bit exponent.
    """

    size: int
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray = None  # type: ignore[assignment]
    bias_exp: int = 0

    def __post_init__(self):
        b = np.zeros(self.size, dtype=np.int64) if self.bias_mant is None else self.bias_mant
        b = np.broadcast_to(np.asarray(b, dtype=np.int64), (self.size,))
        object.__setattr__(self, "bias_mant", _frozen_array(b, np.int64))
        for name in ("du", "dv", "vth", "bias_exp"):
            object.__setattr__(self, name, int(getattr(self, name)))


# ----------------------------------------------------------------------------------- synapses
@dataclass(frozen=True)
class Dense:
    """Float all-to-all weights, shape ``[n_post, n_pre]`` (torch ``nn.Linear`` layout)."""

    weight: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "weight", _frozen_array(self.weight, np.float64))

    @property
    def shape(self):
        return self.weight.shape


@dataclass(frozen=True)
class LoihiDense:
    """Fixed-point weights as Lava's ``Dense`` takes them.

    ``weight`` holds 8-bit integer mantissas ``[n_post, n_pre]``; Lava keeps the top
    ``num_weight_bits`` of them and scales the accumulated activation by ``2**weight_exp``.
    ``sign_mode``: 1 mixed, 2 excitatory, 3 inhibitory (Lava's ``SignMode``).
    """

    weight: np.ndarray
    num_weight_bits: int = 8
    weight_exp: int = 0
    sign_mode: int = 1

    def __post_init__(self):
        object.__setattr__(self, "weight", _frozen_array(self.weight, np.int64))
        for name in ("num_weight_bits", "weight_exp", "sign_mode"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def shape(self):
        return self.weight.shape


# -------------------------------------------------------------------------------- plasticity
@dataclass(frozen=True)
class STDP:
    """Float pair-based trace STDP as Brian2 writes it, in the projection's weight units; times in steps.

    * pre spike:  ``apre += Apre``;   ``w = clip(w + apost + pre_const, wmin, wmax)``
    * post spike: ``apost += Apost``; ``w = clip(w + apre - xtar, wmin, wmax)``
    * between spikes ``apre``/``apost`` decay by ``exp(-1/taupre)``/``exp(-1/taupost)`` per step.

    ``Apost < 0`` makes post-before-pre depress. ``xtar`` is Diehl & Cook's (2015) target pre-trace:
    a constant depression at every post spike, so synapses from inputs that were silent before the
    spike weaken while those from inputs that fired strengthen (0 = classic pair STDP).
    ``pre_const`` is a constant change at every pre spike. Inhibitory plastic weights have
    ``wmin < 0 = wmax``: from a tonically firing source, ``xtar > 0`` (more inhibition per post spike)
    and ``pre_const > 0`` (recovery per step) make Diehl & Cook's adaptive threshold.
    """

    taupre: float
    taupost: float
    Apre: float
    Apost: float
    wmax: float
    wmin: float = 0.0
    xtar: float = 0.0
    pre_const: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, float(getattr(self, f.name)))


@dataclass(frozen=True)
class SupervisedDepression:
    """Float third-factor depression for output neurons that fire when they should not.

    * pre spike: ``apre += Apre`` (decays with ``taupre`` steps);
    * post spike while the neuron's teacher signal is on (it is not the label's neuron):
      ``w = clip(w - apre, wmin, wmax)``.

    The teacher signal is given at run time per step and neuron (1 = should be silent).
    """

    taupre: float
    Apre: float
    wmax: float
    wmin: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, float(getattr(self, f.name)))


LEARNING_DEPENDENCIES = ("x0", "y0")
LEARNING_FACTORS = ("x0", "y0", "x1", "y1", "y2")


@dataclass(frozen=True)
class LoihiLearning:
    """A learning rule as Lava's ``LearningDense`` runs it in fixed point
    (``LearningConnectionModelBitApproximate``), one learning epoch per step.

    ``terms``: products ``(dependency, factors, mantissa, exponent)``; each epoch
    ``dw = sum(mantissa * 2**exponent * dependency * prod(factors))`` in weight units, with
    ``dependency`` ``x0`` (pre spiked) or ``y0`` (post spiked), ``factors`` a tuple from ``x0``/``y0``
    (the other side spiked this step, 1 bit), ``x1`` (pre trace), ``y1`` (post trace), ``y2`` (the
    run-time third factor), ``mantissa`` in -8..7 and
    ``exponent`` in -7..8 (Lava's scaling-factor ranges). Traces are 7-bit (0..127): they jump by an
    integer ``*_impulse`` at each spike and decay with time constant ``*_tau`` steps, stochastically
    rounded with Lava's seeded generators (``rng_seed``). ``third_factor`` selects Lava's
    ``Loihi3FLearningRule``: ``y2`` then comes from an input port each step (a teacher signal).
    """

    terms: tuple
    x1_impulse: int = 0
    x1_tau: int = 0
    y1_impulse: int = 0
    y1_tau: int = 0
    third_factor: bool = False
    rng_seed: int = 0

    def __post_init__(self):
        terms = tuple((str(dep), tuple(str(f) for f in factors), int(mant), int(exp))
                      for dep, factors, mant, exp in self.terms)
        for dep, factors, mant, exp in terms:
            if dep not in LEARNING_DEPENDENCIES or not set(factors) <= set(LEARNING_FACTORS):
                raise ValueError(f"learning term {dep}*{'*'.join(factors)}: dependency must be one of "
                                 f"{LEARNING_DEPENDENCIES}, factors from {LEARNING_FACTORS}")
            if not (-8 <= mant <= 7 and -7 <= exp <= 8):
                raise ValueError(f"learning term scale {mant}*2^{exp}: mantissa must be in -8..7, exponent in -7..8")
        object.__setattr__(self, "terms", terms)
        for name in ("x1_impulse", "x1_tau", "y1_impulse", "y1_tau", "rng_seed"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "third_factor", bool(self.third_factor))
        for name in ("x1_impulse", "y1_impulse"):
            if not 0 <= getattr(self, name) <= 127:
                raise ValueError(f"{name}={getattr(self, name)}: traces are 7-bit, impulses must be in 0..127")
        for name in ("x1_tau", "y1_tau"):
            if not 0 <= getattr(self, name) <= 255:
                raise ValueError(f"{name}={getattr(self, name)}: must be in 0..255 steps (8 bits)")

    def dw_string(self) -> str:
        """The rule in Lava's string syntax, e.g. ``(3) * 2 ^ -4 * y0 * x1 + (-2) * 2 ^ -5 * x0 * y1``."""
        parts = [" * ".join([f"({mant}) * 2 ^ {exp}", dep, *factors]) for dep, factors, mant, exp in self.terms]
        return " + ".join(parts) if parts else "0"


Plasticity = Union[STDP, SupervisedDepression, LoihiLearning]


Neuron = Union[LIF, LoihiLIF]
Synapse = Union[Dense, LoihiDense]


# ------------------------------------------------------------------------------------ encoders
@dataclass(frozen=True)
class RateEncoding:
    """Bernoulli rate code: at every step a pixel in [0, 1] spikes with probability ``x * max_rate``."""

    max_rate: float = 1.0
    kind: str = "rate"


@dataclass(frozen=True)
class LatencyEncoding:
    """Time-to-first-spike: one spike per input at step ``round((1 - x) * (timesteps - 1))``;
    inputs at or below ``threshold`` never spike."""

    threshold: float = 0.0
    kind: str = "latency"


Encoding = Union[RateEncoding, LatencyEncoding]


# ---------------------------------------------------------------------------------- structure
@dataclass(frozen=True)
class Input:
    name: str
    size: int
    encoding: Encoding = field(default_factory=RateEncoding)


@dataclass(frozen=True)
class Population:
    name: str
    neuron: Neuron

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
        sizes = {self.input.name: self.input.size, **{p.name: p.size for p in self.populations}}
        for proj in self.projections:
            for end in (proj.source, proj.target):
                if end not in sizes:
                    raise ValueError(f"projection {proj.name!r}: unknown population {end!r}")
            if proj.target == self.input.name:
                raise ValueError(f"projection {proj.name!r}: cannot target the input layer")
            want = (sizes[proj.target], sizes[proj.source])
            if tuple(proj.synapse.shape) != want:
                raise ValueError(
                    f"projection {proj.name!r}: weight shape {tuple(proj.synapse.shape)}, "
                    f"expected {want} = (|{proj.target}|, |{proj.source}|)")
            if proj.plasticity is not None and (
                    isinstance(proj.plasticity, LoihiLearning) != isinstance(proj.synapse, LoihiDense)):
                raise ValueError(f"projection {proj.name!r}: {type(proj.plasticity).__name__} plasticity "
                                 f"cannot act on a {type(proj.synapse).__name__} synapse")
        if self.output not in sizes or self.output == self.input.name:
            raise ValueError(f"network {self.name!r}: output {self.output!r} is not a population")

    # -- queries ---------------------------------------------------------------------------
    @property
    def is_fixed_point(self) -> bool:
        return all(isinstance(p.neuron, LoihiLIF) for p in self.populations)

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(name)

    def incoming(self, name: str) -> tuple:
        return tuple(p for p in self.projections if p.target == name)

    def replace(self, **changes) -> "Network":
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw.update(changes)
        return Network(**kw)


# ------------------------------------------------------------------------------- persistence
_NODE_TYPES = {cls.__name__: cls for cls in (LIF, LoihiLIF, Dense, LoihiDense, RateEncoding, LatencyEncoding,
                                              STDP, SupervisedDepression, LoihiLearning)}


def _node_to_json(node, arrays: dict, prefix: str) -> dict:
    out = {"type": type(node).__name__}
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, np.ndarray):
            key = f"{prefix}/{f.name}"
            arrays[key] = value
            out[f.name] = {"array": key}
        else:
            out[f.name] = value
    return out


def _node_from_json(d: dict, arrays) -> object:
    cls = _NODE_TYPES[d["type"]]
    kw = {}
    for k, v in d.items():
        if k == "type":
            continue
        kw[k] = np.asarray(arrays[v["array"]]) if isinstance(v, dict) and "array" in v else v
    return cls(**kw)


def save_network(net: Network, path) -> None:
    """Write ``net`` to one ``.npz`` file (structure as JSON inside it) — atomically."""
    arrays: dict = {}
    doc = {
        "ir_version": IR_VERSION,
        "name": net.name,
        "timesteps": net.timesteps,
        "output": net.output,
        "input": {"name": net.input.name, "size": net.input.size,
                  "encoding": _node_to_json(net.input.encoding, arrays, "input")},
        "populations": [{"name": p.name, "neuron": _node_to_json(p.neuron, arrays, f"pop/{p.name}")}
                        for p in net.populations],
        "projections": [{"name": p.name, "source": p.source, "target": p.target,
                         "synapse": _node_to_json(p.synapse, arrays, f"proj/{p.name}"),
                         **({"plasticity": _node_to_json(p.plasticity, arrays, f"plast/{p.name}")}
                            if p.plasticity is not None else {})}
                        for p in net.projections],
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, __network__=np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8), **arrays)
    from neurocomp.io import atomic_write_bytes
    atomic_write_bytes(Path(path), buf.getvalue())


def load_network(path) -> Network:
    with np.load(Path(path), allow_pickle=False) as z:
        doc = json.loads(bytes(z["__network__"]).decode())
        if doc.get("ir_version") != IR_VERSION:
            raise ValueError(f"{path}: IR version {doc.get('ir_version')}, this neurocomp reads {IR_VERSION}")
        arrays = {k: z[k] for k in z.files}
    inp = doc["input"]
    return Network(
        name=doc["name"],
        input=Input(inp["name"], inp["size"], _node_from_json(inp["encoding"], arrays)),
        populations=[Population(p["name"], _node_from_json(p["neuron"], arrays)) for p in doc["populations"]],
        projections=[Projection(p["name"], p["source"], p["target"], _node_from_json(p["synapse"], arrays),
                                _node_from_json(p["plasticity"], arrays) if p.get("plasticity") else None)
                     for p in doc["projections"]],
        output=doc["output"],
        timesteps=doc["timesteps"],
    )
