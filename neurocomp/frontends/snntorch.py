"""snnTorch front end: a real snnTorch model with its real state_dict -> float IR (LIF + Dense).

What maps
---------
* ``snn.Leaky``    -> LIF ``du = 1``, ``dv = 1 - beta``, ``vth = threshold``;
* ``snn.Synaptic`` -> LIF ``du = 1 - alpha``, ``dv = 1 - beta``, ``vth = threshold``;
* ``snn.RLeaky``   -> as Leaky, plus a recurrent projection from the population to itself: its
  ``recurrent`` ``nn.Linear`` (``all_to_all=True``; its bias is a constant input, the LIF bias) or the
  one-to-one ``V`` (a diagonal matrix);
* ``snn.RSynaptic`` -> refused (see the reset section: snnTorch 1.0.0 cannot run it with a reset
  Loihi has);
* ``nn.Linear`` into a neuron -> a Dense projection (its bias enters v as the LIF bias when the
  current has no memory, ``du = 1``; refused otherwise), several Linear outputs summed into one
  neuron -> several projections; ``nn.Flatten``, ``nn.Dropout``, ``nn.Identity``, flattening
  ``view``/``reshape``/``flatten`` calls -> nothing; a neuron's ``graded_spikes_factor`` scales the
  weights its spikes drive; per-neuron thresholds are folded into each neuron's incoming weights
  and bias (v scales linearly), so the population keeps one ``vth``.

Step order (``snntorch/_neurons/leaky.py``, ``synaptic.py``, ``rleaky.py``, version 1.0.0)
-------------------------------------------------------------------------------------------
snnTorch computes the reset of step ``t`` from the *previous* membrane:
``reset[t] = heaviside(mem[t-1] - threshold)``, i.e. ``reset[t] = spk[t-1]``. Then, with
``reset_mechanism="zero"``:

* Leaky: ``mem = (1 - reset[t]) * mem[t-1]``; ``mem[t] = beta * mem + x[t]``; ``spk[t] = mem[t] > thr``.
  So a neuron that spiked at ``t-1`` keeps ``mem[t-1] > thr`` as its reported state and starts step
  ``t`` from 0: ``mem[t] = x[t]``.
* Lava (``PyLifModelFloat``/``PyLifModelBitAcc``): ``u[t] = u[t-1] (1 - du) + a[t]``;
  ``v[t] = v[t-1] (1 - dv) + u[t] + bias``; ``s[t] = v[t] > vth``; ``v[t] = 0`` where ``s[t]``.
  A neuron that spiked at ``t-1`` holds ``v[t-1] = 0``, so ``v[t] = u[t] + bias``.

With ``du = 1`` (``u[t] = a[t] = x[t]``) both give the same ``v`` at every step where the neuron did
not just spike and the same spikes at every step: snnTorch's delayed reset is Lava's immediate reset
seen one step later, and nothing is shifted. With ``reset_delay=False`` snnTorch zeroes ``mem`` in
the spike's own step (its reported membrane then equals Lava's ``v`` everywhere) and the next
step's delayed reset finds ``mem = 0`` and does nothing more: the same spikes again.

Synaptic and RLeaky compute their zero reset differently: ``mem[t] = (1 - reset[t]) *
(beta * mem[t-1] + syn[t])`` — the whole new membrane, *input included*, is zeroed in the step after a
spike, a one-step refractory period Lava's LIF does not have (``PyLifRefractoryModelFloat`` has no
fixed-point model). With ``reset_delay=False`` the in-step reset already zeroed ``mem``, the delayed
one never fires, and the dynamics are Lava's exactly. So Synaptic/RLeaky map with
``reset_mechanism="zero", reset_delay=False`` and are refused with ``reset_delay=True``.
snnTorch 1.0.0's RSynaptic ignores ``reset_delay=False`` (its in-step reset writes to a local
variable, and fails without an explicit ``spk`` argument), so it always has the refractory step:
refused. ``reset_mechanism="subtract"`` (snnTorch's default: ``mem[t] = beta mem[t-1] + x[t] -
reset[t] * thr``) and ``"none"`` have no Loihi LIF equivalent: refused.

Layer timing: in snnTorch a layer sees the previous layer's spikes of the *same* step; a recurrent
connection carries its spikes of the previous step. Lava delays every projection by one step; the
batched schedule gives each layer its own window starting ``depth`` steps after the input, so a
feed-forward network equals snnTorch step for step. For a recurrent network (stream schedule) every
layer's spikes come ``depth`` steps later than snnTorch's, with the same pattern; the self-connection
of a population is one step in both. Exact for bias-free layers; a biased layer at depth ``d`` of
such a network integrates its bias for ``d`` steps before its first input arrives (in snnTorch from
step 0 with its input), and, with no reset in a stream, through the rest steps between samples.

Tracing
-------
An ``nn.Sequential`` is stepped once per time step (snnTorch's ``init_hidden=True`` style); any other
module is called once on a time-major input ``[T, batch, *input_shape]`` and its ``forward`` is
expected to loop over ``x[step]`` (a module whose ``forward`` makes one step per call is then stepped
like a Sequential). The call is executed, not parsed (Python loops, helper methods, ``init_leaky()``
all run as written), while a tensor subclass (every op on it, indexing included, passes its
``__torch_function__``) and module hooks record where every tensor that
reaches a module came from. What cannot be traced, each refused naming it: control flow on values
computed from the input (``if spk.sum() > 0``), tensor arithmetic other than sums of ``nn.Linear``
outputs and flattening between layers, a membrane (or any non-spike output) feeding a layer, feeding
the whole input (not ``x[step]``) to a layer, connections from another layer's previous step, and
skip connections.

Why one module of ~700 lines: tracing an snnTorch model (stepping it, following every tensor) and
mapping each neuron and layer type are one importer sharing the trace's bookkeeping; the refusals live
beside what they refuse.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from neurocomp.errors import FrontendError
from neurocomp.ir import LIF, Dense, Input, Network, Population, Projection

SUPPORTED = ("snn.Leaky, snn.Synaptic, snn.RLeaky (reset_mechanism='zero'; Synaptic/RLeaky with "
             "reset_delay=False) with nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity")
_TRANSPARENT = (nn.Dropout, nn.Identity)
_LINEAR = (nn.Linear, nn.Conv2d, nn.AvgPool2d)   # weighted layers: chains of them between neurons
_FLATTEN_FUNCS = None  # filled lazily: torch functions that flatten (batch kept)
_SAME_FUNCS = None     # torch functions that return their input's values unchanged
_VALUE_FUNCS = None    # torch functions that turn a tensor into a Python value (control flow)
_ADD_FUNCS = None


def _snn():
    try:
        import snntorch
    except ImportError:
        raise FrontendError("source.kind 'snntorch' needs the snntorch package (pip install snntorch==1.0.0)") from None
    return snntorch


# -- provenance ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Src:
    """Where a tensor came from: the input at a step (``step=None``: the whole input), a module's
    output element at one of its calls, a constant (independent of the input), or an op."""

    kind: str                  # input | spike | state | const | op | linear | sum | module
    module: Optional[str] = None
    step: Optional[int] = None
    detail: str = ""
    terms: tuple = ()          # sum: its terms; linear: (input provenance,)
    shape: tuple = ()          # linear: one sample's output shape
    in_shape: tuple = ()       # linear: one sample's input shape (as the module received it)


@dataclass
class _Call:
    path: str
    module: nn.Module
    step: int
    args: tuple               # provenance of each positional argument (None: not a tensor/None)
    arg_values: tuple


@dataclass
class _Trace:
    calls: List[_Call] = field(default_factory=list)
    problem: Optional[str] = None    # first untraceable thing seen, reported if it matters
    per_step: bool = False


class _Traced(torch.Tensor):
    """A tensor whose origin is followed: every torch op on it comes through ``__torch_function__``
    (indexing included), is computed on plain tensors, and its result is tagged by the recorder."""

    recorder = None   # the active _Recorder while a trace runs

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        with torch._C.DisableTorchFunctionSubclass():
            out = func(*args, **kwargs)
        rec = cls.recorder
        if rec is None or rec.depth or rec.internal:
            return out
        return rec.follow(func, args, kwargs, out)


class _Recorder:
    """Follows tensors through torch ops outside the mapped modules (see module docstring)."""

    def __init__(self, trace: _Trace):
        self.trace, self.depth, self.internal = trace, 0, False

    @staticmethod
    def tag(t, src: _Src):
        if not isinstance(t, torch.Tensor):
            return t
        with torch._C.DisableTorchFunctionSubclass():
            out = t.as_subclass(_Traced)
        out._nc_src = src
        return out

    @staticmethod
    def of(t) -> Optional[_Src]:
        if not isinstance(t, torch.Tensor):
            return None
        return getattr(t, "_nc_src", None) if isinstance(t, _Traced) else _Src("const")

    def follow(self, func, args, kwargs, out):
        from torch.utils._pytree import tree_flatten
        leaves, _ = tree_flatten((args, kwargs))
        tracked = [self.of(a) for a in leaves if isinstance(a, _Traced)]
        tracked = [t for t in tracked if t is not None and t.kind != "const"]
        if not tracked:
            return out
        name = getattr(func, "__qualname__", None) or getattr(func, "__name__", str(func))
        if func in _VALUE_FUNCS:
            if self.trace.problem is None:
                self.trace.problem = (f"forward turns a tensor computed from the input into a Python value "
                                      f"({name}): data-dependent control flow cannot be traced")
            return out
        if not isinstance(out, torch.Tensor):
            return out
        src = args[0] if args else None
        first = self.of(src)
        if func is torch.Tensor.__getitem__ and first is not None and first.kind == "input" and first.step is None:
            idx = args[1]
            if isinstance(idx, int):
                return self.tag(out, _Src("input", step=int(idx)))
            return self.tag(out, _Src("op", detail=f"indexing the input with {idx!r} (expected x[step] on a "
                                                   "time-major [T, batch, ...] input)"))
        if (func is torch.Tensor.__getitem__ and first is not None and first.kind == "linear" and first.terms
                and first.terms[0] is not None and first.terms[0].kind == "input" and first.terms[0].step is None):
            return self.tag(out, _Src("op", detail=f"indexing the output of {first.module!r}, which receives the whole "
                                                   "input (not x[step])"))
        if func in _SAME_FUNCS and first is not None and len(tracked) == 1:
            return self.tag(out, first)
        if func in _FLATTEN_FUNCS and first is not None and len(tracked) == 1:
            if out.ndim >= 1 and src.ndim >= 1 and out.shape[0] == src.shape[0] and out.numel() == src.numel():
                return self.tag(out, first)
            return self.tag(out, _Src("op", detail=f"{name} that does not keep the batch dimension"))
        if func in _ADD_FUNCS and "alpha" not in kwargs and len(args) == 2:
            terms = []
            for a in args:
                s = self.of(a)
                if s is None or s.kind == "const":
                    self.internal = True
                    try:
                        zero = not isinstance(a, torch.Tensor) and a == 0 or (
                            isinstance(a, torch.Tensor) and not bool(torch.count_nonzero(a)))
                    finally:
                        self.internal = False
                    if zero:
                        continue
                    return self.tag(out, _Src("op", detail=f"{name} of a constant"))
                terms.extend(s.terms if s.kind == "sum" else (s,))
            return self.tag(out, _Src("sum", terms=tuple(terms)) if len(terms) != 1 else terms[0])
        return self.tag(out, _Src("op", detail=name))


def _init_func_sets():
    global _FLATTEN_FUNCS, _SAME_FUNCS, _VALUE_FUNCS, _ADD_FUNCS
    if _FLATTEN_FUNCS is None:
        T = torch.Tensor
        _FLATTEN_FUNCS = {torch.flatten, T.flatten, T.view, T.reshape, torch.reshape}
        _SAME_FUNCS = {T.detach, T.clone, T.contiguous, T.to, T.float, T.double, torch.clone, T.cpu,
                       T.requires_grad_, T.type_as}
        _VALUE_FUNCS = {T.__bool__, T.item, T.tolist, T.__int__, T.__float__, T.__index__, T.numpy}
        _ADD_FUNCS = {torch.add, T.add, T.__add__, T.__radd__}


def _neuron_classes():
    snn = _snn()
    return snn.SpikingNeuron, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic)


def _is_leaf(mod) -> bool:
    spiking, _ = _neuron_classes()
    return isinstance(mod, spiking) or not list(mod.children())


def _trace(model: nn.Module, input_shape: tuple, timesteps: int, per_step: bool) -> _Trace:
    """Run the model once (see module docstring) and record every leaf module call."""
    _init_func_sets()
    spiking, _ = _neuron_classes()
    trace = _Trace(per_step=per_step)
    rec = _Recorder(trace)
    counts: Dict[str, int] = {}
    handles = []
    paths = {m: p for p, m in model.named_modules()}
    stack: List[_Call] = []

    def pre(mod, args):
        if rec.depth == 0:
            path = paths[mod] or type(mod).__name__
            k = counts.get(path, 0)
            counts[path] = k + 1
            call = _Call(path, mod, k, tuple(rec.of(a) for a in args), tuple(args))
            trace.calls.append(call)
            stack.append(call)
        rec.depth += 1

    def post(mod, args, out):
        rec.depth -= 1
        if rec.depth:
            return None
        call = stack.pop()
        if isinstance(mod, spiking):
            if isinstance(out, tuple):
                return tuple(rec.tag(t, _Src("spike" if i == 0 else "state", call.path, call.step,
                                             detail="" if i == 0 else f"output {i} (a membrane/current state)"))
                             for i, t in enumerate(out))
            return rec.tag(out, _Src("spike", call.path, call.step))
        if isinstance(mod, _LINEAR):
            return rec.tag(out, _Src("linear", call.path, call.step, terms=(call.args[0] if call.args else None,),
                                     shape=tuple(out.shape[1:]), in_shape=tuple(args[0].shape[1:])))
        if isinstance(mod, (nn.Flatten,) + _TRANSPARENT) and call.args and call.args[0] is not None:
            return rec.tag(out, call.args[0])
        return rec.tag(out, _Src("module", call.path, call.step, detail=type(mod).__name__))

    for mod in model.modules():
        if _is_leaf(mod):
            handles.append(mod.register_forward_pre_hook(pre))
            handles.append(mod.register_forward_hook(post))
    _reset_states(model)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand((timesteps, 2) + tuple(input_shape), generator=gen) < 0.5).float()
    _Traced.recorder = rec
    try:
        with torch.no_grad():
            if per_step:
                for t in range(timesteps):
                    model(rec.tag(x[t].clone(), _Src("input", step=t)))
            else:
                model(rec.tag(x, _Src("input")))
    except FrontendError:
        raise
    except Exception as e:
        how = ("stepped once per time step on [batch, *input_shape]" if per_step
               else "called on a time-major input [T, batch, *input_shape]")
        first = str(e).splitlines()[0] if str(e) else ""
        raise FrontendError(f"snnTorch model: forward failed when {how} = {list(x.shape[1:] if per_step else x.shape)}: "
                            f"{type(e).__name__}: {first}") from None
    finally:
        _Traced.recorder = None
        for h in handles:
            h.remove()
        _reset_states(model)
    return trace


def _reset_states(model):
    spiking, _ = _neuron_classes()
    for m in model.modules():
        if isinstance(m, spiking) and hasattr(m, "reset_mem"):
            m.reset_mem()


# -- neuron parameters -----------------------------------------------------------------------------
def _uniform(path: str, what: str, value, n: int) -> float:
    arr = np.broadcast_to(np.asarray(torch.as_tensor(value).detach().double().cpu().numpy()), (n,))
    if not np.all(np.isfinite(arr)):
        raise FrontendError(f"module {path!r}: {what} contains NaN/Inf")
    if not np.all(arr == arr.flat[0]):
        raise FrontendError(f"module {path!r}: per-neuron {what} values differ; a Loihi population has one "
                            f"{what} (split the layer or share the parameter)")
    return float(arr.flat[0])


def _neuron_params(path: str, mod, n: int) -> dict:
    """The LIF a snnTorch neuron module maps to, or a one-line refusal (module docstring)."""
    snn = _snn()
    kind = type(mod).__name__
    if type(mod) not in _neuron_classes()[1]:
        raise FrontendError(f"module {path!r}: snn.{kind} cannot be mapped to Loihi's LIF; supported: {SUPPORTED}")
    if type(mod) is snn.RSynaptic:
        raise FrontendError(
            f"module {path!r}: snn.RSynaptic cannot be mapped: with reset_mechanism='zero' it zeroes the "
            "membrane, input included, in the step after each spike (snnTorch 1.0.0 ignores reset_delay=False "
            "for RSynaptic), a refractory step Loihi's LIF lacks; use snn.Synaptic(reset_delay=False) with "
            "a recurrent nn.Linear of its spikes from the previous step")
    mech = mod.reset_mechanism
    if mech != "zero":
        why = ("subtracts the threshold from the membrane after a spike" if mech == "subtract"
               else "does not reset the membrane after a spike")
        raise FrontendError(f"module {path!r}: snn.{kind}(reset_mechanism={mech!r}) {why}; Loihi's LIF resets v "
                            "to 0, use reset_mechanism='zero'")
    if kind in ("Synaptic", "RLeaky") and mod.reset_delay:
        raise FrontendError(
            f"module {path!r}: snn.{kind}(reset_mechanism='zero', reset_delay=True) zeroes the membrane, input "
            "included, in the step after each spike, a refractory step Loihi's LIF lacks; set reset_delay=False "
            "(the reset then happens in the spike's step, exactly as on Loihi)")
    if mod.inhibition:
        raise FrontendError(f"module {path!r}: snn.{kind}(inhibition=True) (winner-take-all within a step) "
                            "has no Loihi LIF equivalent")
    if mod.state_quant:
        raise FrontendError(f"module {path!r}: snn.{kind}(state_quant=...) quantises the state its own way; "
                            "neurocomp quantises for Loihi itself — remove state_quant")
    beta = min(max(_uniform(path, "beta", mod.beta, n), 0.0), 1.0)       # snnTorch clamps to [0, 1]
    thr = np.broadcast_to(mod.threshold.detach().double().cpu().numpy(), (n,)).astype(np.float64)
    if not np.all(np.isfinite(thr)) or not np.all(thr > 0):
        raise FrontendError(f"module {path!r}: threshold must be positive and finite, got {thr.min():g}..{thr.max():g}")
    gain = _uniform(path, "graded_spikes_factor", getattr(mod, "graded_spikes_factor", 1.0), n)
    if not gain > 0:
        raise FrontendError(f"module {path!r}: graded_spikes_factor={gain:g}; only a positive spike scale maps "
                            "(into the weights it drives)")
    alpha = 0.0
    if kind == "Synaptic":
        alpha = min(max(_uniform(path, "alpha", mod.alpha, n), 0.0), 1.0)
    return {"kind": kind, "beta": beta, "alpha": alpha, "threshold": thr, "gain": gain,
            "reset_delay": bool(mod.reset_delay)}


def _recurrent_weight(path: str, mod, n: int):
    """RLeaky's own recurrent connection as ``(weight [n, n], bias [n])``."""
    rec = mod.recurrent
    if isinstance(rec, nn.Linear):
        w = rec.weight.detach().double().cpu().numpy()
        b = rec.bias.detach().double().cpu().numpy() if rec.bias is not None else np.zeros(n)
    elif isinstance(rec, nn.Module) and type(rec).__name__ == "RecurrentOneToOne":
        v = np.broadcast_to(torch.as_tensor(rec.V).detach().double().cpu().numpy(), (n,))
        w, b = np.diag(v), np.zeros(n)
    else:
        raise FrontendError(f"module {path!r}: snn.RLeaky with a {type(rec).__name__} recurrent connection; "
                            "supported: linear_features (nn.Linear) or all_to_all=False (one-to-one V)")
    if w.shape != (n, n):
        raise FrontendError(f"module {path!r}: recurrent weight {w.shape} for {n} neurons")
    return w, b


# -- trace -> IR ---------------------------------------------------------------------------------
def _describe(src: Optional[_Src]) -> str:
    if src is None:
        return "nothing"
    if src.kind == "input":
        return "the whole input" if src.step is None else f"input step {src.step}"
    if src.kind in ("spike", "state"):
        return f"{src.module!r} {'spikes' if src.kind == 'spike' else src.detail}"
    if src.kind == "op":
        return f"the operation {src.detail}"
    if src.kind == "module":
        return f"module {src.module!r} ({src.detail})"
    if src.kind == "linear":
        return f"nn.Linear {src.module!r}"
    return src.kind


def _terms(path: str, src: Optional[_Src]) -> list:
    """The nn.Linear outputs summed into a neuron's input."""
    if src is None or src.kind == "const":
        return []
    terms = src.terms if src.kind == "sum" else (src,)
    for t in terms:
        if t.kind != "linear":
            raise FrontendError(f"module {path!r}: its input comes from {_describe(t)}; neurocomp maps neurons fed "
                                "by nn.Linear layers (or sums of them) of spikes or input steps")
    return list(terms)


def _edges(neuron_calls: List[_Call], trace_problem: Optional[str], modules: Dict[str, nn.Module],
           input_views: set) -> dict:
    """Per neuron path: the set of ``(linear path, source, delay)`` it receives, checked to be the same
    at every step (``source`` is ``'input'`` or a neuron path; ``delay`` 0 same step, 1 previous)."""
    by_neuron: Dict[str, Dict[int, set]] = {}
    for call in neuron_calls:
        edges = set()
        for term in _terms(call.path, call.args[0] if call.args else None):
            chain, inner, first = [term.module], term.terms[0], term
            while inner is not None and inner.kind == "linear":
                chain.insert(0, inner.module)
                first, inner = inner, inner.terms[0]
            if inner is not None and inner.kind == "input":
                input_views.add(first.in_shape)
            lin_path = chain[0]
            chain = tuple(chain)
            if inner is None or inner.kind == "const":
                continue   # a recurrent source's initial zeros (step 0)
            if inner.kind == "input":
                if inner.step is None:
                    raise FrontendError(
                        f"module {lin_path!r}: receives the whole input, not one time step at a time; neurocomp feeds "
                        "spike trains: index the time-major input [T, batch, ...] with x[step] in forward")
                if inner.step != call.step:
                    raise FrontendError(f"module {lin_path!r}: at step {call.step} it receives input step {inner.step}; "
                                        "each step must take x[step]")
                edges.add((chain, "input", 0))
            elif inner.kind == "spike":
                delay = call.step - inner.step
                if delay == 0 or (delay == 1 and inner.module == call.path):
                    edges.add((chain, inner.module, delay))
                elif delay == 1:
                    raise FrontendError(
                        f"module {lin_path!r}: carries {inner.module!r}'s spikes of the previous step into "
                        f"{call.path!r}; only a population's connection to itself maps onto Lava's one-step delay "
                        "(connections from other layers must use the same step)")
                else:
                    raise FrontendError(f"module {lin_path!r}: carries {inner.module!r}'s spikes from {delay} steps "
                                        "earlier; only same-step and one-step recurrent connections map")
            else:
                if trace_problem and inner.kind == "op":
                    raise FrontendError(f"snnTorch model: {trace_problem}")
                raise FrontendError(f"module {lin_path!r}: its input comes from {_describe(inner)}; neurocomp maps "
                                    "nn.Linear layers fed by spikes (output 0 of a neuron) or input steps")
        by_neuron.setdefault(call.path, {})[call.step] = edges
    out = {}
    for path, steps in by_neuron.items():
        full = steps.get(1, steps[0])
        for k, e in steps.items():
            expect = full if k else {x for x in full if x[2] == 0}
            if e != expect:
                raise FrontendError(f"module {path!r}: its inputs change from step to step ({sorted(expect)} vs "
                                    f"{sorted(e)} at step {k}); neurocomp maps a fixed network")
        out[path] = full
    return out


def _check_state_args(call: _Call) -> None:
    """A neuron's state arguments must be its own previous outputs (or zeros/None at the first step)."""
    for i, src in enumerate(call.args[1:], start=1):
        if src is None or src.kind == "const":
            val = call.arg_values[i]
            if isinstance(val, torch.Tensor) and torch.count_nonzero(val):
                raise FrontendError(f"module {call.path!r}: state argument {i} starts nonzero; neurocomp starts "
                                    "every sample from rest (zeros)")
            continue
        if src.module != call.path or src.step != call.step - 1:
            raise FrontendError(f"module {call.path!r}: state argument {i} is {_describe(src)} from step {src.step}, "
                                "not this neuron's own state from the previous step")


DENSE_LIMIT = 2 ** 25   # weights a dense expansion of a chain of layers may hold


def _prefix(mod) -> str:
    return {nn.Conv2d: "conv", nn.AvgPool2d: "pool"}.get(type(mod), "fc")


def _chain_synapse(chain: tuple, modules: dict, src_shape: tuple, dst_shape: tuple, gain: float,
                   row_scale: np.ndarray) -> tuple:
    """The synapse a chain of nn.Linear / nn.Conv2d / nn.AvgPool2d modules (source side first) makes, with
    the source's spike gain and the target's per-neuron row scale folded in -> ``(synapse, bias [n])``.

    One nn.Linear -> Dense; one nn.Conv2d -> the IR's Conv (its bias, per channel, into the LIF bias);
    one nn.AvgPool2d -> pooling's depthwise Conv; anything else (e.g. Conv2d then AvgPool2d) -> the
    chain evaluated on unit inputs into one Dense matrix (exact: the chain is linear)."""
    from neurocomp.ir.synapses import Conv, pooling

    mods = [modules[c] for c in chain]
    n_dst = int(np.prod(dst_shape))
    uniform = bool(np.all(row_scale == row_scale[0]))
    for path, m in zip(chain, mods):
        w = getattr(m, "weight", None)
        if w is not None and not torch.all(torch.isfinite(w)):
            raise FrontendError(f"module {path!r}: weights contain NaN/Inf")
    if len(mods) == 1 and isinstance(mods[0], nn.Linear):
        lin = mods[0]
        w = lin.weight.detach().double().cpu().numpy() * gain * row_scale[:, None]
        b = lin.bias.detach().double().cpu().numpy() if lin.bias is not None else np.zeros(n_dst)
        if w.shape != (n_dst, int(np.prod(src_shape))):
            raise FrontendError(f"module {chain[0]!r}: {lin.in_features}->{lin.out_features} features between "
                                f"{int(np.prod(src_shape))} and {n_dst} neurons")
        return Dense(w), b
    if len(mods) == 1 and isinstance(mods[0], nn.Conv2d) and uniform and len(src_shape) == 3:
        c = mods[0]
        if c.padding_mode != "zeros" or isinstance(c.padding, str):
            raise FrontendError(f"module {chain[0]!r}: nn.Conv2d padding={c.padding!r}, padding_mode="
                                f"{c.padding_mode!r}; supported: integer zero padding")
        syn = Conv(c.weight.detach().double().cpu().numpy() * gain * row_scale[0], stride=c.stride,
                   padding=c.padding, dilation=c.dilation, groups=c.groups)
        cb = c.bias.detach().double().cpu().numpy() if c.bias is not None else np.zeros(c.out_channels)
        return syn, np.repeat(cb, n_dst // c.out_channels)
    if len(mods) == 1 and isinstance(mods[0], nn.AvgPool2d) and uniform and len(src_shape) == 3:
        m = mods[0]
        if m.ceil_mode or m.divisor_override is not None or (not m.count_include_pad and m.padding):
            raise FrontendError(f"module {chain[0]!r}: nn.AvgPool2d with ceil_mode/divisor_override/"
                                "count_include_pad=False; supported: the plain average")
        return pooling(src_shape[0], m.kernel_size, m.stride, m.padding, mode="avg",
                       scale=gain * row_scale[0]), np.zeros(n_dst)
    n_src = int(np.prod(src_shape))
    if n_src * n_dst > DENSE_LIMIT:
        raise FrontendError(f"modules {' -> '.join(chain)}: the chain {n_src} -> {n_dst} is too large to expand "
                            "into a dense matrix; put a neuron layer between its convolution and pooling")

    def run(x):
        with torch.no_grad():
            for path, m in zip(chain, mods):
                if isinstance(m, nn.Linear):
                    x = x.reshape(x.shape[0], -1)
                x = _double_forward(m, x)
        return x.reshape(x.shape[0], -1)

    zero = run(torch.zeros((1,) + tuple(src_shape), dtype=torch.float64))[0].numpy()
    m = run(torch.eye(n_src, dtype=torch.float64).reshape((n_src,) + tuple(src_shape))).numpy() - zero[None, :]
    if m.shape[1] != n_dst:
        raise FrontendError(f"modules {' -> '.join(chain)}: make {m.shape[1]} values for {n_dst} neurons")
    return Dense(m.T * gain * row_scale[:, None]), zero


def _double_forward(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``m(x)`` in float64 without touching the user's module."""
    import torch.nn.functional as F
    if isinstance(m, nn.Linear):
        return F.linear(x, m.weight.double(), None if m.bias is None else m.bias.double())
    if isinstance(m, nn.Conv2d):
        return F.conv2d(x, m.weight.double(), None if m.bias is None else m.bias.double(), m.stride, m.padding,
                        m.dilation, m.groups)
    if isinstance(m, nn.AvgPool2d):
        return F.avg_pool2d(x, m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
                            m.divisor_override)
    raise AssertionError(type(m))


def trace_to_ir(model: nn.Module, input_shape: tuple, name: str, timesteps: int, encoding) -> tuple:
    """Trace an snnTorch model and map it to the float IR -> ``(Network, details)``."""
    spiking, _ = _neuron_classes()
    input_shape = tuple(int(d) for d in input_shape)
    per_step = isinstance(model, nn.Sequential)
    trace = _trace(model, input_shape, timesteps, per_step)
    neuron_calls = [c for c in trace.calls if isinstance(c.module, spiking)]
    if not per_step and neuron_calls and all(c.step == 0 for c in neuron_calls) and timesteps > 1:
        trace = _trace(model, input_shape, timesteps, per_step=True)   # forward makes one step per call
        neuron_calls = [c for c in trace.calls if isinstance(c.module, spiking)]
    if not neuron_calls:
        raise FrontendError(f"snnTorch model: forward calls no snnTorch neuron; supported: {SUPPORTED}")
    for c in trace.calls:
        mod = c.module
        if isinstance(mod, spiking) or isinstance(mod, _LINEAR + (nn.Flatten,) + _TRANSPARENT):
            continue
        if any(a is not None and a.kind != "const" for a in c.args):
            raise FrontendError(f"module {c.path!r}: layer type {type(mod).__name__} cannot be mapped to Loihi; "
                                f"supported: {SUPPORTED}")
    paths = list(dict.fromkeys(c.path for c in neuron_calls))
    calls_per = {p: sum(c.path == p for c in neuron_calls) for p in paths}
    for p, k in calls_per.items():
        if k != timesteps:
            raise FrontendError(f"module {p!r}: forward stepped it {k} times on an input of {timesteps} steps; "
                                f"loop over every step of x (input.timesteps = {timesteps})")
    for c in neuron_calls:
        _check_state_args(c)
    modules = dict(model.named_modules())
    input_views: set = set()
    edges = _edges(neuron_calls, trace.problem, modules, input_views)
    if len(input_views) == 1:
        view = next(iter(input_views))
        if view != input_shape and int(np.prod(view)) == int(np.prod(input_shape)):
            input_shape = tuple(int(d) for d in view)   # forward reshapes each step, e.g. (784,) -> (1, 28, 28)

    # depths: feed-forward (same-step) edges only; every edge must go from depth d to d + 1
    depth = {"input": 0}
    pending = list(paths)
    while pending:
        ready = [p for p in pending if edges[p] and all(s in depth for _, s, d in edges[p] if d == 0)
                 and any(d == 0 for _, _, d in edges[p])]
        if not ready:
            raise FrontendError(f"snnTorch model: neurons {', '.join(pending)} receive no spikes from the input "
                                "or from earlier layers of the same step")
        for p in ready:
            ds = {depth[s] for _, s, d in edges[p] if d == 0}
            if len(ds) != 1:
                raise FrontendError(f"module {p!r}: inputs from layers at different depths (a skip connection); "
                                    "Lava's one-step delay per projection would misalign them")
            depth[p] = ds.pop() + 1
            pending.remove(p)
    order = sorted(paths, key=lambda p: (depth[p], paths.index(p)))

    sizes, shapes, params = {}, {"input": input_shape}, {}
    for p in order:
        first = next(c for c in neuron_calls if c.path == p)
        shapes[p] = tuple(int(d) for d in first.arg_values[0].shape[1:])
        sizes[p] = int(np.prod(shapes[p]))
        params[p] = _neuron_params(p, modules[p], sizes[p])
    in_size = int(np.prod(input_shape))

    pop_name = {p: (f"lif{p}" if p.isdigit() else p) for p in order}
    pop_name["input"] = "input"
    pops, projs, details = [], [], {"trace": "sequential, one step per call" if trace.per_step
                                    else f"forward loops over time ({timesteps} steps traced)", "layers": []}
    fed = set()
    for p in order:
        prm, n = params[p], sizes[p]
        du = 1.0 - prm["alpha"]
        dv = 1.0 - prm["beta"]
        thr = prm["threshold"]
        vth = float(thr.max())
        row_scale = vth / thr              # per-neuron thresholds folded into each neuron's inputs
        bias = np.zeros(n)
        incoming = []
        for chain, src, delay in sorted(edges[p]):
            gain = params[src]["gain"] if src != "input" else 1.0
            syn, b = _chain_synapse(chain, modules, shapes[src], shapes[p], gain, row_scale)
            if np.any(b != 0):
                if du != 1.0:
                    raise FrontendError(
                        f"module {chain[-1]!r}: a bias feeds the synaptic current of {p!r} (alpha={prm['alpha']:g}), "
                        "which Loihi cannot represent; use bias=False (Loihi's bias enters v)")
                bias += b
            incoming.append((chain[-1] if len(chain) == 1 else "+".join(chain), src, syn))
            if src != p:
                fed.add(src)
        if prm["kind"] == "RLeaky":
            w, b = _recurrent_weight(p, modules[p], n)
            incoming.append((f"{p}.recurrent", p, Dense(w * prm["gain"] * row_scale[:, None])))
            bias += b
        names = [lp for lp, _, _ in incoming]
        for lin_path, src, syn in incoming:
            base = f"{_prefix(modules.get(lin_path))}{lin_path}" if lin_path.isdigit() else lin_path
            proj_name = base if names.count(lin_path) == 1 else f"{base}:{pop_name[src]}"
            projs.append(Projection(proj_name, pop_name[src], pop_name[p], syn))
        pops.append(Population(pop_name[p], LIF(n, du=du, dv=dv, vth=vth, bias=bias * row_scale), shape=shapes[p]))
        details["layers"].append({"population": pop_name[p], "module": f"snn.{prm['kind']}", "beta": prm["beta"],
                                  "alpha": prm["alpha"], "threshold": float(thr.min()) if thr.min() == thr.max()
                                  else [float(thr.min()), float(thr.max())], "du": du, "dv": dv, "vth": vth,
                                  "reset": "zero", "reset_delay": prm["reset_delay"],
                                  "shape": list(shapes[p]),
                                  "recurrent": any(s == p for _, s, _ in edges[p]) or prm["kind"] == "RLeaky"})
    sinks = [p for p in order if p not in fed]
    if len(sinks) != 1:
        raise FrontendError(f"snnTorch model: {len(sinks)} output layers ({', '.join(sinks)}); neurocomp reads "
                            "one output population")
    net = Network(name=name, input=Input("input", in_size, encoding, shape=input_shape), populations=pops,
                  projections=projs, output=pop_name[sinks[0]], timesteps=timesteps)
    return net, details


def import_network(spec, input_shape: tuple):
    """Front-end entry point (:mod:`neurocomp.frontends`): the spec's factory and weights -> float IR."""
    from neurocomp.frontends import Imported
    from neurocomp.frontends.torch import build_module
    from neurocomp.spec import input_encoding

    _snn()
    src = spec.source
    module = build_module(src.factory, spec.resolve(src.weights) if src.weights else None, spec.base_dir, src.kwargs)
    # the model is stepped on flat samples, as snnTorch training scripts feed them; a conv model's
    # (C, H, W) comes from the view in its forward
    flat = (int(np.prod(input_shape)),)
    net, details = trace_to_ir(module, flat, spec.name, spec.input.timesteps, input_encoding(spec))
    return Imported(net, details)
