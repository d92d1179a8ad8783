"""Graded (direct-current) input as Lava 0.10 computes it: the semantics, two exact engines.

A projection whose synapse has ``num_message_bits > 0`` (:class:`~neurocomp.ir.synapses.LoihiDense`,
:class:`~neurocomp.ir.synapses.LoihiConv`) receives integer values, not spikes — what a
:class:`~neurocomp.ir.encodings.CurrentEncoding` input plays (a ``RingBuffer`` of int32 data in Lava).

What Lava computes (read in ``lava/proc/dense/models.py``, ``lava/proc/conv/{models,utils}.py``,
``lava/magma/core/model/py/ports.py``; measured on Lava's runtime by ``tests/test_graded_vs_lava.py``)
------------------------------------------------------------------------------------------------
Dense, ``PyDenseModelBitAcc`` with ``num_message_bits > 0``
    ``s_in = self.s_in.recv()``: the InPort adds the channel's int32 array to ``np.zeros(shape, bool)``,
    so the values arrive as int32 (``num_message_bits`` itself is only compared with 0; nothing clips the
    values to it). ``a_accum = self.weights.dot(s_in)`` — the weights are int32 after Lava's 8-bit clip
    and ``num_weight_bits`` truncation (:func:`~neurocomp.ir.loihi.effective_weights`), so this is an
    **int32 dot product, modulo 2**32** — unlike binary spikes, whose ``weights[:, s].sum(axis=1)`` sums in
    int64 and only the channel wraps. Then ``a_accum << weight_exp`` (int32: wraps; 0 for ``e >= 32``) or
    ``a_accum >> -weight_exp`` (arithmetic shift *of the wrapped value*; the sign for ``-e >= 32``). The
    int32 result is sent one step later, exactly as a binary Dense's. Measured: weights ``[128, 128]``,
    values ``[2**24 - 1, 2**24 - 1]``, ``weight_exp = -8``: Lava's LIF gets ``a = -1`` (``wrap32(2**32 -
    256) >> 8``), not the ``2**24 - 1`` an int64 sum would give.
Conv, ``PyConvModelFixed`` with ``num_message_bits > 0``
    ``s_in`` arrives as int32 (not cast to bool), ``conv_scipy`` convolves it with the (float64-padded)
    kernel in float64 — exact while every partial sum is below 2**53 — the result is cast to int32 and
    wrapped to 24 bits (``signed_clamp``), as for spikes. The cast is undefined past 2**31, so a graded
    conv must keep ``sum |w| * (2**num_message_bits - 1) < 2**31`` (:class:`GradedConvKernel` refuses
    more); ``weight_exp`` is ignored as for spikes (lava issue 803).
The LIF then treats these messages exactly as binary ones (:mod:`neurocomp.backends.fixed_point`).

The values themselves: integers ``0 .. 2**num_message_bits - 1`` (what a graded message of that many
bits carries; the engines refuse anything else, though Lava's model would not clip it).

Engines (the ``cpu`` target routes a population here when one of its incoming synapses is graded)
-------------------------------------------------------------------------------------------------
* reference (``engine="numpy"``): :class:`GradedDenseKernel` (the dot product as a float64 GEMM when its
  bound ``sum |w| * max x`` is below 2**53 — exact in any summation order — else an int64 matmul, exact
  modulo 2**64; then Lava's int32 wrap and shift), :class:`GradedConvKernel` (:func:`~neurocomp.backends.
  conv.correlate` in float64, exact below 2**53, then the 24-bit wrap); binary projections beside them
  through their own reference kernels; Lava's InPort sum and :class:`~neurocomp.backends.fixed_point.
  LifKernel` with every int32 wrap emulated;
* compiled (``engine="jit"``): :class:`GradedPopulationKernel` — numba kernels computing the same
  messages in int64/int32 integer arithmetic (:mod:`neurocomp.backends.graded_jit`), once per distinct
  step (a direct-current input repeats one row: :func:`~neurocomp.ir.encodings.encode` returns it as a
  zero-stride view, and the kernel computes one step and reuses it), then the LIF compiled.

Both are compared with Lava's own process models spike for spike and u/v for u/v, at the message-bit
edges (0 and ``2**k - 1``, int32 wraps of the dot product and of ``a << 6``) by
``tests/test_graded_vs_lava.py``, and with each other on many more random layers.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from neurocomp.backends import fixed_point as fxp
from neurocomp.ir import LoihiDense, LoihiLIF
from neurocomp.ir.synapses import LoihiConv

INT32_LIMIT = 2 ** 31
CONV_HALF = 2 ** 23


def is_graded(synapse) -> bool:
    """Whether a synapse takes graded values (``num_message_bits > 0``)."""
    return bool(getattr(synapse, "num_message_bits", 0))


def max_value(synapse) -> int:
    """The largest value a graded synapse's messages carry: ``2**num_message_bits - 1``."""
    return 2 ** synapse.num_message_bits - 1


def check_values(values: np.ndarray, synapse, what: str = "graded input") -> np.ndarray:
    """``values`` as an integer array, refusing values outside ``0 .. 2**num_message_bits - 1``."""
    x = np.asarray(values)
    if x.dtype == np.bool_:
        return x
    if not np.issubdtype(x.dtype, np.integer):
        if not np.array_equal(x, np.rint(x)):
            raise ValueError(f"{what}: values must be integers (a graded message is an integer)")
    if x.size:
        lo, hi = x.min(), x.max()
        if lo < 0 or hi > max_value(synapse):
            raise ValueError(f"{what}: values {int(lo)}..{int(hi)} outside 0..{max_value(synapse)} "
                             f"(num_message_bits={synapse.num_message_bits})")
    return x


def _wrap24(x: np.ndarray) -> np.ndarray:
    return ((x + CONV_HALF) % (2 * CONV_HALF)) - CONV_HALF


def dense_message(acc: np.ndarray, weight_exp: int) -> np.ndarray:
    """What a graded Dense sends for exact dot products ``acc`` (int64): ``int32(acc)`` shifted as numpy
    shifts an int32 (module docstring)."""
    a = fxp.wrap_int32(np.asarray(acc, dtype=np.int64))
    if weight_exp >= 32:
        return np.zeros_like(a)
    if weight_exp >= 0:
        return fxp.wrap_int32(a << weight_exp)
    return a >> min(-weight_exp, 63)


# --------------------------------------------------------------------------- the numpy reference
class GradedDenseKernel:
    """Exact ``int32(W_eff @ x)`` shifted by ``weight_exp`` — Lava's graded Dense — for many steps at once.

    ``activation(values [..., n_pre])`` -> int64 messages ``[..., n_post]`` (in int32 range). ``bound``
    is what :func:`~neurocomp.backends.fixed_point.channel_sum` reads: any int32.
    """

    ROW_BLOCK = 4096

    def __init__(self, dense: LoihiDense):
        if not is_graded(dense):
            raise ValueError("GradedDenseKernel: the synapse takes binary spikes (num_message_bits=0)")
        self.dense = dense
        self.weight = fxp.effective_weights(dense)                 # int64 [n_post, n_pre]
        self.n_post, self.n_pre = self.weight.shape
        l1 = int(np.abs(self.weight).sum(axis=1).max()) if self.weight.size else 0
        self.dot_bound = l1 * max_value(dense)
        self.float_gemm = self.dot_bound < fxp.FLOAT64_EXACT
        self.weight_t = np.ascontiguousarray(self.weight.T.astype(np.float64 if self.float_gemm else np.int64))
        self.bound = INT32_LIMIT
        self.wraps = True

    def activation(self, values: np.ndarray) -> np.ndarray:
        x = check_values(values, self.dense)
        flat = x.reshape(-1, self.n_pre)
        out = np.empty((flat.shape[0], self.n_post), dtype=np.int64)
        for lo in range(0, flat.shape[0], self.ROW_BLOCK):
            block = flat[lo:lo + self.ROW_BLOCK]
            if self.float_gemm:
                acc = np.rint(block.astype(np.float64) @ self.weight_t).astype(np.int64)
            else:                                   # int64 wraps modulo 2**64: still right modulo 2**32
                acc = block.astype(np.int64) @ self.weight_t
            out[lo:lo + len(block)] = dense_message(acc, self.dense.weight_exp)
        return out.reshape(x.shape[:-1] + (self.n_post,))


class GradedConvKernel:
    """Exact ``wrap24(conv(x))`` — Lava's graded Conv — flat C-major ``(C, H, W)`` on both sides."""

    ROW_BLOCK = 1024

    def __init__(self, conv: LoihiConv, in_shape):
        if not is_graded(conv):
            raise ValueError("GradedConvKernel: the synapse takes binary spikes (num_message_bits=0)")
        self.conv = conv
        self.in_shape = tuple(int(d) for d in in_shape)
        self.out_shape = conv.output_shape(self.in_shape)
        self.n_pre, self.n_post = int(np.prod(self.in_shape)), int(np.prod(self.out_shape))
        self.sum_bound = conv.accumulation_bound * max_value(conv)
        if self.sum_bound >= INT32_LIMIT:
            raise ValueError(f"graded conv: sum |w| x max value = {conv.accumulation_bound} x {max_value(conv)} "
                             f"reaches 2**31, where Lava's float64 -> int32 cast is undefined; use fewer "
                             f"num_message_bits or smaller weights")
        self.bound = min(self.sum_bound, CONV_HALF)
        self.wraps = False

    def activation(self, values: np.ndarray) -> np.ndarray:
        from neurocomp.backends.conv import correlate
        x = check_values(values, self.conv)
        if x.shape[-1] != self.n_pre:
            raise ValueError(f"values have {x.shape[-1]} channels, the conv reads {self.n_pre} {self.in_shape}")
        flat = x.reshape((-1,) + self.in_shape)
        out = np.empty((flat.shape[0], self.n_post), dtype=np.int64)
        c = self.conv
        for lo in range(0, flat.shape[0], self.ROW_BLOCK):
            block = flat[lo:lo + self.ROW_BLOCK]
            acc = correlate(block.astype(np.float64), c.weight, c.stride, c.padding, c.dilation, c.groups)
            out[lo:lo + len(block)] = _wrap24(np.rint(acc).astype(np.int64).reshape(len(block), -1))
        return out.reshape(x.shape[:-1] + (self.n_post,))


def reference_kernel(synapse, pre_shape):
    """The numpy reference kernel of any fixed-point synapse, graded or binary."""
    if is_graded(synapse):
        return GradedConvKernel(synapse, pre_shape) if isinstance(synapse, LoihiConv) else GradedDenseKernel(synapse)
    from neurocomp.backends.conv import activation_kernel
    return activation_kernel(synapse, pre_shape)


def _constant_steps(x: np.ndarray) -> bool:
    """Whether ``x [samples, steps, n]`` is a zero-stride view repeating one row per sample (encode's
    direct-current input)."""
    return x.ndim == 3 and x.shape[1] > 1 and x.strides[1] == 0


def reference_run(neuron: LoihiLIF, projections: Sequence[tuple], sources: Sequence[np.ndarray],
                  probe: bool = False):
    """The reference path for one population with graded (and maybe binary) inputs: numpy messages,
    Lava's InPort sum (int32), then :class:`~neurocomp.backends.fixed_point.LifKernel` step by step with
    every int32 wrap emulated. ``projections``: ``(synapse, pre_shape)`` pairs; ``sources``: values or
    spikes ``[samples, steps, n_pre]``. Returns ``(spikes, counts, (u, v) or None)``."""
    kernels = [reference_kernel(s, shape) for s, shape in projections]
    acts = [k.activation(np.asarray(s)).astype(np.float64) for k, s in zip(kernels, sources)]
    a = fxp.wrap_int32(sum(acts[1:], acts[0])) if len(acts) > 1 else acts[0]
    lif = fxp.LifKernel(neuron, activation_bound=None)
    act = lif.scaled_activation(np.asarray(a, dtype=np.float64))
    n_samples, steps, n = act.shape
    spikes = np.empty((n_samples, steps, n), dtype=bool)
    u, v = np.zeros((n_samples, n)), np.zeros((n_samples, n))
    us = np.empty((n_samples, steps, n), dtype=np.int64) if probe else None
    vs = np.empty((n_samples, steps, n), dtype=np.int64) if probe else None
    for t in range(steps):
        lif.step(u, v, act[:, t], spikes[:, t])
        if probe:
            us[:, t], vs[:, t] = u, v
    return spikes, spikes.sum(axis=1).astype(np.int64), ((us, vs) if probe else None)


# ------------------------------------------------------------------------------ the cpu engine
_JIT = None


def _jit():
    global _JIT
    if _JIT is None:
        fxp._jit_module()                    # sets NUMBA_CACHE_DIR when needed, imports numba
        from neurocomp.backends import graded_jit
        _JIT = graded_jit
    return _JIT


class GradedPopulationKernel:
    """A LoihiLIF population fed by graded (and maybe binary) projections, compiled.

    ``projections``: ``(synapse, pre_shape)`` pairs in the order of ``run``'s ``sources``. ``run(sources,
    probe, out)`` returns ``(spikes [samples, steps, n] bool, counts [samples, n] int64, (u, v) int64 or
    None)`` like :class:`~neurocomp.backends.fixed_point.LifPopulationKernel`, each sample from rest.

    Graded Dense and Conv messages come from :mod:`neurocomp.backends.graded_jit` (int64 sums, Lava's
    int32 dot/shift or 24-bit wrap), computed once per sample when the source repeats one row over the
    steps (a zero-stride view) and otherwise once per distinct step; binary projections beside them
    through their reference kernels (exact); the InPort sum in int32; the LIF compiled.
    """

    def __init__(self, neuron: LoihiLIF, projections: Sequence[tuple]):
        for name in ("du", "dv"):
            if not 0 <= getattr(neuron, name) < fxp.DECAY_UNITY:
                raise ValueError(f"{name}={getattr(neuron, name)}: Loihi decays are 12-bit (0..4095)")
        self.neuron = neuron
        self.projections = [(s, tuple(shape)) for s, shape in projections]
        self.parts = []
        for syn, shape in self.projections:
            if is_graded(syn) and isinstance(syn, LoihiConv):
                ref = GradedConvKernel(syn, shape)            # validates the geometry and the int32 bound
                c, h, w = ref.in_shape
                co, ho, wo = ref.out_shape
                params = np.array([c, h, w, co, ho, wo, *syn.kernel_size, *syn.stride, *syn.padding, *syn.dilation,
                                   syn.groups], dtype=np.int64)
                self.parts.append(("conv", np.ascontiguousarray(syn.weight, dtype=np.int32), params, ref.n_post))
            elif is_graded(syn):
                w = fxp.effective_weights(syn)
                self.parts.append(("dense", np.ascontiguousarray(w.T, dtype=np.int32), syn.weight_exp, w.shape[0]))
            else:
                ref = reference_kernel(syn, shape)
                self.parts.append(("binary", ref, None, ref.n_post))
        for (syn, _), part in zip(self.projections, self.parts):
            if part[3] != neuron.size:
                raise ValueError(f"{type(syn).__name__} makes {part[3]} outputs, the population has {neuron.size}")
        self.keep_u = fxp.DECAY_UNITY - (neuron.du + fxp.DS_OFFSET)
        self.keep_v = fxp.DECAY_UNITY - (neuron.dv + fxp.DM_OFFSET)
        self.bias = np.ascontiguousarray(fxp.wrap_int32(fxp.effective_bias(neuron)), dtype=np.int32)
        self.threshold = int(np.clip(neuron.vth << fxp.VTH_SHIFT, -INT32_LIMIT, INT32_LIMIT - 1))

    def _messages(self, syn, part, source: np.ndarray, rows: int) -> np.ndarray:
        """int32 messages ``[samples, rows, n]`` of one projection (``rows``: 1 = the same every step)."""
        kind, a, b, n = part
        s = source[:, :1] if rows == 1 else source
        out = np.empty(s.shape[:2] + (n,), dtype=np.int32)
        if kind == "binary":
            out[...] = fxp.wrap_int32(np.rint(a.activation(s)).astype(np.int64))
            return out
        values = np.ascontiguousarray(check_values(s, syn), dtype=np.int32)
        if kind == "dense":
            _jit().dense_messages(values, a, b, out)
        else:
            _jit().conv_messages(values, a, b, out)
        return out

    def run(self, sources: Sequence[np.ndarray], probe: bool = False, out: Optional[np.ndarray] = None):
        arrays = [np.asarray(s) for s in sources]
        if len(arrays) != len(self.projections) or len({a.shape[:2] for a in arrays}) != 1 or \
                any(a.ndim != 3 for a in arrays):
            raise ValueError(f"expected {len(self.projections)} arrays [samples, steps, n] of equal samples/steps, "
                             f"got {[a.shape for a in arrays]}")
        n_samples, steps = arrays[0].shape[:2]
        rows = 1 if all(_constant_steps(a) or steps == 1 for a in arrays) else steps
        total = None
        for (syn, _), part, src in zip(self.projections, self.parts, arrays):
            m = self._messages(syn, part, src, rows)
            total = m if total is None else fxp.wrap_int32(total.astype(np.int64) + m).astype(np.int32)
        shape = (n_samples, steps, self.neuron.size)
        if out is None:
            out = np.empty(shape, dtype=bool)
        elif out.shape != shape or out.dtype != np.bool_ or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous bool array of shape {shape}")
        counts = np.empty((n_samples, self.neuron.size), dtype=np.int64)
        u, v = (np.empty(shape if probe else (0, 0, 0), dtype=np.int64) for _ in range(2))
        _jit().run_lif(np.ascontiguousarray(total), steps, self.keep_u, self.keep_v, self.bias, self.threshold,
                       out, counts, probe, u, v)
        return out, counts, ((u, v) if probe else None)
