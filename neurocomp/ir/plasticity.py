"""Plasticity: learning rules a projection may carry.

Float rules (:class:`STDP`, :class:`SupervisedDepression`) are written the way Brian2 scripts write
them, in the projection's float weight units; :class:`LoihiLearning` is a rule in the form Lava's
``LearningDense`` runs (sum of products of traces and spikes, fixed-point scales, 7-bit traces).
The learning-rule pass (``neurocomp.passes.quantize_rules``) turns the former into the latter.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Union


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

    Weight dependence (excitatory ``[0, wmax]`` weights), per term: ``Apre_bound``, ``xtar_bound``,
    ``Apost_bound``, ``pre_const_bound`` multiply that term by ``(wmax - w) / wmax`` (``"soft_max"``: a
    soft bound at ``wmax``) or ``w / wmax`` (``"soft_zero"``: a change proportional to the weight, e.g.
    multiplicative depression; the term's value is then the change at ``w = wmax``); ``"hard"`` (default)
    is the additive term, bounded only by the clip.

    ``pre_trace_cap`` / ``post_trace_cap``: a saturating trace (Brian2 ``apre = clip(apre + Apre, 0,
    cap * Apre)``) holds at most ``cap`` increments; 0: unbounded. Loihi's 7-bit traces saturate at 127,
    so a cap fixes the trace impulse at ``127 / cap``.
    """

    taupre: float
    taupost: float
    Apre: float
    Apost: float
    wmax: float
    wmin: float = 0.0
    xtar: float = 0.0
    pre_const: float = 0.0
    Apre_bound: str = "hard"
    xtar_bound: str = "hard"
    Apost_bound: str = "hard"
    pre_const_bound: str = "hard"
    pre_trace_cap: float = 0.0
    post_trace_cap: float = 0.0

    def __post_init__(self):
        for f in fields(self):
            if f.name.endswith("_cap") and getattr(self, f.name) and not 1.0 <= getattr(self, f.name) <= 127.0:
                raise ValueError(f"STDP.{f.name}={getattr(self, f.name)!r}: a saturating trace holds 1 to 127 "
                                 "increments (Loihi's 7-bit trace), or 0 for unbounded")
            if f.name.endswith("_bound"):
                if getattr(self, f.name) not in WEIGHT_BOUNDS:
                    raise ValueError(f"STDP.{f.name}={getattr(self, f.name)!r}: allowed {WEIGHT_BOUNDS}")
                continue
            object.__setattr__(self, f.name, float(getattr(self, f.name)))
        if self.weight_dependent and not (self.wmin == 0 < self.wmax):
            raise ValueError("STDP soft bounds need excitatory weights in [0, wmax]")


    @property
    def weight_dependent(self) -> bool:
        return any(getattr(self, f"{t}_bound") != "hard" for t in ("Apre", "xtar", "Apost", "pre_const"))


WEIGHT_BOUNDS = ("hard", "soft_max", "soft_zero")


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


# third-factor rules multiply two 7-bit factors: Lava shifts the product right by 3 bits
# (7 + 7 + 4 - 15), so a teacher value of 8 makes "x1 * y2" exactly "x1". A teacher given as 0/1
# flags (which neurons should be silent) reaches y2 as flag * THIRD_FACTOR_LEVEL.
THIRD_FACTOR_LEVEL = 8

LEARNING_DEPENDENCIES = ("x0", "y0")
LEARNING_FACTORS = ("x0", "y0", "x1", "y1", "y2", "w")
# a weight factor may carry a constant: "w-256" is Lava's "(w - 256)"; Loihi's synaptic-variable factor is
# "w + 2C" with an 8-bit C, so the constant is even and |constant| <= 510
W_CONST_MAX = 510


def factor_parts(factor: str) -> tuple:
    """``"w-256"`` -> ``("w", -256)``; ``"x1"`` -> ``("x1", 0)``."""
    if factor.startswith("w") and len(factor) > 1:
        return "w", int(factor[1:])
    return factor, 0


def _valid_factor(factor: str) -> bool:
    try:
        name, const = factor_parts(factor)
    except ValueError:
        return False
    if name not in LEARNING_FACTORS:
        return False
    return const == 0 or (name == "w" and const % 2 == 0 and abs(const) <= W_CONST_MAX)


@dataclass(frozen=True)
class LoihiLearning:
    """A learning rule as Lava's ``LearningDense`` runs it in fixed point
    (``LearningConnectionModelBitApproximate``), one learning epoch per step.

    ``terms``: products ``(dependency, factors, mantissa, exponent)``; each epoch
    ``dw = sum(mantissa * 2**exponent * dependency * prod(factors))`` in weight units, with
    ``dependency`` ``x0`` (pre spiked) or ``y0`` (post spiked), ``factors`` a tuple from ``x0``/``y0``
    (the other side spiked this step, 1 bit), ``x1`` (pre trace), ``y1`` (post trace), ``y2`` (the
    run-time third factor), ``mantissa`` in -8..7 and
    ``exponent`` in -7..8 (Lava's scaling-factor ranges); ``w`` (the synapse's own weight, 9-bit signed, a
    weight-dependent rule), optionally with an even constant ``"w-256"`` = ``(w - 256)``. Traces are 7-bit (0..127): they jump by an
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
            if dep not in LEARNING_DEPENDENCIES or not all(_valid_factor(f) for f in factors):
                raise ValueError(f"learning term {dep}*{'*'.join(factors)}: dependency must be one of "
                                 f"{LEARNING_DEPENDENCIES}, factors from {LEARNING_FACTORS} (w with an even "
                                 f"constant of at most {W_CONST_MAX}, e.g. 'w-256')")
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
        def lava(f):
            name, const = factor_parts(f)
            return f"({name} {'-' if const < 0 else '+'} {abs(const)})" if const else name
        parts = [" * ".join([f"({mant}) * 2 ^ {exp}", dep, *map(lava, factors)])
                 for dep, factors, mant, exp in self.terms]
        return " + ".join(parts) if parts else "0"


Plasticity = Union[STDP, SupervisedDepression, LoihiLearning]
FLOAT_RULES = (STDP, SupervisedDepression)
