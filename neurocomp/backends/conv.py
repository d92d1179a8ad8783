"""Convolution on Loihi as Lava 0.10 implements it: the semantics, two exact engines, the Lava mapping,
and how to choose integer weights.

What Lava's ``Conv`` computes (``lava/proc/conv/{process,models,utils}.py``, ``PyConvModelFixed``)
------------------------------------------------------------------------------------------------
Per step ``run_spk`` first **sends** ``a_buf`` (what it computed the step before: the same one-step
delay as ``Dense``), then receives ``s_in``, casts it to bool (``num_message_bits=0``), and computes::

    a_buf = signed_clamp(int32(conv_scipy(s_in, weight, ...)), bits=24)

* ``conv_scipy`` zero-pads the ``(X, Y, C)`` input, dilates the kernel, and for every group, output and
  input channel adds ``scipy.signal.convolve2d(x, w, mode="valid")[::sx, ::sy]`` in float64 — a **true
  convolution** (kernel flipped), exact for integers below 2**53;
* the float64 sum is cast to the weight dtype, int32 (exact below 2**31; we refuse kernels that could
  reach it);
* ``signed_clamp`` is not a clamp: ``(x + 2**23) % 2**24 - 2**23`` is a two's-complement **wrap** to
  24 bits;
* ``weight_exp`` and ``num_weight_bits`` are stored as Vars and never read (lava issue 803): the
  integers in ``weight`` are the effective weights. Nor are the weights clipped to 8 bits.

Orientation and layout: Lava's weight is ``(C_out, W, H, C_in)`` (kernel width first) and its ports are
``(X, Y, C)`` = ``(W, H, C)``; torch's ``nn.Conv2d`` is a cross-correlation on ``(C, H, W)`` with weight
``(C_out, C_in, kH, kW)``. So Lava's output equals torch's when
``w_lava = w_torch[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)``, inputs and outputs are transposed
``(C, H, W) <-> (W, H, C)`` and the spatial tuples (padding, stride, dilation) are given as ``(x, y)``
= ``(w, h)`` (:func:`lava_conv_kwargs`; ``tests/test_conv_vs_lava.py`` proves it against
``torch.nn.functional.conv2d`` on integers, and that the unflipped kernel fails).

What the IR's :class:`~neurocomp.ir.synapses.LoihiConv` therefore means: torch-oriented integer weights
on Loihi's 8-bit grid (see its docstring), ``a[t] = wrap24(sum w * bool(s[t]))``, delivered at ``t + 1``;
the target LIF sees ``a`` exactly as it sees a Dense message (``u += a << 6``).

Issue 803 and scales (:func:`quantize_conv`)
--------------------------------------------
With no working exponent, a conv layer's scale lives entirely in its integer weights (and the target
LIF's threshold/bias, which the quantiser derives from the same scale). :func:`quantize_conv` puts the
weights on the grid Loihi's synapse stores exactly at ``num_weight_bits=8, weight_exp=0`` — the values
Lava's own Dense model would leave unchanged (even numbers in ``[-256, 254]`` for a mixed-sign kernel,
``0..255`` / ``-255..0`` for one sign) — and the Lava builder passes ``weight_exp=0,
num_weight_bits=8``. Then the three agree by construction: Lava's Conv model multiplies by the
integers as given, our engines do the same, and a chip that *does* apply ``weight_exp`` and
``num_weight_bits`` (Lava's Dense rules: clip to 8 bits for the sign mode, drop
``8 - num_weight_bits + mixed`` low bits, shift by ``weight_exp``) maps each of these integers onto
itself. The cost of 803 is range, not exactness: a layer cannot borrow ``2**weight_exp``, so
:func:`max_conv_scale` is ``254 / max|w|`` (mixed) and small-weight layers get their resolution from
the threshold's 17 bits instead.

How a chip could still differ: only through Lava's 24-bit wrap of the convolution sum, whose chip
counterpart Lava does not document. It cannot happen when ``sum |w|`` over one output's kernel is
below ``2**23`` (:attr:`ConvKernel.can_wrap` is then False) — any conv with ``C_in/groups * kH * kW
< 32768`` 8-bit taps, e.g. every layer of ``models/mnist_cnn``. Our engines reproduce Lava's wrap
whenever it can happen.

Engines
-------
* :class:`ConvKernel` — the numpy reference, usable like :class:`~neurocomp.backends.fixed_point.DenseKernel`:
  ``activation(spikes [batch, steps, n_in]) -> int64 [batch, steps, n_out]``, flat C-major
  ``(C, H, W)`` order on both sides, undelayed (``delayed=True`` gives what Lava's port sends, one step
  late). Per kernel tap one float64 GEMM over all images: exact because every partial sum is an
  integer below 2**31 < 2**53.
* :class:`ConvPopulationKernel` — the ``cpu`` target's engine for a LoihiLIF population fed by a
  LoihiConv (plus any further Conv/Dense projections), with the same ``run()`` as
  :class:`~neurocomp.backends.fixed_point.LifPopulationKernel`. Two exact paths, picked per run from
  the actual spike count (:meth:`ConvPopulationKernel.choose`): the event-driven **scatter** (per
  input spike, its kernel rows added in int32 to the outputs it reaches, fused with the bit-accurate
  LIF; :mod:`neurocomp.backends.conv_jit`, numba) and an **im2col GEMM** (float32 BLAS, exact by the
  kernel's ``sum |w|`` bound, then the compiled LIF). Measured on models/mnist_cnn's layers
  (``benchmarks/bench_conv.py`` prints both on the real spike trains): the scatter wins below a few
  percent input density — conv1 on rate-coded digits (13 %) and conv2 on lif1's spikes (4 %) — the
  GEMM above it; a scatter add costs about :attr:`ConvPopulationKernel.SCATTER_COST` GEMM
  multiply-adds. A pooling folded into the conv (block-constant kernel) is computed as the pooling
  then the smaller kernel (:func:`pooled_factor`) on both paths.
* :class:`FloatConvKernel` — the float IR's :class:`~neurocomp.ir.synapses.Conv` (torch's conv2d in
  float64).

Why one module of ~720 lines: the conv engine's two paths (event scatter and im2col GEMM) and the
float kernel share the geometry helpers and are tested against each other; apart they would duplicate them.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.ir import LoihiDense, LoihiLIF
from neurocomp.ir.synapses import Conv, LoihiConv

CONV_BITS = 24
CONV_HALF = 2 ** (CONV_BITS - 1)
INT32_LIMIT = 2 ** 31


# ------------------------------------------------------------------------------ semantics helpers
def wrap24(x: np.ndarray) -> np.ndarray:
    """Lava's ``signed_clamp(x, 24)``: ``(x + 2**23) mod 2**24 - 2**23`` on integers (a wrap, not a clip)."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + CONV_HALF) % (2 * CONV_HALF)) - CONV_HALF


def _shape3(shape) -> tuple:
    shape = tuple(int(d) for d in shape)
    if len(shape) != 3:
        raise ValueError(f"a convolution reads and writes (C, H, W) populations, got shape {shape}")
    return shape


def correlate(x: np.ndarray, weight: np.ndarray, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
              groups: int = 1) -> np.ndarray:
    """torch's ``conv2d`` (cross-correlation, zero padding) of ``x [N, C, H, W]`` with ``weight
    [C_out, C/groups, kH, kW]``, in float64: one GEMM per kernel tap and group.

    Exact on integers as long as every partial sum stays below 2**53 in magnitude."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    n, c, h, wd = x.shape
    co, cig, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cog = co // groups
    out = np.zeros((n, ho, wo, co))
    for g in range(groups):
        xs = xp[:, g * cig:(g + 1) * cig]
        ws = w[g * cog:(g + 1) * cog]
        acc = out[..., g * cog:(g + 1) * cog]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
                acc += np.tensordot(patch, ws[:, :, i, j], axes=([1], [1]))      # [N, Ho, Wo, cog]
    return out.transpose(0, 3, 1, 2)


# --------------------------------------------------------------------------- the numpy reference
class ConvKernel:
    """Exact ``wrap24(conv(bool(s)))`` as Lava's ``PyConvModelFixed`` computes it, for many steps at once.

    Built from a :class:`LoihiConv` and the source population's shape ``(C, H, W)``;
    :meth:`activation` maps spikes ``[..., n_in]`` to int64 activations ``[..., n_out]``, both flat in
    our C-major order. ``bound`` bounds ``|a|`` (what :class:`~neurocomp.backends.fixed_point.LifKernel`
    and :func:`~neurocomp.backends.fixed_point.channel_sum` take as a DenseKernel's ``bound``).
    """

    ROW_BLOCK = 2048   # images per block: keeps the float64 copies of a block near 100 MB at most

    def __init__(self, conv: LoihiConv, in_shape):
        self.conv = conv
        self.in_shape = _shape3(in_shape)
        self.out_shape = conv.output_shape(self.in_shape)
        self.n_pre = int(np.prod(self.in_shape))
        self.n_post = int(np.prod(self.out_shape))
        self.accumulation_bound = conv.accumulation_bound
        if self.accumulation_bound >= INT32_LIMIT:
            raise ValueError(f"conv kernel weight sums up to {self.accumulation_bound} reach 2**31: Lava casts "
                             "its float64 convolution to int32, which is undefined there")
        self.can_wrap = self.accumulation_bound >= CONV_HALF
        self.bound = min(self.accumulation_bound, CONV_HALF)
        self.wraps = False           # DenseKernel's flag: the int32 channel cannot wrap a 24-bit value

    def activation(self, spikes: np.ndarray, delayed: bool = False) -> np.ndarray:
        """int64 activations ``[..., n_out]`` for spikes ``[..., n_in]`` (non-zero = spike).

        ``delayed=False`` (default, as DenseKernel): entry ``t`` is the convolution of step ``t``'s
        spikes, which Lava delivers at ``t + 1``. ``delayed=True``: what Lava's ``a_out`` sends at each
        step of ``spikes[..., t, :]`` (zeros first), for arrays ``[..., steps, n_in]``.
        """
        spikes = np.asarray(spikes)
        if spikes.shape[-1] != self.n_pre:
            raise ValueError(f"spikes have {spikes.shape[-1]} channels, the conv reads {self.n_pre} {self.in_shape}")
        flat = spikes.reshape((-1,) + self.in_shape)
        out = np.empty((flat.shape[0], self.n_post), dtype=np.int64)
        c = self.conv
        for lo in range(0, flat.shape[0], self.ROW_BLOCK):
            block = (flat[lo:lo + self.ROW_BLOCK] != 0)                  # Lava's bool cast of s_in
            acc = correlate(block, c.weight, c.stride, c.padding, c.dilation, c.groups)
            out[lo:lo + len(block)] = wrap24(np.rint(acc).astype(np.int64).reshape(len(block), -1))
        out = out.reshape(spikes.shape[:-1] + (self.n_post,))
        if delayed:
            out = np.concatenate([np.zeros_like(out[..., :1, :]), out[..., :-1, :]], axis=-2)
        return out


class FloatConvKernel:
    """The float IR's :class:`Conv`: torch's ``conv2d`` in float64, spikes ``[..., n_in]`` -> ``[..., n_out]``."""

    def __init__(self, conv: Conv, in_shape):
        self.conv = conv
        self.in_shape = _shape3(in_shape)
        self.out_shape = conv.output_shape(self.in_shape)
        self.n_pre = int(np.prod(self.in_shape))
        self.n_post = int(np.prod(self.out_shape))

    IMAGES = 256    # images per conv2d call: torch's unfolded input stays near 100 MB

    def activation(self, spikes: np.ndarray) -> np.ndarray:
        import torch
        spikes = np.asarray(spikes)
        images = spikes.reshape((-1,) + self.in_shape)
        out = np.empty((len(images), self.n_post))
        c = self.conv
        w = torch.from_numpy(np.array(c.weight))
        with torch.no_grad():
            for lo in range(0, len(images), self.IMAGES):
                x = torch.from_numpy(np.ascontiguousarray(images[lo:lo + self.IMAGES], dtype=np.float64))
                y = torch.nn.functional.conv2d(x, w, stride=c.stride, padding=c.padding, dilation=c.dilation,
                                               groups=c.groups)
                out[lo:lo + len(x)] = y.reshape(len(x), -1).numpy()
        return out.reshape(spikes.shape[:-1] + (self.n_post,))


def activation_kernel(synapse, pre_shape):
    """The numpy reference kernel for any fixed-point synapse: DenseKernel or ConvKernel."""
    if isinstance(synapse, LoihiConv):
        return ConvKernel(synapse, pre_shape)
    if isinstance(synapse, LoihiDense):
        return fxp.DenseKernel(synapse)
    raise TypeError(f"no fixed-point kernel for {type(synapse).__name__}")


def reference_run(neuron: LoihiLIF, projections: Sequence[tuple], sources: Sequence[np.ndarray],
                  probe: bool = False):
    """The reference path for one population: numpy activations (:func:`activation_kernel`), Lava's
    InPort sum (:func:`~neurocomp.backends.fixed_point.channel_sum`), then
    :class:`~neurocomp.backends.fixed_point.LifKernel` step by step. ``projections``: ``(synapse,
    pre_shape)`` pairs; ``sources``: each one's spikes ``[samples, steps, n_pre]``. Returns what
    :meth:`ConvPopulationKernel.run` returns."""
    kernels = [activation_kernel(s, shape) for s, shape in projections]
    acts = [k.activation(s) for k, s in zip(kernels, sources)]
    a = fxp.channel_sum(acts, kernels)
    lif = fxp.LifKernel(neuron, activation_bound=sum(k.bound for k in kernels))
    act = lif.scaled_activation(np.asarray(a, dtype=np.float64))
    n_samples, steps, n = act.shape
    spikes = np.empty((n_samples, steps, n), dtype=bool)
    u = np.zeros((n_samples, n))
    v = np.zeros((n_samples, n))
    us = np.empty((n_samples, steps, n), dtype=np.int64) if probe else None
    vs = np.empty((n_samples, steps, n), dtype=np.int64) if probe else None
    for t in range(steps):
        lif.step(u, v, act[:, t], spikes[:, t])
        if probe:
            us[:, t], vs[:, t] = u, v
    return spikes, spikes.sum(axis=1).astype(np.int64), ((us, vs) if probe else None)


def float_run(neuron, projections: Sequence[tuple], sources: Sequence[np.ndarray], probe: bool = False):
    """The float IR for one population: float64 activations (:class:`FloatConvKernel` or ``s @ W.T``),
    summed, then Lava's float LIF (``PyLifModelFloat``: ``u = u*(1-du) + a``, ``v = v*(1-dv) + u + bias``,
    spike on ``v > vth``, ``v = 0`` there). Same arguments and results as :func:`reference_run`."""
    a = None
    for (syn, shape), s in zip(projections, sources):
        if isinstance(syn, Conv):
            x = FloatConvKernel(syn, shape).activation(s)
        else:
            x = np.asarray(s, dtype=np.float64) @ syn.weight.T
        a = x if a is None else a + x
    n_samples, steps, n = a.shape
    u, v = np.zeros((n_samples, n)), np.zeros((n_samples, n))
    spikes = np.empty((n_samples, steps, n), dtype=bool)
    us = np.empty((n_samples, steps, n)) if probe else None
    vs = np.empty((n_samples, steps, n)) if probe else None
    for t in range(steps):
        u = u * (1 - neuron.du) + a[:, t]
        v = v * (1 - neuron.dv) + u + neuron.bias
        np.greater(v, neuron.vth, out=spikes[:, t])
        v[spikes[:, t]] = 0.0
        if probe:
            us[:, t], vs[:, t] = u, v
    return spikes, spikes.sum(axis=1).astype(np.int64), ((us, vs) if probe else None)


def simulate_layered(net, spikes_in: np.ndarray, engine: str = "jit", probe: bool = False) -> dict:
    """Run a layered network with conv projections, population by population (the batched schedule:
    each population's window aligned to its input, every sample from rest): ``{population: (spikes,
    counts, (u, v) or None)}``. ``engine``: ``"jit"`` (:class:`ConvPopulationKernel` /
    ``LifPopulationKernel``), ``"reference"`` (:func:`reference_run`), or ``"float"`` for a float
    network (:func:`float_run`).

    A stand-in for the batch engine until it takes conv synapses itself: tests, the example's
    training checks and ``benchmarks/bench_conv.py`` use it."""
    from neurocomp.ir import LIF
    if not net.is_layered:
        raise ValueError(f"network {net.name!r} is not layered: {net.layering_problem()}")
    emitted = {net.input.name: np.asarray(spikes_in)}
    out = {}
    for pop in net.execution_order():
        incoming = sorted(net.incoming(pop.name), key=lambda p: not isinstance(p.synapse, (Conv, LoihiConv)))
        projections = [(p.synapse, net.shape_of(p.source)) for p in incoming]
        sources = [emitted[p.source] for p in incoming]
        if isinstance(pop.neuron, LIF):
            result = float_run(pop.neuron, projections, sources, probe)
        elif engine == "reference":
            result = reference_run(pop.neuron, projections, sources, probe)
        elif isinstance(projections[0][0], LoihiConv):
            result = ConvPopulationKernel(pop.neuron, projections).run(sources, probe)
        else:
            result = fxp.LifPopulationKernel(pop.neuron, [s for s, _ in projections]).run(sources, probe)
        emitted[pop.name] = result[0]
        out[pop.name] = result
    return out


# ------------------------------------------------------------------------------ the cpu engine
_JIT = None


def _jit():
    global _JIT
    if _JIT is None:
        fxp._jit_module()                    # sets NUMBA_CACHE_DIR when needed, imports numba
        from neurocomp.backends import conv_jit
        _JIT = conv_jit
    return _JIT


class ConvPopulationKernel:
    """A LoihiLIF population whose first incoming projection is a :class:`LoihiConv`, compiled.

    ``projections``: ``(synapse, pre_shape)`` pairs in the order of ``run``'s ``sources``; the first
    must be a LoihiConv. ``run(sources, probe, out)`` returns ``(spikes [samples, steps, n] bool,
    counts [samples, n] int64, (u, v) int64 or None)`` like
    :class:`~neurocomp.backends.fixed_point.LifPopulationKernel`, each sample from ``u = v = 0``.

    The first conv runs fused with the LIF update, per sample and step: every input spike
    ``(c, y, x)`` adds its kernel's ``C_out/groups`` weights at each output position it reaches to
    int32 sums (exact: ``sum |w| < 2**31`` is checked), then Lava's 24-bit wrap, then the LIF in
    int32 lanes exactly as :mod:`neurocomp.backends.fixed_point_jit` computes it (every int32 wrap of
    Lava's arrays reproduced). Further projections are added to the InPort sum from exact
    precomputed activations (further convs: the same scatter; Dense: :class:`DenseKernel`), wrapped to
    int32 as Lava's channel and InPort do.
    """

    # a scatter add costs about this many GEMM multiply-adds (benchmarks/bench_conv.py measures both)
    SCATTER_COST = 3.0
    CHUNK_ELEMENTS = 2 ** 22    # [samples, steps, n] int32 activations per GEMM-path chunk (16 MB)

    def __init__(self, neuron: LoihiLIF, projections: Sequence[tuple], mode: str = "auto"):
        if mode not in ("auto", "scatter", "gemm"):
            raise ValueError(f"mode {mode!r}: 'auto', 'scatter' or 'gemm'")
        self.mode = mode
        if not projections or not isinstance(projections[0][0], LoihiConv):
            raise ValueError("ConvPopulationKernel: the first projection must be a LoihiConv")
        for name in ("du", "dv"):
            if not 0 <= getattr(neuron, name) < fxp.DECAY_UNITY:
                raise ValueError(f"{name}={getattr(neuron, name)}: Loihi decays are 12-bit (0..4095)")
        self.neuron = neuron
        self.projections = [(s, tuple(shape)) for s, shape in projections]
        self.geometry = [_Scatter(s, shape) if isinstance(s, LoihiConv) else None for s, shape in self.projections]
        self.dense = [fxp.DenseKernel(s) if isinstance(s, LoihiDense) else None for s, _ in self.projections]
        for (s, shape), g in zip(self.projections, self.geometry):
            n_out = g.n_out if g is not None else s.n_post
            if n_out != neuron.size:
                raise ValueError(f"{type(s).__name__} makes {n_out} outputs, the population has {neuron.size}")
        self.keep_u = fxp.DECAY_UNITY - (neuron.du + fxp.DS_OFFSET)
        self.keep_v = fxp.DECAY_UNITY - (neuron.dv + fxp.DM_OFFSET)
        self.bias = np.ascontiguousarray(fxp.wrap_int32(fxp.effective_bias(neuron)), dtype=np.int32)
        self.threshold = int(np.clip(neuron.vth << fxp.VTH_SHIFT, -INT32_LIMIT, INT32_LIMIT - 1))

    def _extra(self, spikes: Sequence[np.ndarray]) -> Optional[np.ndarray]:
        """int32 sum of what the projections after the first send (Lava's int32 channel/InPort)."""
        if len(spikes) == 1:
            return None
        total = None
        for s, g, d in zip(spikes[1:], self.geometry[1:], self.dense[1:]):
            if g is not None:
                a = g.activation(s).astype(np.int64)
            else:
                a = fxp.wrap_int32(np.rint(d.activation(s)).astype(np.int64))
            total = a if total is None else fxp.wrap_int32(total + a)
        return np.ascontiguousarray(total, dtype=np.int32)

    def run(self, sources: Sequence[np.ndarray], probe: bool = False, out: Optional[np.ndarray] = None):
        spikes = [np.asarray(s) for s in sources]
        if len(spikes) != len(self.projections) or len({s.shape[:2] for s in spikes}) != 1:
            raise ValueError(f"expected {len(self.projections)} spike arrays [samples, steps, n] of equal "
                             f"samples/steps, got {[s.shape for s in spikes]}")
        n_samples, steps = spikes[0].shape[:2]
        shape = (n_samples, steps, self.neuron.size)
        if out is None:
            out = np.empty(shape, dtype=bool)
        elif out.shape != shape or out.dtype != np.bool_ or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous bool array of shape {shape}")
        extra = self._extra(spikes)
        counts = np.empty((n_samples, self.neuron.size), dtype=np.int64)
        u, v = (np.empty(shape if probe else (0, 0, 0), dtype=np.int64) for _ in range(2))
        g = self.geometry[0]
        self.last_mode = mode = self.choose(spikes[0])
        if mode == "scatter":
            _jit().run_conv_lif(g.words(spikes[0]), g.weights, g.taps, g.tap_ptr, g.params, g.has_wrap,
                                extra if extra is not None else np.zeros((0, 0, 0), np.int32), extra is not None,
                                self.keep_u, self.keep_v, self.bias, self.threshold, out, counts, probe, u, v)
            return out, counts, ((u, v) if probe else None)
        gemm = self._gemm()
        step = max(1, self.CHUNK_ELEMENTS // max(1, steps * self.neuron.size))
        for lo in range(0, n_samples, step):
            hi = min(lo + step, n_samples)
            act = gemm.activation(spikes[0][lo:hi])
            if extra is not None:
                act = fxp.wrap_int32(act.astype(np.int64) + extra[lo:hi]).astype(np.int32)
            _jit().run_lif(np.ascontiguousarray(act), self.keep_u, self.keep_v, self.bias, self.threshold,
                           out[lo:hi], counts[lo:hi], probe, u[lo:hi] if probe else u, v[lo:hi] if probe else v)
        return out, counts, ((u, v) if probe else None)

    def _gemm(self) -> "_Gemm":
        if getattr(self, "_gemm_layout", None) is None:
            self._gemm_layout = _Gemm(self.geometry[0])
        return self._gemm_layout

    def choose(self, spikes: np.ndarray) -> str:
        """``"scatter"`` or ``"gemm"`` for these source spikes (``mode="auto"``): the scatter's adds
        (spikes x taps per pixel x outputs per group) times :attr:`SCATTER_COST` against the GEMM's
        multiply-adds. Both are exact; this only picks the faster."""
        if self.mode != "auto":
            return self.mode
        g = self.geometry[0]
        n_images = int(np.prod(spikes.shape[:2]))
        taps_per_pixel = len(g.taps) / max(1, len(g.tap_ptr) - 1)
        scatter = np.count_nonzero(spikes) * taps_per_pixel * (g.out_shape[0] // g.conv.groups)
        kh, kw = g.conv.kernel_size
        gemm = n_images * g.n_out * g.conv.weight.shape[1] * kh * kw / (g.block[0] * g.block[1])
        return "scatter" if scatter * self.SCATTER_COST <= gemm else "gemm"


def pooled_factor(conv: LoihiConv, in_shape) -> Optional[tuple]:
    """``(bh, bw)`` when ``conv`` equals a ``bh x bw`` sum pooling (stride = kernel) followed by a conv
    with the kernel ``weight[:, :, ::bh, ::bw]`` — what a pooling folded into the next conv looks like
    (:mod:`neurocomp.frontends.torch_layers`) — else ``None``.

    The kernel must be constant on ``bh x bw`` blocks, the stride, padding and kernel size multiples
    of the block, no dilation, and every input pixel the conv reads must lie in a whole block (or in
    the padding). Then ``sum_e K[e] x[S*y + e - P] = sum_a K'[a] pool(x)[S'*y + a - P']`` exactly: the
    engine scatters the (fewer) pooled counts times the weights, a block's taps once."""
    c_in, h, w = in_shape
    kh, kw = conv.kernel_size
    best = None
    for bh in range(1, kh + 1):
        for bw in range(1, kw + 1):
            if bh * bw == 1 or (best and bh * bw <= best[0] * best[1]):
                continue
            ok = True
            for b, k, st, pad, dil, n, axis in ((bh, kh, conv.stride[0], conv.padding[0], conv.dilation[0], h, 2),
                                                (bw, kw, conv.stride[1], conv.padding[1], conv.dilation[1], w, 3)):
                if b == 1:
                    continue
                if k % b or st % b or pad % b or dil != 1:
                    ok = False
                    break
                n_out = (n + 2 * pad - k) // st + 1
                last_read = st * (n_out - 1) + k - 1 - pad
                if n % b and last_read >= (n // b) * b:
                    ok = False
                    break
            if not ok:
                continue
            blocks = conv.weight.reshape(conv.out_channels, -1, kh // bh, bh, kw // bw, bw)
            if np.all(blocks == blocks[:, :, :, :1, :, :1]):
                best = (bh, bw)
    return best


class _Scatter:
    """One LoihiConv laid out for the scatter kernel: weights ``[C_in, kH * kW, C_out/groups]`` int32,
    every input pixel's list of (output position, kernel tap) it reaches, and the geometry as one
    int64 vector. A conv that factors into a sum pooling and a smaller conv (:func:`pooled_factor`)
    is laid out as the smaller conv on the pooled grid."""

    def __init__(self, conv: LoihiConv, in_shape):
        ref = ConvKernel(conv, in_shape)          # validates shapes and the int32 bound
        self.conv, self.in_shape, self.out_shape = conv, ref.in_shape, ref.out_shape
        self.n_in, self.n_out = ref.n_pre, ref.n_post
        self.has_wrap = ref.can_wrap
        c_in, h, w = self.in_shape
        c_out, ho, wo = self.out_shape
        cig = conv.in_channels // conv.groups
        cog = c_out // conv.groups
        self.block = pooled_factor(conv, self.in_shape) or (1, 1)
        bh, bw = self.block
        hp, wp = h // bh, w // bw                                   # the grid the taps address
        weight = conv.weight[:, :, ::bh, ::bw]
        stride = (conv.stride[0] // bh, conv.stride[1] // bw)
        padding = (conv.padding[0] // bh, conv.padding[1] // bw)
        dilation = conv.dilation
        # row ci of the kernel table: the weights input channel ci sends to its group's outputs
        kh, kw = weight.shape[2:]
        wt = np.empty((c_in, kh * kw, cog), dtype=np.int32)
        for g in range(conv.groups):
            wt[g * cig:(g + 1) * cig] = weight[g * cog:(g + 1) * cog].transpose(1, 2, 3, 0).reshape(cig, -1, cog)
        self.weights = np.ascontiguousarray(wt)
        # each (pooled) pixel's taps: (output position oy*Wo + ox, kernel tap ky*kW + kx) with
        # oy*sh + ky*dh - ph = iy and ox*sw + kx*dw - pw = ix
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        oy, ky = np.meshgrid(np.arange(ho), np.arange(kh), indexing="ij")
        ox, kx = np.meshgrid(np.arange(wo), np.arange(kw), indexing="ij")
        iy, ix = (oy * sh + ky * dh - ph).ravel(), (ox * sw + kx * dw - pw).ravel()
        oy, ky, ox, kx = oy.ravel(), ky.ravel(), ox.ravel(), kx.ravel()
        vy, vx = (iy >= 0) & (iy < hp), (ix >= 0) & (ix < wp)
        Y = np.stack([iy[vy], oy[vy], ky[vy]], 1)          # (input row, output row, kernel row)
        X = np.stack([ix[vx], ox[vx], kx[vx]], 1)
        pix = (Y[:, None, 0] * wp + X[None, :, 0]).ravel()
        out_pos = (Y[:, None, 1] * wo + X[None, :, 1]).ravel()
        tap = (Y[:, None, 2] * kw + X[None, :, 2]).ravel()
        order = np.argsort(pix, kind="stable")
        self.taps = np.ascontiguousarray(np.stack([out_pos[order], tap[order]], 1), dtype=np.int64)
        self.tap_ptr = np.searchsorted(pix[order], np.arange(hp * wp + 1)).astype(np.int64)
        self.params = np.array([c_in, h, w, c_out, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, cig, cog, bh, bw, hp, wp],
                               dtype=np.int64)
        self.padded = -(-self.n_in // 8) * 8

    def words(self, spikes: np.ndarray) -> np.ndarray:
        """Spikes ``[samples, steps, n_in]`` as 0/1 bytes viewed 8 at a time (padded with silence)."""
        spikes = np.asarray(spikes)
        if spikes.ndim != 3 or spikes.shape[-1] != self.n_in:
            raise ValueError(f"spikes of shape {spikes.shape}: expected [samples, steps, {self.n_in}] "
                             f"(a {self.in_shape} population)")
        if spikes.dtype != np.bool_:
            spikes = spikes != 0                                       # Lava's bool cast
        if self.padded != self.n_in:
            full = np.zeros(spikes.shape[:2] + (self.padded,), dtype=bool)
            full[..., :self.n_in] = spikes
            spikes = full
        return np.ascontiguousarray(spikes).view(np.uint64)

    def activation(self, spikes: np.ndarray) -> np.ndarray:
        """int32 ``wrap24(conv(s))`` ``[samples, steps, n_out]`` by the scatter kernel (no LIF)."""
        s = np.asarray(spikes)
        out = np.empty(s.shape[:2] + (self.n_out,), dtype=np.int32)
        _jit().conv_activation(self.words(s), self.weights, self.taps, self.tap_ptr, self.params, out)
        return out


class _Gemm:
    """The same conv as an im2col GEMM (the dense alternative to the scatter): per group one BLAS
    matmul of the unfolded ``[images * Ho * Wo, C_in/groups * kH * kW]`` input with the kernel, in
    float32 when every partial sum is an integer below 2**24 (it is bounded by the kernel's
    ``sum |w|``: :attr:`ConvKernel.accumulation_bound`), float64 otherwise — exact either way, in
    any summation order BLAS picks. A folded pooling (:func:`pooled_factor`) is summed first and the
    smaller kernel unfolded, as for the scatter."""

    IMAGES = 256          # images per unfold: keeps the unfolded block near 40 MB for mnist_cnn's conv2

    def __init__(self, scatter: "_Scatter"):
        conv = scatter.conv
        self.scatter = scatter
        self.block = bh, bw = scatter.block
        self.in_shape, self.out_shape = scatter.in_shape, scatter.out_shape
        self.weight = conv.weight[:, :, ::bh, ::bw]
        self.stride = (conv.stride[0] // bh, conv.stride[1] // bw)
        self.padding = (conv.padding[0] // bh, conv.padding[1] // bw)
        self.dilation = conv.dilation
        self.groups = conv.groups
        self.dtype = np.float32 if conv.accumulation_bound <= fxp.FLOAT32_EXACT else np.float64
        cog = conv.out_channels // conv.groups
        self.matrices = [np.ascontiguousarray(self.weight[g * cog:(g + 1) * cog].reshape(cog, -1).T, dtype=self.dtype)
                         for g in range(conv.groups)]
        kh, kw = self.weight.shape[2:]
        c_out, ho, wo = self.out_shape
        self.macs_per_image = ho * wo * c_out * self.weight.shape[1] * kh * kw

    def activation(self, spikes: np.ndarray) -> np.ndarray:
        """int32 ``wrap24(conv(s))`` ``[samples, steps, n_out]``."""
        s = np.asarray(spikes)
        c, h, w = self.in_shape
        c_out, ho, wo = self.out_shape
        bh, bw = self.block
        kh, kw = self.weight.shape[2:]
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        images = s.reshape((-1, c, h, w))
        out = np.empty((len(images), c_out, ho, wo), dtype=np.int32)
        cig, cog = c // self.groups, c_out // self.groups
        for lo in range(0, len(images), self.IMAGES):
            x = images[lo:lo + self.IMAGES]
            x = (x != 0).astype(self.dtype) if x.dtype != np.bool_ else x.astype(self.dtype)
            n = len(x)
            if bh * bw > 1:
                hp, wp = h // bh, w // bw
                x = x[:, :, :hp * bh, :wp * bw].reshape(n, c, hp, bh, wp, bw).sum(axis=(3, 5))
            if ph or pw:
                x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
            win = np.lib.stride_tricks.sliding_window_view(x, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
            win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo]            # [n, C, Ho, Wo, kh, kw]
            for g, mat in enumerate(self.matrices):
                cols = np.ascontiguousarray(win[:, g * cig:(g + 1) * cig].transpose(0, 2, 3, 1, 4, 5))
                res = cols.reshape(n * ho * wo, -1) @ mat                        # exact integers
                out[lo:lo + n, g * cog:(g + 1) * cog] = res.reshape(n, ho, wo, cog).transpose(0, 3, 1, 2)
        out = out.reshape(s.shape[:-1] + (-1,))
        if self.scatter.has_wrap:
            out = wrap24(out).astype(np.int32)
        return out


# ------------------------------------------------------------------------------ the Lava mapping
def lava_shape(shape) -> tuple:
    """A ``(C, H, W)`` population's shape as Lava's Conv ports take it: ``(X, Y, C)`` = ``(W, H, C)``."""
    c, h, w = _shape3(shape)
    return (w, h, c)


def to_lava_layout(x: np.ndarray, shape) -> np.ndarray:
    """Our flat C-major states ``[..., C*H*W]`` -> Lava's ``[..., W, H, C]``."""
    c, h, w = _shape3(shape)
    x = np.asarray(x)
    nd = x.ndim - 1
    return x.reshape(x.shape[:-1] + (c, h, w)).transpose(*range(nd), nd + 2, nd + 1, nd)


def from_lava_layout(x: np.ndarray, shape) -> np.ndarray:
    """Lava's ``[..., W, H, C]`` -> our flat C-major ``[..., C*H*W]``."""
    c, h, w = _shape3(shape)
    x = np.asarray(x)
    nd = x.ndim - 3
    if x.shape[nd:] != (w, h, c):
        raise ValueError(f"expected [..., {w}, {h}, {c}] (a {(c, h, w)} population in Lava's layout), got {x.shape}")
    return x.transpose(*range(nd), nd + 2, nd + 1, nd).reshape(x.shape[:nd] + (c * h * w,))


def lava_permutation(shape) -> np.ndarray:
    """``perm`` with ``lava_flat = ours_flat[perm]``: entry ``j`` of a ``(W, H, C)`` array flattened in C
    order (what ``port.flatten()`` and a flat Dense see) is our C-major entry ``perm[j]``."""
    c, h, w = _shape3(shape)
    return to_lava_layout(np.arange(c * h * w), shape).reshape(-1)


def lava_dense_weight(weight: np.ndarray, pre_shape=None, post_shape=None) -> np.ndarray:
    """A Dense weight ``[n_post, n_pre]`` (our C-major order) for Lava processes that hold a
    ``(C, H, W)`` source (``pre_shape``) and/or target (``post_shape``) in Lava's ``(W, H, C)`` layout,
    flattened: columns (rows) permuted by :func:`lava_permutation`. Flat ends pass ``None``."""
    w = np.asarray(weight)
    if pre_shape is not None and len(pre_shape) == 3:
        w = w[:, lava_permutation(pre_shape)]
    if post_shape is not None and len(post_shape) == 3:
        w = w[lava_permutation(post_shape), :]
    return w


def lava_weight(conv: LoihiConv) -> np.ndarray:
    """The kernel as Lava's ``Conv`` takes it: flipped (Lava convolves) and ``(C_out, W, H, C_in)``, int32."""
    return np.ascontiguousarray(conv.weight[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)).astype(np.int32)


def lava_conv_kwargs(conv: LoihiConv, in_shape) -> dict:
    """Keyword arguments for ``lava.proc.conv.process.Conv`` computing ``conv`` on a ``(C, H, W)`` input:
    the flipped, transposed kernel, ``input_shape=(W, H, C)``, spatial tuples as ``(x, y)``, and
    ``weight_exp=0, num_weight_bits=8`` (which Lava's model ignores and a chip applies as identity to
    LoihiConv's grid of weights), binary spikes (``num_message_bits=0``)."""
    conv.output_shape(in_shape)          # validates the geometry against the input
    (sh, sw), (ph, pw), (dh, dw) = conv.stride, conv.padding, conv.dilation
    return dict(weight=lava_weight(conv), weight_exp=0, input_shape=lava_shape(in_shape), padding=(pw, ph),
                stride=(sw, sh), dilation=(dw, dh), groups=conv.groups, num_weight_bits=8, num_message_bits=0)


def lava_output_shape(conv: LoihiConv, in_shape) -> tuple:
    """The Lava Conv's ``a_out`` shape ``(W_out, H_out, C_out)``."""
    return lava_shape(conv.output_shape(in_shape))


def connect_into_conv(src_port, conv_process, in_shape) -> None:
    """Connect a flat ``(C*H*W,)`` OutPort (a LIF's ``s_out``, a RingBuffer) to a Lava Conv's ``s_in``
    through Lava's virtual ports (reshape to ``(C, H, W)``, transpose to ``(W, H, C)``): the LIF
    populations keep our flat C-major order and need no permutation."""
    src_port.reshape(_shape3(in_shape)).transpose([2, 1, 0]).connect(conv_process.s_in)


def connect_out_of_conv(conv_process, dst_port, out_shape) -> None:
    """Connect a Lava Conv's ``a_out`` ``(W, H, C)`` to a flat ``(C*H*W,)`` InPort (a LIF's ``a_in``)."""
    c, h, w = _shape3(out_shape)
    conv_process.a_out.transpose([2, 1, 0]).reshape((c * h * w,)).connect(dst_port)


# ---------------------------------------------------------------------------- quantiser helpers
def weight_grid(weight: np.ndarray, weight_bits: int = 8) -> tuple:
    """``(lo, hi, step)``: the integers a conv kernel of these (float) weights' sign pattern can take
    so that Loihi's synapse stores them unchanged at ``num_weight_bits=8, weight_exp=0`` and Lava's
    Conv model uses them as they are; ``weight_bits < 8`` coarsens the grid (multiples of
    ``2**(8 - weight_bits + mixed)``) as Dense's truncation would."""
    if not 1 <= int(weight_bits) <= 8:
        raise ValueError(f"weight_bits={weight_bits}: 1..8")
    w = np.asarray(weight)
    if w.size == 0 or w.min() >= 0:
        step = 2 ** (8 - weight_bits)
        return 0, 256 - step, step
    if w.max() <= 0:
        step = 2 ** (8 - weight_bits)
        return -(256 - step), 0, step
    if weight_bits < 2:
        raise ValueError("a mixed-sign kernel needs weight_bits >= 2 (with 1 bit Loihi holds only -256 and 0)")
    step = 2 ** (9 - weight_bits)
    return -256, 256 - step, step


def max_conv_scale(weight: np.ndarray, weight_bits: int = 8) -> float:
    """The largest scale ``S`` at which ``round(w * S)`` stays on :func:`weight_grid` — the conv
    counterpart of Dense's weight-exponent limit (there is no exponent to grow into: issue 803).
    ``inf`` for an all-zero kernel."""
    w = np.asarray(weight, dtype=np.float64)
    lo, hi, _ = weight_grid(w, weight_bits)
    limits = []
    if w.max(initial=0) > 0:
        limits.append(hi / w.max())
    if w.min(initial=0) < 0:
        limits.append(-lo / -w.min())
    return min(limits) if limits else math.inf


def quantize_conv(conv: Conv, scale: float, weight_bits: int = 8) -> LoihiConv:
    """A float :class:`Conv` -> the :class:`LoihiConv` approximating ``weight * scale`` on
    :func:`weight_grid` (round to nearest grid point, clipped), same geometry."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    lo, hi, step = weight_grid(conv.weight, weight_bits)
    q = np.clip(np.rint(conv.weight * scale / step) * step, lo, hi).astype(np.int64)
    if lo < 0 < hi and not q.min() < 0 < q.max():
        q = np.clip(q, -255, 255)     # rounding left one sign only: -256 is outside that sign mode's range
    return LoihiConv(q, **conv.geometry())


def conv_float_equivalent(conv: LoihiConv, scale: float) -> np.ndarray:
    """The float weights a LoihiConv stands for at ``scale`` (exactly: no exponent, no truncation)."""
    return conv.weight.astype(np.float64) / scale
