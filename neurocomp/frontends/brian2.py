"""Brian2 front end: the real Brian2 objects a user's script builds -> float IR.

``source: {kind: brian2, script: net.py, function: build}``: ``build(**kwargs)`` returns a
``brian2.Network``, a list/tuple/dict of Brian2 objects or one object. Everything is read from the
objects themselves, through Brian2's own API: ``group.user_equations``, ``group.events`` /
``group.event_codes`` (threshold, reset), ``group._refractory``, ``group.method_choice``,
``group.resolve_all`` (constants, units and parameters, with the script's module globals as the run
namespace, as ``Network.run`` would use), ``synapses.event_driven``, each pathway's ``code`` and
``delay``, ``synapses.i[:]``, ``synapses.j[:]`` and the synaptic variables' values.

What maps, and how (one Brian2 step ``dt`` = one Loihi step):

* **input**: exactly one ``SpikeGeneratorGroup`` or ``PoissonGroup`` (constant or ``TimedArray``
  rates). The model.yaml's ``input`` section decides how data become spikes.
* **LIF**, voltage-only ``dv/dt = (v_rest - v)/tau_m + b`` or current-based with
  ``dI/dt = -I/tau_s`` driving ``v`` linearly; threshold ``v > v_th``; reset ``v = v_reset``.
  With Diehl & Cook's adaptive threshold (``v > v_th + theta``, reset ``v = v_reset; theta +=
  theta_plus``, ``theta`` a parameter or ``dtheta/dt = -theta/tau_theta``) or a refractory period longer
  than one ``dt`` the group becomes Lava's **ATRLIF** (:func:`_atrlif`: ``v`` measured from the midpoint of
  reset and threshold, the reset done by ATRLIF's refractory state; what is approximate is reported). Lava's LIF leaks to 0 and resets to 0, so ``v`` is measured from
  ``v_reset`` (``vth = v_th - v_reset``) and the leak towards the resting potential ``v_inf`` becomes a
  constant bias ``(1 - alpha_m) * (v_inf - v_reset)`` per step. Decays: ``dv = 1 - alpha_m``,
  ``du = 1 - alpha_s`` (``du = 1`` for voltage-only), with ``alpha = exp(-dt/tau)`` (method exact)
  or ``1 - dt/tau`` (euler). Voltages are in mV when ``v`` is a voltage.
* **Synapses** with ``on_pre`` ``v_post += expr`` / ``I_post += expr`` (``-=`` too), zero delay:
  a dense weight ``[n_post, n_pre]`` per object. Brian2 applies a spike to ``v``/``I`` after the
  threshold of its step and integrates it over the next; Lava's Dense delivers it one step later
  into ``u``. Both line up exactly when the weight is scaled by ``alpha_m`` (a ``v`` jump) or by
  ``k * G`` (a current jump; ``k`` = coefficient of ``I`` in ``dv/dt``, ``G`` = the integral of the
  decaying current over one step), derived in :func:`_synaptic_gain`.
* **plasticity**: pair-based trace STDP written the Brian2 way — traces ``apre``/``apost``
  (event- or clock-driven, ``d/dt = -a/tau``), ``apre += Apre`` on_pre, ``apost += Apost`` on_post,
  ``w = clip(w + apost, wmin, wmax)`` on_pre, ``w = clip(w + apre [- xtar], wmin, wmax)`` on_post ->
  :class:`neurocomp.ir.STDP`, each update optionally weight-dependent (soft bounds: ``w + (apre - xtar)
  * (wmax - w)/wmax``, ``w + apost * w/wmax``, :func:`_weight_dependence`); ``w = clip(w - apre * flag_post, wmin, wmax)`` on_post with a
  postsynaptic teacher variable -> :class:`neurocomp.ir.SupervisedDepression`. Brian2 runs on_pre
  before on_post in a step (its default order; other orders are refused), while a Loihi learning
  epoch updates the traces first; the quantiser's coincidence term makes up the difference.

One difference remains by construction: Brian2 resets a neuron *after* its synapses act, so a
``v`` jump arriving in a step where the target fires is lost, while Lava delivers it one step later,
after the reset. Voltage-only targets firing at high rates therefore fire somewhat more on Loihi;
current-based targets are unaffected (the reset leaves the current alone in both).

Everything else — Izhikevich, Hodgkin-Huxley, conductance-based synapses, other adaptive thresholds,
delays, summed variables, subgroups — is refused with one line naming the object and the construct.

Why one module of ~700 lines: it is one importer — Brian2's objects read through Brian2's own API, each
construct (neurons, synapse pathways, plasticity statements) mapped or refused with a one-line reason;
the parts share the symbolic helpers that parse Brian2's equations, and splitting them would scatter one
mapping over several files.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from neurocomp.errors import FrontendError
from neurocomp.frontends.user_code import call_user, import_user_file
from neurocomp.ir import (ATRLIF, LIF, STDP, Dense, Input, Network, Population, Projection,
                          RateEncoding, SupervisedDepression)

# ------------------------------------------------------------------------------------- loading


def _b2():
    """brian2, with the numpy code generation target (no C compiler, no compile wait)."""
    import brian2
    brian2.prefs.codegen.target = "numpy"
    from brian2.utils.logger import BrianLogger
    BrianLogger.suppress_name("unused_brian_object")   # our own temporary objects, not the user's
    return brian2


def load_script(path: Path):
    """Import the user's script as a module (its globals are Brian2's run namespace)."""
    return import_user_file(path)


def _collect(result, where: str) -> list:
    b2 = _b2()
    if isinstance(result, b2.Network):
        return sorted(result.objects, key=lambda o: o.name)
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (list, tuple)):
        out = []
        for item in result:
            out.extend(_collect(item, where) if isinstance(item, (list, tuple, dict, b2.Network)) else [item])
        return out
    return [result]


# ---------------------------------------------------------------------------------- sympy helpers
def _sym(code: str, where: str):
    from brian2.parsing.sympytools import str_to_sympy
    try:
        return str_to_sympy(code)
    except Exception as e:  # brian2 raises SyntaxError/ValueError/TypeError for bad code
        raise FrontendError(f"{where}: cannot parse {code!r}: {e}") from None


def _resolve(owner, name: str, run_ns: dict, where: str):
    try:
        return owner.resolve_all([name], run_ns)[name]
    except Exception as e:  # KeyError from brian2's namespace lookup
        raise FrontendError(f"{where}: {name!r} is not defined in the object's namespace or the script's "
                            f"module globals ({type(e).__name__}); define it at module level or pass "
                            "namespace=") from None


def _constants(expr, owner, run_ns: dict, keep: set, where: str, per_neuron: Optional[dict] = None):
    """Substitute every identifier of ``expr`` except ``keep`` by its SI value.

    Constants and units become floats; a parameter array becomes a float if uniform, otherwise it
    is kept as a symbol and its values go into ``per_neuron`` (when given) or it is an error.
    """
    import sympy
    from brian2.core.functions import Function as B2Function
    from brian2.core.variables import ArrayVariable, Constant, Subexpression

    subs = {}
    for sym in sorted(expr.free_symbols, key=str):
        name = str(sym)
        if name in keep:
            continue
        if name in ("t", "t_in_timesteps", "i", "j", "N"):
            raise FrontendError(f"{where}: depends on {name!r} (time- or index-dependent input such as a "
                                "TimedArray); Loihi's LIF takes only constant parameters")
        var = _resolve(owner, name, run_ns, where)
        if isinstance(var, Constant):
            subs[sym] = float(var.get_value())
        elif isinstance(var, Subexpression):
            raise FrontendError(f"{where}: uses subexpression {name!r} = {var.expr!r} of another object; "
                                "not supported")
        elif isinstance(var, ArrayVariable):
            values = np.asarray(var.get_value(), dtype=np.float64).ravel()
            if values.size and np.allclose(values, values[0], rtol=1e-12, atol=0):
                subs[sym] = float(values[0])
            elif per_neuron is not None:
                per_neuron[name] = values
            else:
                raise FrontendError(f"{where}: parameter {name!r} differs between neurons; only the constant "
                                    "drive may vary per neuron")
        elif isinstance(var, B2Function):
            raise FrontendError(f"{where}: {name!r} is a function used as a value")
        else:
            raise FrontendError(f"{where}: {name!r} ({type(var).__name__}) is not supported")
    for f in expr.atoms(sympy.Function):
        fname = type(f).__name__
        if fname not in ("exp", "log", "sqrt", "clip", "Abs", "sign", "int_"):
            raise FrontendError(f"{where}: calls {fname}() (e.g. a TimedArray); not a constant-parameter LIF")
    return sympy.sympify(expr.xreplace(subs))


def _S(name: str):
    """A symbol as Brian2's ``str_to_sympy`` makes it (real): plain ``Symbol(name)`` would not match."""
    import sympy
    return sympy.Symbol(name, real=True)


def _is_number(x) -> bool:
    import sympy
    return isinstance(x, (int, float)) or (isinstance(x, sympy.Expr) and x.is_number)


def _split_statements(code: str) -> list:
    out = []
    for line in code.replace(";", "\n").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


_STATEMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(\+=|-=|\*=|/=|=)\s*(.+)$")


# ------------------------------------------------------------------------------------ neurons
@dataclass
class NeuronMap:
    """How one NeuronGroup maps to the float IR (SI units, the report shows them)."""

    name: str
    size: int
    model: str             # "voltage-only LIF" / "current-based LIF"
    method: str            # "exact" / "euler"
    v: str                 # the threshold variable
    current: Optional[str]
    tau_m: float
    tau_s: Optional[float]
    k: float               # d(dv/dt)/dI  (0 for voltage-only)
    v_th: float
    v_reset: float
    v_inf: np.ndarray      # resting potential incl. constant drive, per neuron
    alpha_m: float
    alpha_s: float
    gain_current: float    # G: what one unit of I (held after a jump) adds to v over one step, / k
    unit_scale: float      # SI -> IR units (1e3: volt -> mV)
    unit: str
    neuron: LIF = None
    adaptive: Optional[dict] = None   # ATRLIF: threshold variable, theta0, origin, decays (see _atrlif)

    def report(self, dt: float) -> dict:
        return {"population": self.name, "neurons": self.size, "model": self.model, "method": self.method,
                "dt_ms": dt * 1e3, "tau_m_ms": self.tau_m * 1e3,
                "tau_syn_ms": None if self.tau_s is None else self.tau_s * 1e3,
                f"v_th_{self.unit}": self.v_th * self.unit_scale,
                f"v_reset_{self.unit}": self.v_reset * self.unit_scale,
                f"v_rest_{self.unit}": float(np.mean(self.v_inf)) * self.unit_scale,
                "float_dv": self.neuron.dv, "float_du": getattr(self.neuron, "du", getattr(self.neuron, "di", None)),
                "float_vth": getattr(self.neuron, "vth", getattr(self.neuron, "theta0", None)),
                "float_bias_mean": float(np.mean(self.neuron.bias)), "unit": self.unit,
                **({"atrlif": self.adaptive} if self.adaptive else {})}


def _neuron_map(group, run_ns: dict, dt: float) -> NeuronMap:
    import sympy
    from brian2.equations.equations import DIFFERENTIAL_EQUATION, SUBEXPRESSION

    g = f"NeuronGroup {group.name!r}"
    eqs = group.user_equations
    diff = [eq for eq in eqs.ordered if eq.type == DIFFERENTIAL_EQUATION]
    subexpr = {eq.varname: eq for eq in eqs.ordered if eq.type == SUBEXPRESSION}
    states = [eq.varname for eq in diff]
    if not diff:
        raise FrontendError(f"{g}: has no differential equation; a LIF needs dv/dt = ...")
    thr_code = group.events.get("spike")
    if thr_code is None:
        raise FrontendError(f"{g}: has no threshold; a LIF needs threshold='v > v_th'")
    extra = sorted(set(group.events) - {"spike"})
    if extra:
        raise FrontendError(f"{g}: custom events {extra} are not supported")

    def expand(expr, where):
        for _ in range(20):
            names = {str(s) for s in expr.free_symbols} & set(subexpr)
            if not names:
                return expr
            expr = expr.xreplace({_S(n): _sym(str(subexpr[n].expr), where) for n in names})
        raise FrontendError(f"{where}: subexpressions nest too deep")

    per_neuron: dict = {}
    exprs = {}
    state_syms = [_S(s) for s in states]
    for eq in diff:
        where = f"{g}: equation 'd{eq.varname}/dt = {eq.expr}'"
        e = expand(_sym(str(eq.expr), where), where)
        e = _constants(e, group, run_ns, set(states), where, per_neuron)
        for a in state_syms:
            if any(b in sympy.diff(e, a).free_symbols for b in state_syms) or \
                    sympy.diff(e, a).free_symbols - set(state_syms):
                raise FrontendError(f"{where} is not leaky integrate-and-fire (nonlinear in "
                                    f"{', '.join(states)}); only LIF (voltage-only or current-based) maps to Loihi")
            if sympy.diff(e, a).has(sympy.Function):
                raise FrontendError(f"{where} is not leaky integrate-and-fire (nonlinear); only LIF maps to Loihi")
        exprs[eq.varname] = e
    where_thr = f"{g}: threshold {thr_code!r}"
    thr = _sym(thr_code, where_thr)
    if not isinstance(thr, (sympy.StrictGreaterThan, sympy.GreaterThan)) or not isinstance(thr.lhs, sympy.Symbol) \
            or str(thr.lhs) not in states:
        raise FrontendError(f"{where_thr}: must be 'v > constant' (or 'v > v_th + theta') on a state variable")
    v = str(thr.lhs)
    reset_code = group.event_codes.get("spike", "") or ""
    v_reset_code, theta, theta_plus_code, v_first = None, None, None, False
    for stmt in _split_statements(reset_code):
        m = _STATEMENT.match(stmt)
        if m and m.group(1) == v and m.group(2) == "=" and v_reset_code is None:
            v_reset_code, v_first = m.group(3), theta is None
        elif m and m.group(1) != v and m.group(2) == "+=" and theta is None:
            theta, theta_plus_code = m.group(1), m.group(3)
        else:
            v_reset_code = None
            break
    if v_reset_code is None:
        raise FrontendError(f"{g}: reset {reset_code!r} must be '{v} = v_reset', optionally with one adaptive "
                            "threshold increment 'theta += theta_plus' (Loihi's LIF resets only v, to a constant; "
                            "its ATRLIF also raises its threshold)")
    v_reset = _constants(_sym(v_reset_code, f"{g}: reset"), group, run_ns, {theta} if theta else set(),
                         f"{g}: reset")
    follows = False       # 'v = v_reset - theta': the reset sinks with the adapted threshold (ATRLIF's own)
    if theta is not None and _S(theta) in v_reset.free_symbols:
        slope = sympy.diff(v_reset, _S(theta))
        if slope != -1 or not v_first:
            raise FrontendError(f"{g}: reset '{v} = {v_reset_code}' may depend on {theta!r} only as "
                                f"'{v} = v_reset - {theta}', before '{theta} += ...' (a reset that follows the "
                                "adapted threshold, as Loihi's ATRLIF does)")
        v_reset, follows = v_reset + _S(theta), True
    if not _is_number(v_reset):
        raise FrontendError(f"{g}: reset value {v_reset_code!r} must be a constant")
    keep = set(states) | ({theta} if theta else set())
    v_th = _constants(thr.rhs, group, run_ns, keep, where_thr)
    moving = sorted(str(x) for x in v_th.free_symbols if str(x) in keep)
    if moving and moving != [theta]:
        raise FrontendError(f"{where_thr}: adaptive threshold (depends on {moving[0]!r}, which the reset does not "
                            f"increment); Loihi's ATRLIF maps 'v > v_th + theta' with reset '{v} = v_reset; "
                            "theta += theta_plus'")
    adaptive = None
    if theta is not None:
        adaptive = _adaptive_threshold(group, g, where_thr, theta, theta_plus_code, v_th, states, run_ns, dt)
        adaptive["reset_follows_threshold"] = follows
        v_th = v_th - _S(theta)
    if not _is_number(v_th):
        raise FrontendError(f"{where_thr}: threshold must be a constant (or a constant plus one adaptive theta)")
    lif_states = [x for x in states if x != theta]
    if len(lif_states) > 2:
        raise FrontendError(f"{g}: {len(lif_states)} state equations ({', '.join(lif_states)}); a LIF has v and at "
                            "most one synaptic current, plus an adaptive threshold (Hodgkin-Huxley, adaptation "
                            "currents and the like do not map to Loihi)")
    for x in lif_states:
        if theta in {str(y) for y in exprs[x].free_symbols}:
            raise FrontendError(f"{g}: 'd{x}/dt' depends on the threshold variable {theta!r}; it may only "
                                "enter the threshold")
    refr = group._refractory
    if isinstance(refr, str):
        raise FrontendError(f"{g}: refractory={refr!r} (a condition) is not supported; give a duration")
    refr_s = float(refr) if refr not in (None, False) else 0.0
    refractory_steps = int(round(refr_s / dt)) if refr_s > dt * (1 + 1e-9) else 0
    vs = _S(v)
    ev = exprs[v]
    a_vv = sympy.diff(ev, vs)
    if not _is_number(a_vv) or float(a_vv) >= 0:
        raise FrontendError(f"{g}: 'd{v}/dt' does not leak (coefficient of {v} is {a_vv}); a LIF needs "
                            f"d{v}/dt = -({v} - v_rest)/tau + ...")
    tau_m = -1.0 / float(a_vv)
    current, tau_s, k = None, None, 0.0
    others = [s for s in lif_states if s != v]
    zero = {_S(s): 0 for s in states}
    if others:
        current = others[0]
        cs = _S(current)
        where_i = f"{g}: equation 'd{current}/dt = {exprs[current]}'"
        k_expr = sympy.diff(ev, cs)
        if not _is_number(k_expr) or float(k_expr) == 0:
            raise FrontendError(f"{g}: {current} does not drive {v} linearly; only current-based LIF maps")
        k = float(k_expr)
        ei = exprs[current]
        if sympy.diff(ei, vs) != 0:
            raise FrontendError(f"{where_i}: {current} depends on {v} (adaptation/conductance); not a LIF current")
        a_ii = sympy.diff(ei, cs)
        if not _is_number(a_ii) or float(a_ii) >= 0:
            raise FrontendError(f"{where_i}: the synaptic current must decay, d{current}/dt = -{current}/tau_syn")
        if ei.xreplace(zero) != 0:
            raise FrontendError(f"{where_i}: a constant drive of the current is not supported (put it in d{v}/dt)")
        tau_s = -1.0 / float(a_ii)
    b_v = ev.xreplace(zero)
    if b_v.free_symbols:
        fn = sympy.lambdify(sorted(b_v.free_symbols, key=str), b_v, "numpy")
        b_vals = np.broadcast_to(fn(*[per_neuron[str(s)] for s in sorted(b_v.free_symbols, key=str)]),
                                 (len(group),)).astype(np.float64)
    else:
        b_vals = np.full(len(group), float(b_v))
    v_inf = b_vals * tau_m
    method = group.method_choice if isinstance(group.method_choice, str) else "exact"
    if method == "euler":
        alpha_m = 1.0 - dt / tau_m
        alpha_s = 1.0 - dt / tau_s if tau_s else 0.0
        gain = dt
    else:
        method = "exact"
        alpha_m = math.exp(-dt / tau_m)
        alpha_s = math.exp(-dt / tau_s) if tau_s else 0.0
        gain = _synaptic_gain(dt, tau_m, tau_s) if tau_s else 0.0
    dim = group.variables[v].dim
    from brian2 import volt
    is_volt = dim == volt.dim
    scale = 1e3 if is_volt else 1.0
    unit = "mV" if is_volt else str(dim) if str(dim) != "1" else "1"
    vth = (float(v_th) - float(v_reset)) * scale
    if not vth > 0:
        raise FrontendError(f"{g}: threshold {float(v_th) * scale:g} must lie above the reset "
                            f"{float(v_reset) * scale:g} ({unit})")
    kind = "current-based LIF" if current else "voltage-only LIF"
    du = (1.0 - alpha_s) if current else 1.0
    if adaptive is None and not refractory_steps:
        bias = (1.0 - alpha_m) * (v_inf - float(v_reset)) * scale
        neuron = LIF(len(group), du=du, dv=1.0 - alpha_m, vth=vth, bias=bias)
    else:
        neuron, adaptive = _atrlif(group, adaptive, vth, float(v_reset) * scale, v_inf * scale, alpha_m, du,
                                   refractory_steps, scale, method, dt)
        kind = f"{kind} -> ATRLIF ({', '.join(adaptive['maps'])})"
    return NeuronMap(group.name, len(group), kind, method, v,
                     current, tau_m, tau_s, k, float(v_th), float(v_reset), v_inf, alpha_m, alpha_s, gain,
                     scale, unit, neuron, adaptive)


def _adaptive_threshold(group, g: str, where_thr: str, theta: str, plus_code: str, rhs, states, run_ns,
                        dt: float) -> dict:
    """Diehl & Cook's adaptive threshold: ``v > v_th + theta``, ``theta += theta_plus`` at each spike,
    ``theta`` a parameter (no decay) or ``dtheta/dt = -theta/tau_theta``, starting at 0."""
    import sympy
    from brian2.core.variables import ArrayVariable

    ts = _S(theta)
    if sympy.diff(rhs, ts) != 1 or ts in sympy.diff(rhs, ts).free_symbols:
        raise FrontendError(f"{where_thr}: the adaptive threshold must enter as 'v > v_th + {theta}'")
    var = group.variables.get(theta)
    if not isinstance(var, ArrayVariable):
        raise FrontendError(f"{g}: reset increments {theta!r}, which is not a variable of the group")
    if np.any(np.asarray(var.get_value(), dtype=np.float64) != 0):
        raise FrontendError(f"{g}: {theta!r} starts at {np.asarray(var.get_value()).ravel()[0]!r}, not 0; put "
                            "a constant offset into the threshold ('v > v_th + theta' with theta from 0)")
    where = f"{g}: reset statement '{theta} += {plus_code}'"
    plus = _constants(_sym(plus_code, where), group, run_ns, set(), where)
    if not _is_number(plus) or float(plus) < 0:
        raise FrontendError(f"{where}: the increment must be a constant >= 0")
    tau = None
    if theta in states:
        eq = group.user_equations[theta]
        e = _constants(_sym(str(eq.expr), where_thr), group, run_ns, {theta}, f"{g}: 'd{theta}/dt'")
        a = sympy.diff(e, ts)
        if not _is_number(a) or float(a) >= 0 or sympy.expand(e - a * ts) != 0:
            raise FrontendError(f"{g}: 'd{theta}/dt = {eq.expr}' must decay to 0, d{theta}/dt = -{theta}/tau_theta "
                                "(or make it a parameter that only the reset changes)")
        tau = -1.0 / float(a)
    return {"variable": theta, "theta_plus": float(plus), "tau_theta": tau}


def _refractory_decay(alpha_m: float, n_ref: int) -> tuple:
    """The refractory state's decay that makes an ATRLIF fire like a LIF with a hard reset and an absolute
    refractory period of ``n_ref`` steps: least squares on log firing rates over constant drives (rates
    from 0.2 % to half the refractory ceiling), both simulated here in their discrete forms (threshold gap
    1; the ATRLIF measured from the midpoint between reset and threshold). Returns ``(dr, rms log error)``."""
    steps = 3000
    binf = np.geomspace(1.01, 40.0, 32)
    c = binf * (1 - alpha_m)
    b, cnt, lif = np.zeros_like(c), np.zeros(len(c), dtype=np.int64), np.zeros_like(c)
    for _ in range(steps):                      # Brian2: v held at the reset while refractory
        ref = cnt > 0
        b = np.where(ref, 0.0, alpha_m * b + c)
        s = ~ref & (b > 1)
        b = np.where(s, 0.0, b)
        cnt = np.where(s, n_ref - 1, np.maximum(cnt - 1, 0))
        lif += s
    lif /= steps
    f = np.geomspace(0.02, 1.0, 60)
    dr = (1 - alpha_m) * f
    v, r, atr = (np.zeros((len(f), len(c))) for _ in range(3))
    for _ in range(steps):                      # ATRLIF: w = v - r, theta0 = 1/2, r += 2 theta0
        v = alpha_m * v + c - (1 - alpha_m) * 0.5
        r = (1 - dr)[:, None] * r
        s = v - r >= 0.5
        r = r + s
        atr += s
    atr /= steps
    keep = (lif > 0.002) & (lif < 0.5 / max(n_ref, 1))
    if not keep.any():
        return float(1 - alpha_m), float("nan")
    err = np.mean(np.log(np.maximum(atr[:, keep], 1e-4) / lif[keep]) ** 2, axis=1)
    k = int(np.argmin(err))
    return float(dr[k]), float(np.sqrt(err[k]))


def _atrlif(group, adaptive: Optional[dict], gap: float, v_reset: float, v_inf: np.ndarray, alpha_m: float,
            du: float, n_ref: int, scale: float, method: str, dt: float):
    """A LIF with an adaptive threshold and/or a refractory period as Lava's ATRLIF (float IR units).

    ATRLIF never resets ``v``: a spike adds twice the threshold to its refractory state ``r`` and it fires
    on ``v - r >= theta``. With ``v`` measured from the midpoint between Brian2's reset and threshold
    (``theta0`` = half the gap; the leak to rest becomes the bias) and ``r`` decaying as ``v`` does,
    ``w = v - r`` is exactly a LIF whose spike takes ``w`` from the threshold down to the reset (by
    subtraction: an overshoot carries over). Two approximations remain, both reported: an adapted
    threshold ``theta0 + a`` also deepens that reset by ``a`` (Brian2 resets to ``v_reset`` whatever
    ``theta``), and a refractory period longer than a step becomes a slower decay of ``r``
    (:func:`_refractory_decay`, fitted on firing rates)."""
    theta0 = gap / 2.0
    origin = v_reset + theta0
    bias = (1.0 - alpha_m) * (v_inf - origin)
    dv = 1.0 - alpha_m
    dr, rate_err = (_refractory_decay(alpha_m, n_ref) if n_ref else (dv, 0.0))
    info = {"maps": [], "theta0": theta0, "origin": origin, "dr": dr, "refractory_steps": n_ref}
    step, dtheta = 0.0, 0.0
    if adaptive is not None:
        info["maps"].append(f"adaptive threshold {adaptive['variable']!r}")
        step = adaptive["theta_plus"] * scale
        tau = adaptive["tau_theta"]
        if tau is not None:
            dtheta = dt / tau if method == "euler" else 1.0 - math.exp(-dt / tau)
        info.update(adaptive, theta_step=step, dtheta=dtheta)
        if adaptive.get("reset_follows_threshold"):
            info["maps"].append(f"reset 'v_reset - {adaptive['variable']}' (ATRLIF's own)")
        else:
            info["note"] = ("an adapted threshold theta0 + a also resets v - r to a below the reset (Brian2: to "
                            f"the reset; write the reset as 'v = v_reset - {adaptive['variable']}' for ATRLIF's)")
    if n_ref:
        info["maps"].append(f"refractory {n_ref} steps -> refractory decay {dr:.4g} (firing rates within "
                            f"{100 * (math.exp(rate_err) - 1):.0f} % rms)")
        info["refractory_rate_rms_log_error"] = rate_err
    neuron = ATRLIF(group.N, di=du, dv=dv, dtheta=dtheta, dr=dr, theta0=theta0, theta_step=step, bias=bias)
    return neuron, info


def _synaptic_gain(dt: float, tau_m: float, tau_s: float) -> float:
    """``G = int_0^dt exp(-s/tau_s) exp(-(dt-s)/tau_m) ds``: with ``dv/dt = -v/tau_m + k*I`` and
    ``dI/dt = -I/tau_s`` integrated exactly, a current ``I0`` present at the start of a step adds
    ``k * G * I0`` to ``v`` by its end. In Lava the same step adds ``u``, so ``u = k*G*I`` and a jump
    ``I += w`` is a Dense weight ``k*G*w``, decaying by ``alpha_s`` per step in both."""
    if abs(tau_s - tau_m) < 1e-12 * tau_m:
        return dt * math.exp(-dt / tau_m)
    return (math.exp(-dt / tau_s) - math.exp(-dt / tau_m)) / (1.0 / tau_m - 1.0 / tau_s)


# ------------------------------------------------------------------------------------ synapses
@dataclass
class SynapseMap:
    name: str
    source: str
    target: str
    target_var: str
    effect: np.ndarray            # IR weight [n_post, n_pre]
    gain: float                   # IR weight per unit of the Brian2 weight variable
    weight_var: Optional[str] = None
    propagation: List[str] = field(default_factory=list)   # the on_pre statements that act on the target
    plasticity: object = None
    rule_rows: dict = field(default_factory=dict)

    def report(self) -> dict:
        row = {"projection": self.name, "source": self.source, "target": self.target,
               "target_var": self.target_var, "synapses": int(np.count_nonzero(self.effect)),
               "ir_weight_per_brian2_unit": self.gain or None, "delay_steps": 0,
               "plasticity": type(self.plasticity).__name__ if self.plasticity is not None else None}
        row.update(self.rule_rows)
        return row


def _linear_in(expr, sym, where: str):
    """``expr = a*sym + b`` with number ``a``; returns ``(a, b)``."""
    import sympy
    a = sympy.diff(expr, sym)
    if sym in a.free_symbols or (a.free_symbols and not _is_number(a)):
        raise FrontendError(f"{where}: must be linear in {sym}")
    return a, sympy.expand(expr - a * sym)


def _synapse_map(syn, pops: Dict[str, NeuronMap], input_name: str, input_size: int, run_ns: dict,
                 dt: float) -> SynapseMap:
    import sympy
    from brian2.equations.equations import DIFFERENTIAL_EQUATION, PARAMETER, SUBEXPRESSION
    from brian2.groups.subgroup import Subgroup

    s = f"Synapses {syn.name!r}"
    for end in (syn.source, syn.target):
        if isinstance(end, Subgroup):
            raise FrontendError(f"{s}: connects the subgroup {end.name!r}; connect whole groups")
    src, tgt = syn.source.name, syn.target.name
    if tgt not in pops:
        raise FrontendError(f"{s}: target {tgt!r} is not a LIF NeuronGroup of this network")
    if src not in pops and src != input_name:
        raise FrontendError(f"{s}: source {src!r} is neither the input nor a NeuronGroup of this network")
    if syn.summed_updaters:
        raise FrontendError(f"{s}: (summed) variables {sorted(syn.summed_updaters)} are continuous coupling; "
                            "only spike-triggered on_pre updates map to Loihi")
    tmap = pops[tgt]
    n_pre = input_size if src == input_name else pops[src].size
    # synaptic state: parameters (weights) and traces (event- or clock-driven linear decay)
    params, traces = [], {}
    eq_sets = [syn.equations] + ([syn.event_driven] if syn.event_driven is not None else [])
    for eqs in eq_sets:
        for eq in eqs.ordered:
            if eq.type == PARAMETER:
                if eq.varname not in ("lastupdate",):
                    params.append(eq.varname)
            elif eq.type == DIFFERENTIAL_EQUATION:
                where = f"{s}: equation 'd{eq.varname}/dt = {eq.expr}'"
                e = _constants(_sym(str(eq.expr), where), syn, run_ns, {eq.varname}, where)
                a, b = _linear_in(e, _S(eq.varname), where)
                if not _is_number(a) or float(a) >= 0 or b != 0:
                    raise FrontendError(f"{where}: a synaptic trace must decay, d{eq.varname}/dt = -{eq.varname}/tau")
                traces[eq.varname] = -1.0 / float(a)
            elif eq.type == SUBEXPRESSION:
                raise FrontendError(f"{s}: subexpression {eq.varname!r} in the synapse model is not supported")
    post_vars = set(syn.target.variables.keys())

    def classify(name: str, prepost: str) -> tuple:
        if name.endswith("_post"):
            return "post", name[:-5]
        if name.endswith("_pre"):
            return "pre", name[:-4]
        if name in params or name in traces:
            return "syn", name
        if name in post_vars:
            return "post", name
        raise FrontendError(f"{s}: on_{prepost} assigns unknown variable {name!r}")

    i = np.asarray(syn.i[:], dtype=np.int64)
    j = np.asarray(syn.j[:], dtype=np.int64)
    param_values = {p: np.asarray(getattr(syn, p)[:], dtype=np.float64) for p in params}
    propagation, increments, updates, caps = [], {}, {}, {}
    target_var = None
    effect_per_syn = np.zeros(len(i))
    weight_var, weight_gain = None, None
    for pathway in syn._pathways:
        pp = pathway.prepost
        if pathway.event != "spike":
            raise FrontendError(f"{s}: pathway on event {pathway.event!r} is not supported")
        delays = np.asarray(pathway.variables["delay"].get_value(), dtype=np.float64)
        if delays.size and np.abs(delays).max() > 1e-12:
            raise FrontendError(f"{s}: on_{pp} has delays up to {delays.max() * 1e3:g} ms; synaptic delays are "
                                "not supported (Lava's Dense delivers after exactly one step)")
        for stmt in _split_statements(pathway.code):
            where = f"{s}: on_{pp} statement {stmt!r}"
            m = _STATEMENT.match(stmt)
            if not m:
                raise FrontendError(f"{where}: not an assignment")
            lhs, op, rhs = m.groups()
            kind, var = classify(lhs, pp)
            if kind == "post" and pp == "pre":
                if op not in ("+=", "-="):
                    raise FrontendError(f"{where}: only '+=' / '-=' on the target is supported")
                if target_var is not None and var != target_var:
                    raise FrontendError(f"{where}: a projection can drive one target variable, already {target_var!r}")
                if var == tmap.v:
                    if tmap.current is not None:
                        raise FrontendError(f"{where}: jumps of {var!r} in a current-based group do not map "
                                            f"(Loihi sends every input through the current); target {tmap.current!r}")
                    gain = tmap.alpha_m
                elif var == tmap.current:
                    gain = tmap.k * tmap.gain_current
                else:
                    raise FrontendError(f"{where}: {var!r} is not the voltage or synaptic current of {tgt!r}")
                target_var = var
                e = _constants(_sym(rhs, where), syn, run_ns, set(params), where)
                sign = -1.0 if op == "-=" else 1.0
                names = sorted({str(x) for x in e.free_symbols})
                fn = sympy.lambdify([_S(n) for n in names], e, "numpy")
                values = np.broadcast_to(np.asarray(fn(*[param_values[n] for n in names]), dtype=np.float64),
                                         (len(i),))
                effect_per_syn = effect_per_syn + sign * gain * tmap.unit_scale * values
                if len(names) == 1:
                    a, b = _linear_in(e, _S(names[0]), where)
                    if b == 0 and _is_number(a):
                        weight_var, weight_gain = names[0], sign * gain * tmap.unit_scale * float(a)
                propagation.append(stmt)
            elif kind == "syn" and var in traces:
                if var in increments:
                    raise FrontendError(f"{where}: trace {var!r} is incremented in both pathways")
                if op == "=":      # a saturating trace: var = clip(var + A, 0, A_max)
                    increments[var] = (pp, _saturating_increment(var, rhs, syn, run_ns, where, caps))
                    continue
                if op not in ("+=", "-="):
                    raise FrontendError(f"{where}: traces must be incremented ('+=' / '-='), got {op!r}")
                e = _constants(_sym(rhs, where), syn, run_ns, set(), where)
                if not _is_number(e):
                    raise FrontendError(f"{where}: a trace increment must be a constant")
                increments[var] = (pp, (-1.0 if op == "-=" else 1.0) * float(e))
            elif kind == "syn" and var in params:
                if pp in updates:
                    raise FrontendError(f"{where}: one weight update per pathway is supported")
                updates[pp] = (var, op, rhs, where)
            else:
                raise FrontendError(f"{where}: on_{pp} may not change {kind} variable {var!r}")
    if target_var is None:
        raise FrontendError(f"{s}: on_pre never acts on the target (needs e.g. 'v_post += w')")
    if len(propagation) > 1:
        raise FrontendError(f"{s}: several on_pre statements act on the target: {propagation}")
    counts = np.zeros((tmap.size, n_pre), dtype=np.int64)
    np.add.at(counts, (j, i), 1)
    effect = np.zeros((tmap.size, n_pre))
    np.add.at(effect, (j, i), effect_per_syn)
    out = SynapseMap(syn.name, src, tgt, target_var, effect, weight_gain or 0.0, weight_var, propagation)
    if updates:
        out.plasticity, out.rule_rows = _plasticity(s, updates, increments, traces, weight_var, weight_gain,
                                                    syn, run_ns, dt, counts, caps)
    return out


def _saturating_increment(var: str, rhs: str, syn, run_ns, where: str, caps: dict) -> float:
    """``var = clip(var + A, 0, A_max)``: the increment ``A`` (> 0); ``caps[var] = A_max / A``, the
    increments the trace holds (Loihi's traces saturate at 127, so the quantiser sizes the impulse to
    put that ceiling where the script's is)."""
    import sympy
    e = _sym(rhs, where)
    usage = (f"{where}: a trace is incremented ('{var} += A') or saturates ('{var} = clip({var} + A, 0, "
             "A_max)', 0 < A < A_max)")
    if not (isinstance(e, sympy.Function) and type(e).__name__ == "clip"):
        raise FrontendError(usage)
    inner, lo, hi = (_constants(x, syn, run_ns, {var}, where) for x in e.args)
    a, inc = _linear_in(inner, _S(var), where)
    if a != 1 or not (_is_number(inc) and _is_number(lo) and _is_number(hi)) or float(lo) != 0 \
            or not 0 < float(inc) < float(hi):
        raise FrontendError(usage)
    caps[var] = float(hi) / float(inc)
    return float(inc)


def _plasticity(s: str, updates: dict, increments: dict, traces: dict, weight_var, gain, syn, run_ns, dt, counts,
                caps: dict):
    """Recognise pair-based trace STDP / supervised depression in the weight updates (``caps``: saturating
    traces, increments held at most)."""
    import sympy

    if weight_var is None or not gain:
        raise FrontendError(f"{s}: plastic weights must act on the target linearly, e.g. 'v_post += w'")
    if np.any(counts != 1):
        raise FrontendError(f"{s}: plastic Synapses must connect every pair exactly once (connect()); Lava's "
                            "LearningDense learns every entry of its matrix")
    pre_traces = [t for t, (pp, _) in increments.items() if pp == "pre"]
    post_traces = [t for t, (pp, _) in increments.items() if pp == "post"]
    unused = set(traces) - set(increments)
    if unused:
        raise FrontendError(f"{s}: traces {sorted(unused)} are never incremented")
    if len(pre_traces) > 1 or len(post_traces) > 1:
        raise FrontendError(f"{s}: one pre- and one post-synaptic trace are supported")
    parsed = {}
    for pp, (var, op, rhs, where) in updates.items():
        if var != weight_var:
            raise FrontendError(f"{where}: updates {var!r}, but the target is driven by {weight_var!r}")
        e = _sym(rhs, where)
        if op != "=" or not (isinstance(e, sympy.Function) and type(e).__name__ == "clip"):
            raise FrontendError(f"{where}: weight updates must be bounded: {var} = clip({var} + trace, wmin, wmax)")
        inner, lo, hi = e.args
        post_flags = {str(x) for x in inner.free_symbols if str(x).endswith("_post")}
        inner = _constants(inner, syn, run_ns, {weight_var, *traces, *post_flags}, where)
        lo = _constants(lo, syn, run_ns, set(), where)
        hi = _constants(hi, syn, run_ns, set(), where)
        if not (_is_number(lo) and _is_number(hi)) or float(hi) <= float(lo):
            raise FrontendError(f"{where}: clip bounds must be constants with wmin < wmax")
        own = (pre_traces if pp == "post" else post_traces)   # the trace a pathway's update may use
        rest, bound = _weight_dependence(inner, _S(weight_var), float(hi), where, own[0] if own else None)
        parsed[pp] = (rest, float(lo), float(hi), where, bound)
    bounds = {(lo, hi) for _, lo, hi, _, _ in parsed.values()}
    if len(bounds) > 1:
        raise FrontendError(f"{s}: on_pre and on_post clip to different bounds {sorted(bounds)}")
    wmin, wmax = bounds.pop()
    if wmin != 0:
        raise FrontendError(f"{s}: weights must be clipped to [0, wmax] (8-bit magnitudes; use '-=' on the "
                            "target for inhibition)")
    rows = {"rule_wmax": wmax, "rule_gain": gain}
    # Brian2's default runs on_pre before on_post within a step; the quantised rule corrects Loihi's
    # trace-first epoch for exactly that order (quantize_learning: the coincidence term)
    if "pre" in parsed and "post" in parsed and syn.pre.when == syn.post.when and syn.pre.order >= syn.post.order:
        raise FrontendError(f"{s}: on_post runs before on_pre (pathway order {syn.post.order} <= {syn.pre.order}); "
                            "neurocomp maps Brian2's default order (on_pre first)")
    # supervised depression: post update w - c * apre * flag_post
    if "post" in parsed and any(str(x).endswith("_post") for x in parsed["post"][0].free_symbols):
        rest, _, _, where, bound = parsed["post"]
        if bound != ("hard", "hard"):
            raise FrontendError(f"{where}: supervised depression takes no weight dependence (soft bounds)")
        flags = [x for x in rest.free_symbols if str(x).endswith("_post")]
        if len(flags) != 1 or not pre_traces or post_traces or "pre" in parsed or gain < 0:
            raise FrontendError(f"{where}: supervised depression is w = clip(w - apre * flag_post, 0, wmax) with "
                                "one pre trace and no other weight update")
        x = _S(pre_traces[0])
        coef = sympy.diff(rest, x)
        coef = sympy.diff(coef, flags[0])
        if not _is_number(coef) or float(coef) >= 0 or sympy.expand(rest - coef * x * flags[0]) != 0:
            raise FrontendError(f"{where}: expected w - c * {x} * {flags[0]} with c > 0")
        if caps:
            raise FrontendError(f"{where}: supervised depression takes an unbounded pre trace ('{pre_traces[0]} += A')")
        a_x = increments[pre_traces[0]][1]
        rule = SupervisedDepression(taupre=traces[pre_traces[0]] / dt, Apre=-float(coef) * a_x * gain,
                                    wmax=wmax * gain, wmin=0.0)
        rows.update({"rule": "supervised depression", "teacher": str(flags[0])[:-5],
                     "taupre_ms": traces[pre_traces[0]] * 1e3})
        return rule, rows
    x_pre = pre_traces[0] if pre_traces else None
    y_post = post_traces[0] if post_traces else None

    def split(pp, trace, other):
        """``rest = c * trace + const`` (trace optional) -> ``(c * impulse, const)``."""
        rest, _, _, where, _ = parsed[pp]
        if other and _S(other) in rest.free_symbols:
            raise FrontendError(f"{where}: on_{pp} may use the {'post' if pp == 'pre' else 'pre'}synaptic "
                                f"trace only, not {other!r}")
        c, const = _linear_in(rest, _S(trace), where) if trace else (0, rest)
        if const.free_symbols or not _is_number(const) or not _is_number(c):
            raise FrontendError(f"{where}: expected {weight_var} + c*{trace or 'trace'} + constant")
        return (float(c) * increments[trace][1] if trace else 0.0), float(const) + 0.0

    apre, xtar_neg = split("post", x_pre, y_post) if "post" in parsed else (0.0, 0.0)
    apost, pre_const = split("pre", y_post, x_pre) if "pre" in parsed else (0.0, 0.0)
    xtar = -xtar_neg + 0.0
    taupre = traces[x_pre] / dt if x_pre else 1.0
    taupost = traces[y_post] / dt if y_post else 1.0
    lo_ir, hi_ir = sorted((0.0, wmax * gain))
    (apre_b, xtar_b), (apost_b, const_b) = (parsed[pp][4] if pp in parsed else ("hard", "hard")
                                            for pp in ("post", "pre"))
    bounds = dict(Apre_bound=apre_b, xtar_bound=xtar_b, Apost_bound=apost_b, pre_const_bound=const_b)
    if set(bounds.values()) != {"hard"} and gain < 0:
        raise FrontendError(f"{s}: weight-dependent rules on inhibitory plastic weights are not supported")
    rule = STDP(taupre=taupre, taupost=taupost, Apre=apre * gain, Apost=apost * gain, wmax=hi_ir, wmin=lo_ir,
                xtar=xtar * gain, pre_const=pre_const * gain, **bounds,
                pre_trace_cap=caps.get(x_pre, 0.0), post_trace_cap=caps.get(y_post, 0.0))
    if rule.weight_dependent:
        rows.update(bounds)
    for name, trace in (("pre_trace_cap", x_pre), ("post_trace_cap", y_post)):
        if trace in caps:
            rows[name] = caps[trace]
    rows.update({"rule": "pair STDP" if (x_pre or y_post) else "spike-count plasticity",
                 "taupre_ms": taupre * dt * 1e3, "taupost_ms": taupost * dt * 1e3,
                 "Apre": apre, "Apost": apost, "xtar": xtar, "pre_const": pre_const, "inhibitory": gain < 0})
    return rule, rows


def _weight_dependence(inner, w, wmax: float, where: str, trace: Optional[str]) -> tuple:
    """``inner`` (what a clip bounds) as ``w + tr * A * f_A(w) + C * f_C(w)`` (``tr`` the pathway's trace):
    ``(tr * A + C, (trace bound, constant bound))``, each ``f`` 1 (``"hard"``), ``(wmax - w) / wmax``
    (``"soft_max"``) or ``w / wmax`` (``"soft_zero"``) — the weight dependences Loihi's sum-of-products rules
    express with the weight as a factor of a term."""
    import sympy
    a = sympy.expand(sympy.diff(inner, w))
    if w in a.free_symbols:
        raise FrontendError(f"{where}: must be linear in {w}")
    rest0 = sympy.expand(inner.xreplace({w: 0}))     # linear in w: the update at w = 0
    r1 = sympy.expand(a - 1)
    if r1 == 0:
        return rest0, ("hard", "hard")
    tr = _S(trace) if trace else None
    for e in (rest0, r1):
        if e.free_symbols - ({tr} if tr is not None else set()):
            raise FrontendError(f"{where}: a weight-dependent update may use the pathway's trace and constants only")

    def parts(e):                      # (coefficient of the trace, constant)
        if tr is None:
            return 0.0, float(e)
        c = sympy.diff(e, tr)
        if tr in c.free_symbols:
            raise FrontendError(f"{where}: must be linear in {trace}")
        return float(c), float(e.xreplace({tr: 0}))

    (t0, k0), (t1, k1) = parts(rest0), parts(r1)

    def bound(x0, x1, what):           # x0 + x1 * w as value * f(w)
        scale = max(abs(x0), abs(x1 * wmax), 1e-300)
        if x1 == 0 or abs(x1 * wmax) <= 1e-9 * scale:
            return x0, "hard"
        if abs(x0) <= 1e-9 * scale:
            return x1 * wmax, "soft_zero"
        if abs(x0 + x1 * wmax) <= 1e-9 * scale:
            return x0, "soft_max"
        raise FrontendError(f"{where}: the {what} term must be additive, c*(wmax - {w})/wmax or c*{w}/wmax "
                            "(weight dependence Loihi's rule terms express)")

    tv, tb = bound(t0, t1, f"{trace or 'trace'}")
    kv, kb = bound(k0, k1, "constant")
    return (tv * tr if tr is not None else 0) + kv, (tb, kb)


# ------------------------------------------------------------------------------------- the model
class Brian2Model:
    """A user's Brian2 network, read into the float IR (it is run by
    :mod:`neurocomp.backends.brian2_reference`).

    ``network``: the float IR; ``neurons``/``synapses``: per-object mapping (``report()``);
    ``script_stream``: ``[steps, n_in]`` spikes when the input is a SpikeGeneratorGroup with spikes.
    """

    def __init__(self, script: Path, function: str = "build", kwargs: Optional[dict] = None,
                 name: str = "brian2", timesteps: int = 1, encoding=None, output: Optional[str] = None):
        b2 = _b2()
        self.script = Path(script)
        self.module = load_script(self.script)
        fn = getattr(self.module, function, None)
        if not callable(fn):
            raise FrontendError(f"source.function: {self.script.name} has no callable {function!r}")
        b2.start_scope()
        result = call_user(fn, kwargs, f"source.function: {self.script.name}:{function}()")
        self.run_ns = {k: v for k, v in vars(self.module).items() if not k.startswith("__")}
        objects = _collect(result, f"{self.script.name}:{function}()")
        self.objects = objects
        inputs, groups, synapses = [], [], []
        monitors = (b2.SpikeMonitor, b2.StateMonitor, b2.PopulationRateMonitor, b2.EventMonitor)
        for obj in objects:
            if isinstance(obj, (b2.SpikeGeneratorGroup, b2.PoissonGroup)):
                inputs.append(obj)
            elif isinstance(obj, b2.NeuronGroup):
                groups.append(obj)
            elif isinstance(obj, b2.Synapses):
                synapses.append(obj)
            elif isinstance(obj, monitors):
                continue
            else:
                raise FrontendError(f"{self.script.name}:{function}(): {type(obj).__name__} "
                                    f"{getattr(obj, 'name', obj)!r} is not supported (inputs: SpikeGeneratorGroup, "
                                    "PoissonGroup; neurons: NeuronGroup; connections: Synapses)")
        if len(inputs) != 1:
            raise FrontendError(f"{self.script.name}:{function}(): needs exactly one input group "
                                f"(SpikeGeneratorGroup or PoissonGroup), found {len(inputs)}")
        if not groups:
            raise FrontendError(f"{self.script.name}:{function}(): no NeuronGroup")
        self.input_group = inp = inputs[0]
        dts = {float(o.clock.dt) for o in [inp, *groups, *synapses]}
        if len(dts) != 1:
            raise FrontendError(f"{self.script.name}: objects run with different dt {sorted(dts)}; one dt maps to "
                                "one Loihi step")
        self.dt = dt = dts.pop()
        self.groups = {g.name: g for g in groups}
        self.neurons = {g.name: _neuron_map(g, self.run_ns, dt) for g in groups}
        self.synapse_objects = {s.name: s for s in synapses}
        self.synapses = {s.name: _synapse_map(s, self.neurons, inp.name, len(inp), self.run_ns, dt)
                         for s in synapses}
        self.script_stream = None
        self.input_rate = None
        if isinstance(inp, b2.SpikeGeneratorGroup):
            idx = np.asarray(inp.neuron_index[:], dtype=np.int64)
            times = np.asarray(inp.spike_time[:], dtype=np.float64)
            if idx.size:
                steps = np.rint(times / dt).astype(np.int64)
                stream = np.zeros((int(steps.max()) + 1, len(inp)), dtype=bool)
                stream[steps, idx] = True
                self.script_stream = stream
        else:
            from brian2.core.variables import ArrayVariable
            rates = inp.variables["rates"]
            if isinstance(rates, ArrayVariable):
                self.input_rate = float(np.max(rates.get_value())) * dt
        output = output or self._default_output()
        if output not in self.neurons:
            raise FrontendError(f"source.output: {output!r} is not a NeuronGroup; have {sorted(self.neurons)}")
        if encoding is None:
            encoding = RateEncoding(max_rate=min(1.0, self.input_rate or 1.0))
        pops = [Population(n.name, n.neuron) for n in self.neurons.values()]
        projs = [Projection(m.name, m.source, m.target, Dense(m.effect), m.plasticity)
                 for m in self.synapses.values()]
        self.network = Network(name, Input(inp.name, len(inp), encoding), pops, projs, output, timesteps)

    def _default_output(self) -> str:
        plastic_targets = {m.target for m in self.synapses.values() if m.plasticity is not None}
        if len(plastic_targets) == 1:
            return plastic_targets.pop()
        sources = {m.source for m in self.synapses.values() if m.target != m.source}
        sinks = [n for n in self.neurons if n not in sources]
        if len(sinks) == 1:
            return sinks[0]
        raise FrontendError(f"{self.script.name}: cannot tell the output population among {sorted(self.neurons)}; "
                            "set source.output in model.yaml")

    @property
    def is_plastic(self) -> bool:
        return any(m.plasticity is not None for m in self.synapses.values())

    def report(self) -> dict:
        return {"script": str(self.script), "dt_ms": self.dt * 1e3,
                "input": {"group": self.input_group.name, "kind": type(self.input_group).__name__,
                          "size": len(self.input_group)},
                "neurons": [n.report(self.dt) for n in self.neurons.values()],
                "synapses": [m.report() for m in self.synapses.values()]}


def load_brian2(spec) -> Brian2Model:
    """The spec's Brian2 source as a :class:`Brian2Model` (float IR in ``.network``)."""
    from neurocomp.spec import input_encoding

    src = spec.source
    return Brian2Model(spec.resolve(src.script), src.function, src.kwargs, name=spec.name,
                       timesteps=spec.input.timesteps, encoding=input_encoding(spec),
                       output=getattr(src, "output", None))


def import_network(spec, input_shape: tuple):
    """Front-end entry point (:mod:`neurocomp.frontends`): the script's objects -> float IR."""
    from neurocomp.frontends import Imported
    model = load_brian2(spec)
    return Imported(model.network, details=model.report(), stimulus=model.script_stream)
