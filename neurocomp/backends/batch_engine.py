"""Batched simulation of a layered feed-forward IR network — float or Loihi fixed point.

Sample timing follows the Lava pipeline neurocomp builds (see ``backends/lava.py``): a population
at depth ``d`` runs sample ``k`` during its own window of ``timesteps`` steps, starting ``d`` steps
after the input did, with its state zeroed at the window start (``LIFReset`` with a staggered
offset). Because Lava's ``Dense`` delays by exactly one step, the population at depth ``d`` sees at
window step ``t`` what depth ``d-1`` emitted at its window step ``t``. So per sample the network is
simply evaluated step by step, layer by layer — and samples are independent, which is what lets this
simulator run a whole batch at once and still equal Lava spike for spike.

It also means there is no feedback within a sample, so the simulator goes *layer-major*: one
population at a time over all samples of a batch and all timesteps, then the next layer. Spike trains
are kept sample-major, ``[batch, steps, n]``.

* Fixed point (the ``cpu`` target), ``engine="jit"`` (default): one compiled, event-driven call per
  population (:class:`neurocomp.backends.fixed_point.LifPopulationKernel`: integer sums of the weight rows
  of the sources that spiked — or of those that started/stopped spiking, added to/subtracted from
  the previous step's sums — fused with the LIF update, threads over samples).
* Fixed point, ``engine="numpy"``: the reference path the compiled one is tested against — each
  projection's activations for all samples and steps are one big float GEMM (exact by a proven
  bound, see :mod:`neurocomp.backends.fixed_point`), then the neurons step through time vectorised over
  ``[batch, n]``.
* Fixed point, ``engine="torch"``: the same integers in torch tensor ops, on CUDA when
  ``torch.cuda.is_available()`` (:mod:`neurocomp.backends.torch_engine`; tested equal to the jit
  engine). On a CPU the jit engine is ~15x faster (``benchmarks/bench_sim.py``), so it stays the default.
* Float (Lava's float LIF): the numpy path, in float64.
* Graded input (a projection with ``num_message_bits > 0``, fed by a ``current`` input): the population
  runs through :mod:`neurocomp.backends.graded` (compiled for ``jit``, the numpy reference for
  ``numpy``); a float network reads such input as ``level * unit`` (the encoding's float value).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.backends.base import Progress, Result
from neurocomp.errors import NeurocompError
from neurocomp.ir import LIF, Dense, LoihiDense, LoihiLIF, Network, is_graded
from neurocomp.ir.synapses import Conv, LoihiConv
from neurocomp.ir.schedule import BATCHED, Schedule


def layer_order(net: Network) -> list:
    """Populations in execution order; raises if the network is not strictly layered feed-forward."""
    problem = net.layering_problem()
    if problem:
        raise NeurocompError(f"network {net.name!r}: {problem}; the batched simulator takes layered "
                             "feed-forward networks (the stream schedule runs the others)")
    return net.execution_order()


# elements of one population's [batch, timesteps, n] activation buffer per batch chunk (~64-128 MB)
CHUNK_ELEMENTS = 2 ** 24


def _batch_size(net: Network, steps: int, requested: Optional[int]) -> int:
    if requested:
        return requested
    widest = max([net.input.size] + [p.size for p in net.populations])
    return max(1, CHUNK_ELEMENTS // (steps * widest))


class _SteppedPopulation:
    """A population run as one batched activation per projection, then a numpy loop over steps."""

    size: int

    def run(self, emitted, probe: bool, out=None):
        """``(spikes [b, steps, n], counts [b, n], {"u", "v"}: [b, steps, n] or None)``, sample-major.

        ``out``: where the spikes go too (a ``[b, steps, n]`` array), if given.
        """
        act = self.activation(emitted).transpose(1, 0, 2)          # [steps, b, n] view
        steps, b = act.shape[:2]
        probed = {k: np.empty((steps, b, self.size)) for k in ("u", "v")} if probe else None
        spikes = _run_population(self, act, self.size, probed).transpose(1, 0, 2)
        if out is not None:
            out[...] = spikes
        return spikes, spikes.sum(axis=1), (
            {k: x.transpose(1, 0, 2) for k, x in probed.items()} if probe else None)


class _FloatPopulation(_SteppedPopulation):
    """Lava's float LIF (``PyLifModelFloat``) in float64, same operation order."""

    def __init__(self, pop, incoming):
        self.neuron = pop.neuron
        self.size = pop.size
        self.weights = [(proj.source, np.ascontiguousarray(proj.synapse.weight.T)) for proj in incoming]

    def activation(self, emitted):
        total = None
        for source, w_t in self.weights:
            s = emitted(source)
            a = s.astype(np.float64, order="C").reshape(-1, s.shape[-1]) @ w_t
            a = a.reshape(s.shape[:-1] + (-1,))
            total = a if total is None else total + a
        return total

    def step(self, u, v, a_t, s_out):
        n = self.neuron
        u[:] = u * (1 - n.du) + a_t
        v[:] = v * (1 - n.dv) + u + n.bias
        np.greater(v, n.vth, out=s_out)
        np.copyto(v, 0.0, where=s_out)
        return s_out


class _FixedPopulationNumpy(_SteppedPopulation):
    """Lava's bit-accurate Dense + LIF through :mod:`neurocomp.backends.fixed_point`'s exact numpy kernels."""

    def __init__(self, pop, incoming):
        self.size = pop.size
        self.dense = [(proj.source, fxp.DenseKernel(proj.synapse)) for proj in incoming]
        kernels = [k for _, k in self.dense]
        self.lif = fxp.LifKernel(pop.neuron, activation_bound=sum(k.bound for k in kernels))

    def activation(self, emitted):
        acts = [k.activation(emitted(source)) for source, k in self.dense]
        a = fxp.channel_sum(acts, [k for _, k in self.dense])
        return self.lif.scaled_activation(a)

    def step(self, u, v, act_t, s_out):
        return self.lif.step(u, v, act_t, s_out)


class _FixedPopulationJit:
    """Lava's bit-accurate Dense + LIF as one compiled, event-driven kernel per population."""

    def __init__(self, pop, incoming):
        self.sources = [proj.source for proj in incoming]
        self.kernel = fxp.LifPopulationKernel(pop.neuron, [proj.synapse for proj in incoming])

    def run(self, emitted, probe: bool, out=None):
        spikes, counts, uv = self.kernel.run([emitted(s) for s in self.sources], probe=probe, out=out)
        return spikes, counts, (dict(zip(("u", "v"), uv)) if probe else None)


def _FixedPopulationTorch(pop, incoming):
    """The same semantics in torch integer tensor ops, on CUDA when available (imports torch on first use)."""
    from neurocomp.backends.torch_engine import TorchFixedPopulation
    return TorchFixedPopulation(pop, incoming)


FIXED_ENGINES = {"jit": _FixedPopulationJit, "numpy": _FixedPopulationNumpy, "torch": _FixedPopulationTorch}


class _ConvPopulation:
    """A population fed by a convolution (and maybe more projections), through
    :mod:`neurocomp.backends.conv`: the compiled scatter kernel (``jit``), the numpy reference
    (``numpy``) or, for a float network, torch's conv2d in float64. Convs come first (the compiled
    kernel fuses the first one with the LIF update)."""

    def __init__(self, pop, incoming, shapes, engine: str):
        from neurocomp.backends import conv
        incoming = sorted(incoming, key=lambda p: not isinstance(p.synapse, (Conv, LoihiConv)))
        self.sources = [proj.source for proj in incoming]
        self.projections = [(proj.synapse, shapes[proj.source]) for proj in incoming]
        self.neuron = pop.neuron
        if isinstance(pop.neuron, LIF):
            self.run_fn = lambda src, probe: conv.float_run(self.neuron, self.projections, src, probe)
        elif engine == "jit":
            kernel = conv.ConvPopulationKernel(pop.neuron, self.projections)
            self.run_fn = lambda src, probe: kernel.run(src, probe=probe)
        elif engine == "numpy":
            self.run_fn = lambda src, probe: conv.reference_run(self.neuron, self.projections, src, probe)
        else:
            raise NeurocompError(f"engine {engine!r} does not run convolutions yet; use 'jit' or 'numpy'")

    def run(self, emitted, probe: bool, out=None):
        spikes, counts, uv = self.run_fn([emitted(s) for s in self.sources], probe)
        if out is not None:
            out[...] = spikes
        return spikes, counts, (dict(zip(("u", "v"), uv)) if probe else None)


class _GradedPopulation:
    """A fixed-point population fed by a graded projection (``num_message_bits > 0``: direct-current
    input), through :mod:`neurocomp.backends.graded`: the compiled kernel (``jit``) or the numpy
    reference (``numpy``)."""

    def __init__(self, pop, incoming, shapes, engine: str):
        from neurocomp.backends import graded
        projections = [(proj.synapse, shapes[proj.source]) for proj in incoming]
        self.sources = [proj.source for proj in incoming]
        if engine == "jit":
            kernel = graded.GradedPopulationKernel(pop.neuron, projections)
            self.run_fn = lambda src, probe: kernel.run(src, probe=probe)
        elif engine == "numpy":
            self.run_fn = lambda src, probe: graded.reference_run(pop.neuron, projections, src, probe)
        else:
            raise NeurocompError(f"engine {engine!r} does not run graded input yet; use 'jit' or 'numpy'")

    def run(self, emitted, probe: bool, out=None):
        spikes, counts, uv = self.run_fn([emitted(s) for s in self.sources], probe)
        if out is not None:
            out[...] = spikes
        return spikes, counts, (dict(zip(("u", "v"), uv)) if probe else None)


def _run_population(model, act, size, states=None):
    """Step one population through time: ``act`` ``[steps, b, n]`` -> spikes ``[steps, b, n]``.

    ``states``, if given, receives ``u``/``v`` after every step as ``{"u": [steps, b, n], ...}``.
    """
    steps, b = act.shape[:2]
    out = np.empty((steps, b, size), dtype=bool)
    u = np.zeros((b, size))
    v = np.zeros((b, size))
    for t in range(steps):
        model.step(u, v, act[t], out[t])
        if states is not None:
            # after the reset, as Lava's u/v Vars hold them at the end of the step
            states["u"][t] = u
            states["v"][t] = v
    return out


def simulate(net: Network, spikes_in: np.ndarray, record: bool = False, probe: bool = False,
             target: str = "sim", batch_size: Optional[int] = None, engine: str = "jit",
             progress: Progress = None) -> Result:
    """Run input spike trains ``[samples, timesteps, n_in]`` through ``net``.

    Float networks (:class:`LIF`/:class:`Dense`) use Lava's float LIF semantics in float64; fixed-point
    ones (:class:`LoihiLIF`/:class:`LoihiDense`) Lava's bit-accurate integer semantics (input spikes
    are binarised, as Lava's ``Dense`` casts them to bool). ``batch_size`` samples run at once
    (default: as many as keep one population's activations near :data:`CHUNK_ELEMENTS`).
    ``engine`` picks the fixed-point implementation (module docstring): ``"jit"``, ``"numpy"`` or
    ``"torch"`` (:mod:`neurocomp.backends.torch_engine`, CUDA when available); all bit-exact to Lava.
    """
    if engine not in FIXED_ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {sorted(FIXED_ENGINES)}")
    spikes_in = np.asarray(spikes_in)
    n_samples, steps, n_in = spikes_in.shape
    if n_in != net.input.size:
        raise NeurocompError(f"input has {n_in} features, network {net.name!r} expects {net.input.size}")
    order = layer_order(net)
    models = {}
    shapes = {net.input.name: net.input.shape, **{p.name: p.shape for p in net.populations}}
    for p in order:
        incoming = net.incoming(p.name)
        if type(p.neuron).__name__ in ("ATRLIF", "LoihiATRLIF"):
            raise NeurocompError(f"population {p.name!r}: ATRLIF runs on the stream schedule only (Lava has no "
                                 "reset-interval ATRLIF to separate batched samples)")
        if isinstance(p.neuron, LoihiLIF) and any(getattr(pr.synapse, "num_message_bits", 0) for pr in incoming):
            models[p.name] = _GradedPopulation(p, incoming, shapes, engine)
        elif any(isinstance(pr.synapse, (Conv, LoihiConv)) for pr in incoming):
            models[p.name] = _ConvPopulation(p, incoming, shapes, engine)
        elif isinstance(p.neuron, LIF) and all(isinstance(pr.synapse, Dense) for pr in incoming):
            models[p.name] = _FloatPopulation(p, incoming)
        elif isinstance(p.neuron, LoihiLIF) and all(isinstance(pr.synapse, LoihiDense) for pr in incoming):
            models[p.name] = FIXED_ENGINES[engine](p, incoming)
        else:
            raise NeurocompError(
                f"population {p.name!r}: unsupported mix {type(p.neuron).__name__} with "
                f"{sorted({type(pr.synapse).__name__ for pr in incoming})}; the simulator runs all-float "
                "(LIF/Dense) or all-fixed-point (LoihiLIF/LoihiDense) populations")
    names = [p.name for p in order]
    counts = {n: np.zeros((n_samples, net.population(n).size), dtype=np.int64) for n in names}
    trains = {n: np.zeros((n_samples, steps, net.population(n).size), dtype=bool) for n in names} if record else {}
    states = ({n: {k: np.zeros((n_samples, steps, net.population(n).size),
                              dtype=np.float64 if isinstance(net.population(n).neuron, LIF) else np.int64)
                   for k in ("u", "v")} for n in names} if probe else {})
    unit = net.input.encoding.unit if is_graded(net.input.encoding) and not net.is_fixed_point else None
    chunk = _batch_size(net, steps, batch_size)
    for lo in range(0, n_samples, chunk):
        hi = min(lo + chunk, n_samples)
        trains_sm = {}      # population -> spikes [batch, steps, n] (sample-major, maybe a view)

        def emitted(source):
            if source != net.input.name:
                return trains_sm[source]
            # a float network reads graded input in float units (level x unit: the pixel value)
            return spikes_in[lo:hi] * unit if unit is not None else spikes_in[lo:hi]

        for p in order:
            out, counts[p.name][lo:hi], probed = models[p.name].run(
                emitted, probe, out=trains[p.name][lo:hi] if record else None)
            trains_sm[p.name] = out
            if probe:
                for k in ("u", "v"):
                    states[p.name][k][lo:hi] = probed[k]
        if progress:
            progress(hi * steps, n_samples * steps)
    peaks = ({n: (int(np.abs(st["u"]).max(initial=0)), int(np.abs(st["v"]).max(initial=0))) for n, st in states.items()}
             if probe and net.is_fixed_point else {})
    return Result(target=target, output=net.output, schedule=Schedule(BATCHED, steps), counts=counts, spikes=trains,
                  states=states, peaks=peaks, input_spikes=spikes_in if record else None)
