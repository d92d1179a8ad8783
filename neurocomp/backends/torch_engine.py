"""The batched fixed-point engine in torch integer tensor ops: on CUDA when ``torch.cuda.is_available()``,
else on the CPU. ``simulate(net, spikes, engine="torch")`` (:mod:`neurocomp.backends.batch_engine`).

The semantics are :mod:`neurocomp.backends.fixed_point`'s (Lava 0.10's bit-accurate ``Dense`` and
``LIF``; read there, not here). This module computes exactly the same integers as the numba kernel
(:class:`~neurocomp.backends.fixed_point.LifPopulationKernel`) — tests compare every spike and u/v on
the property tests' networks — by these arguments:

* **dot products** ``acc = W_eff @ s`` (``s`` in {0, 1}) for all samples and steps of a batch as float32
  GEMMs. A projection's sources are cut into column blocks whose column maxima ``max_i |w_ij|`` sum
  to at most ``2**24``; then every partial sum any GEMM forms, in whatever order it blocks its loop,
  is an integer of magnitude ``<= 2**24`` — exact in float32 (the bound of
  :class:`~neurocomp.backends.fixed_point.DenseKernel`). Blocks are converted to int64 and added
  there. Fan-ins up to 65536 with 8-bit weights are one block. That needs IEEE float32 arithmetic:
  when torch is allowed to use reduced precision (``torch.get_float32_matmul_precision() !=
  "highest"``, or TF32 on CUDA) the blocks are float64 GEMMs instead (exact below ``2**53``, same cut).
* **everything after it** in int64 tensors, with explicit two's-complement wraps (:func:`wrap32`)
  wherever Lava's int32 arrays can wrap: the weight-exponent shift (``acc << e`` keeps, after the
  int32 channel, ``low32(low32(acc) << e)``, computed without leaving int64 for ``e < 32``, and nothing
  for ``e >= 32``; ``acc >> -e`` is an arithmetic floor shift, by at most 63 like numpy's), the
  InPort's int32 sum, ``int32(a << 6)``, the decays (Lava's own int64 product ``x * keep < 2**43``,
  then ``sign * (|p| >> 12)``), the int32 sums for ``u`` and ``v``, the single 24-bit wrap of ``u``,
  the clip of ``v``, threshold and reset.
* **which wraps can happen** is decided by :mod:`neurocomp.backends.fixed_point`'s proven bounds, per
  population: a channel wraps only if its activation bound reaches ``2**31``, the InPort sum only if
  the projections' bounds add up to it, ``a << 6`` only if ``64 A`` does; below
  ``NO_WRAP_ACTIVATION_BOUND`` (``A < 2**18``) neither sum for ``u`` nor (for ``|bias| < 2**23``) the
  sum for ``v`` can leave int32 (the induction in that module's docstring). Where a bound allows a
  wrap it is computed; where it proves none, computing it would change no value.

Time is a Python loop of ``[batch, n]`` tensor ops per population (no feedback within a sample, see
:mod:`neurocomp.backends.batch_engine`): a GPU's width pays off with big batches; on a CPU the numba
engine, event-driven, is faster (``benchmarks/bench_sim.py`` measures both), so it stays the default.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from neurocomp.backends.fixed_point import NO_WRAP_ACTIVATION_BOUND, activation_bound
from neurocomp.ir import LoihiDense, LoihiLIF
from neurocomp.ir.loihi import (ACT_SHIFT, DECAY_SHIFT, DECAY_UNITY, DM_OFFSET, DS_OFFSET, MAX_UV, VTH_SHIFT,
                                effective_bias, effective_weights)

FLOAT32_EXACT = 2 ** 24          # every integer of magnitude <= 2**24 is a float32
FLOAT64_EXACT = 2 ** 53
INT32_LIMIT = 2 ** 31
LOW32 = 2 ** 32 - 1
DEVICE_ENV = "NEUROCOMP_TORCH_DEVICE"   # e.g. "cpu" to keep a CUDA machine's engine on the CPU


def default_device() -> str:
    """``$NEUROCOMP_TORCH_DEVICE`` if set, else ``cuda`` when available, else ``cpu``."""
    import torch
    return os.environ.get(DEVICE_ENV) or ("cuda" if torch.cuda.is_available() else "cpu")


def _exact_float32(device) -> bool:
    """Whether float32 GEMMs on ``device`` are IEEE float32 (no TF32/bf16 shortcuts allowed)."""
    import torch
    if torch.get_float32_matmul_precision() != "highest":
        return False
    return not (torch.device(device).type == "cuda" and torch.backends.cuda.matmul.allow_tf32)


def wrap32(x):
    """Two's-complement int32 wrap of an int64 tensor: its low 32 bits read as signed (no intermediate
    leaves int64, whatever ``x``)."""
    return ((x & LOW32) ^ INT32_LIMIT) - INT32_LIMIT


def _decay(x, keep: int):
    """Lava's ``sign(x * keep) * (|x * keep| >> 12)`` on int64 (``|x| < 2**31``, ``keep <= 4096``)."""
    import torch
    p = x * keep
    return torch.sign(p) * (torch.abs(p) >> DECAY_SHIFT)


def column_blocks(w: np.ndarray, limit: int) -> list:
    """Cut the columns of ``w`` ``[n_post, n_pre]`` into ``(start, stop)`` blocks whose column maxima
    ``max_i |w_ij|`` sum to at most ``limit`` (so any sum of a block's weights in a row is below it)."""
    col = np.abs(w).max(axis=0) if w.size else np.zeros(w.shape[1], dtype=np.int64)
    if int(col.max(initial=0)) > limit:
        raise ValueError(f"a weight of magnitude {int(col.max())} exceeds the exact GEMM range {limit}")
    blocks, start, total = [], 0, 0
    for j, c in enumerate(col.tolist()):
        if total + c > limit:
            blocks.append((start, j))
            start, total = j, 0
        total += c
    blocks.append((start, len(col)))
    return blocks


class TorchPopulationKernel:
    """One LoihiLIF population and its incoming LoihiDense projections on ``device`` (default:
    :func:`default_device`); ``run`` has :class:`~neurocomp.backends.fixed_point.LifPopulationKernel`'s
    interface and results. ``block_limit`` (tests) lowers the GEMM block bound to force several blocks."""

    def __init__(self, neuron: LoihiLIF, denses: Sequence[LoihiDense], device: Optional[str] = None,
                 block_limit: Optional[int] = None):
        import torch
        if not denses:
            raise ValueError("a population needs at least one incoming projection")
        for name in ("du", "dv"):
            if not 0 <= getattr(neuron, name) < DECAY_UNITY:
                raise ValueError(f"{name}={getattr(neuron, name)}: Loihi decays are 12-bit (0..4095)")
        self.torch = torch
        self.device = torch.device(device or default_device())
        self.neuron = neuron
        self.size = neuron.size
        exact32 = _exact_float32(self.device)
        self.gemm_dtype = torch.float32 if exact32 else torch.float64
        limit = block_limit or (FLOAT32_EXACT if exact32 else FLOAT64_EXACT)
        self.n_sources, self.projections = [], []
        for d in denses:
            w = effective_weights(d)
            if w.shape[0] != neuron.size:
                raise ValueError(f"weights {w.shape} do not feed {neuron.size} neurons")
            self.n_sources.append(w.shape[1])
            blocks = [(lo, hi, torch.from_numpy(np.ascontiguousarray(w[:, lo:hi].T)).to(self.device, self.gemm_dtype))
                      for lo, hi in column_blocks(w, limit)]
            bound = activation_bound(d)
            self.projections.append((blocks, int(d.weight_exp), bound >= INT32_LIMIT))
        bound = sum(activation_bound(d) for d in denses)       # |a| before the InPort's int32 wrap
        self.wrap_inport = len(denses) > 1 and bound >= INT32_LIMIT
        self.wrap_act = bound * 2 ** ACT_SHIFT >= INT32_LIMIT
        self.wrap_u = bound >= NO_WRAP_ACTIVATION_BOUND
        self.wrap_v = self.wrap_u and bool(np.abs(effective_bias(neuron)).max(initial=0) >= 2 ** 23)
        self.keep_u = DECAY_UNITY - (neuron.du + DS_OFFSET)
        self.keep_v = DECAY_UNITY - (neuron.dv + DM_OFFSET)
        # Lava adds the bias in int32; v (clipped to 24 bits) compares the same with any threshold
        # beyond int32 as with the int32 bound (the numba kernel's reading too)
        self.bias = wrap32(torch.from_numpy(effective_bias(neuron)).to(self.device, torch.int64))
        self.threshold = int(np.clip(neuron.vth << VTH_SHIFT, -INT32_LIMIT, INT32_LIMIT - 1))

    def _message(self, spikes, blocks, weight_exp: int, wraps: bool):
        """What one Dense sends over its int32 channel, ``[rows, n]`` int64, for spikes ``[rows, n_pre]``
        (``wraps``: its activation bound reaches int32)."""
        torch = self.torch
        acc = None
        for lo, hi, w_t in blocks:
            x = spikes if (lo, hi) == (0, spikes.shape[1]) else spikes[:, lo:hi]
            part = (x.to(self.gemm_dtype) @ w_t).to(torch.int64)   # exact (module docstring)
            acc = part if acc is None else acc + part
        if acc is None:
            acc = torch.zeros((spikes.shape[0], self.size), dtype=torch.int64, device=self.device)
        if weight_exp >= 32:      # the int32 channel keeps none of acc << e
            return torch.zeros_like(acc)
        if weight_exp >= 0:
            return wrap32((acc & LOW32) << weight_exp) if wraps else acc << weight_exp
        shifted = acc >> min(-weight_exp, 63)
        return wrap32(shifted) if wraps else shifted

    def run(self, sources: Sequence[np.ndarray], probe: bool = False, out: Optional[np.ndarray] = None):
        """``(spikes [samples, steps, n] bool, counts [samples, n] int64, (u, v) int64 or None)``, each
        sample from ``u = v = 0``; ``sources``: one spike array ``[samples, steps, n_pre]`` per projection
        (non-zero = spike, Lava's bool cast); ``out``: a bool array to write the spikes into."""
        torch = self.torch
        arrays = [np.asarray(s) for s in sources]
        shapes = [s.shape[-1] if s.ndim == 3 else None for s in arrays]
        if shapes != self.n_sources or len({s.shape[:2] for s in arrays}) != 1:
            raise ValueError(f"spikes of shapes {[s.shape for s in arrays]} do not match projections from "
                             f"{self.n_sources} source neurons ([samples, steps, n] each)")
        n_samples, steps = arrays[0].shape[:2]
        shape = (n_samples, steps, self.size)
        if out is not None and (out.shape != shape or out.dtype != np.bool_):
            raise ValueError(f"out must be a bool array of shape {shape}")
        rows = n_samples * steps
        a = None
        with torch.no_grad():
            for s, (blocks, e, wraps) in zip(arrays, self.projections):
                s = torch.from_numpy(np.ascontiguousarray(s if s.dtype == np.bool_ else s != 0)).to(self.device)
                m = self._message(s.reshape(rows, -1), blocks, e, wraps)
                a = m if a is None else a + m
            if self.wrap_inport:
                a = wrap32(a)                                     # the InPort's int32 sum
            a = a << ACT_SHIFT
            if self.wrap_act:
                a = wrap32(a)                                     # int32(a << 6)
            act = a.reshape(n_samples, steps, self.size).transpose(0, 1).contiguous()   # [steps, samples, n]
            u = torch.zeros((n_samples, self.size), dtype=torch.int64, device=self.device)
            v = torch.zeros_like(u)
            spikes = torch.empty(shape, dtype=torch.bool, device=self.device)
            u_out = torch.empty(shape, dtype=torch.int64, device=self.device) if probe else None
            v_out = torch.empty(shape, dtype=torch.int64, device=self.device) if probe else None
            zero = torch.zeros((), dtype=torch.int64, device=self.device)
            for t in range(steps):
                # u: int32 sum of the decayed current and int32(a << 6), then Lava's single 24-bit wrap
                u = _decay(u, self.keep_u) + act[t]
                if self.wrap_u:
                    u = wrap32(u)
                u = torch.where(u > MAX_UV, u - 2 * MAX_UV, u)
                u = torch.where(u <= -MAX_UV, u + 2 * MAX_UV, u)
                # v: int32 sums of decayed voltage, u and bias, clipped to 24 bits; spike and reset
                v = _decay(v, self.keep_v) + u
                v = wrap32(wrap32(v) + self.bias) if self.wrap_v else v + self.bias
                v = torch.clamp(v, 1 - MAX_UV, MAX_UV - 1)
                fired = v > self.threshold
                v = torch.where(fired, zero, v)
                spikes[:, t] = fired
                if probe:
                    u_out[:, t] = u
                    v_out[:, t] = v
            counts = spikes.sum(dim=1, dtype=torch.int64).cpu().numpy()
            host = spikes.cpu().numpy()
            uv = (u_out.cpu().numpy(), v_out.cpu().numpy()) if probe else None
        if out is not None:
            out[...] = host
            host = out
        return host, counts, uv


class TorchFixedPopulation:
    """A population for :func:`neurocomp.backends.batch_engine.simulate` (``engine="torch"``)."""

    def __init__(self, pop, incoming):
        self.sources = [proj.source for proj in incoming]
        self.kernel = TorchPopulationKernel(pop.neuron, [proj.synapse for proj in incoming])

    def run(self, emitted, probe: bool, out=None):
        spikes, counts, uv = self.kernel.run([emitted(s) for s in self.sources], probe=probe, out=out)
        return spikes, counts, (dict(zip(("u", "v"), uv)) if probe else None)
