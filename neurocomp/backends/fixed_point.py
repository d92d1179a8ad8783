"""Lava 0.10's Loihi fixed-point arithmetic, vectorised over a batch — the one home of these semantics.

Read against ``lava/proc/lif/models.py`` (``AbstractPyLifModelFixed``), ``lava/proc/dense/models.py``
(``AbstractPyDenseModelBitAcc``), ``lava/utils/weightutils.py`` and the port plumbing in
``lava/magma/core/model/py/ports.py``:

Dense
    weights are clipped to 8 bits for their sign mode (mixed: ``[-256, 255]``), then the low
    ``8 - num_weight_bits + mixed`` bits are dropped. Per step the input spikes are cast to bool
    (``num_message_bits=0``), ``acc = sum_j w_ij s_j`` is summed in int64 and shifted,
    ``acc << weight_exp`` (or ``acc >> -weight_exp``, a floor shift); the result travels over an
    int32 channel (wraps to int32). An InPort fed by several Dense adds their messages in int32.
LIF (``PyLifModelBitAcc`` / ``PyLifResetModelBitAcc``)
    ``u' = int32(sign(p)*(|p| >> 12)) + int32(a << 6)`` with ``p = u*(4096-(du+1))`` (int32 sum),
    then one 24-bit wrap: ``u' > 2**23 -> u' - 2**24``; ``u' <= -2**23 -> u' + 2**24``;
    ``v' = int32(sign(q)*(|q| >> 12)) + u' + (bias_mant << bias_exp)`` with ``q = v*(4096-dv)``,
    clipped to ``±(2**23-1)``; spike where ``v' > vth << 6``; ``v' = 0`` there.

How this module computes it exactly, and fast
---------------------------------------------
Every quantity is an integer; we carry them in IEEE floats, which represent integers exactly up to
2**24 (float32) and 2**53 (float64), and do integer arithmetic with them as long as every
intermediate stays below those bounds:

* **Dense accumulation** ``W @ s`` with ``s`` in {0, 1}: every partial sum BLAS forms, in whatever
  order it blocks the loop, is bounded by the row's L1 norm ``L = max_i sum_j |w_ij|``. So a float32
  GEMM is exact when ``L <= 2**24`` (``n_pre * 256 <= 2**24``: any fan-in up to 65536 with 8-bit
  weights), float64 otherwise (exact up to ``L <= 2**53``). :class:`DenseKernel` picks by ``L``.
  The weight exponent is a multiplication by a power of two (exact), a negative one a ``floor``.
* **LIF decay** ``sign(p)*(|p| >> 12)`` is ``trunc(u * keep/4096)``: ``keep/4096`` is an exact
  dyadic constant and ``|u * keep| < 2**31 * 2**12 = 2**43 < 2**53``, so the float64 product is the
  exact rational and ``trunc`` rounds it toward zero exactly as Lava's sign-magnitude shift does.
* **int32 wrap-arounds.** Let ``A`` bound ``|a|`` (sum over incoming projections of ``L * 2**e``).
  If ``A < 2**18`` then, by induction from ``u = 0``, ``|u| <= 2**23`` before every step, so the
  pre-wrap current ``|decay(u) + 64 a| < 2**23 + 2**24 = 3 * 2**23``: no int32 ever wraps, Lava's
  single 24-bit wrap brings ``u`` back into 24 bits, ``64 a`` fits a float32, and
  ``|decay(v) + u + bias| < 2**31`` for any legal bias (``|bias| < 2**23``). :class:`LifKernel`
  then skips the int32 emulation altogether. Above that bound (huge fan-in or ``weight_exp``) it
  reproduces Lava's int32 wrap-arounds of the channel, of ``a << 6`` and of the current sum with
  :func:`wrap_int32`, exactly in float64, whenever a value actually leaves the int32 range.

Two implementations of the same semantics
-----------------------------------------
* the numpy path above (:class:`DenseKernel`, :func:`channel_sum`, :class:`LifKernel`, :func:`lif_step`):
  dense float GEMMs, exact by the bounds just proven; the reference, also used step by step by the
  learning simulator;
* :class:`LifPopulationKernel`, the ``cpu`` target's engine: per sample and step it adds only the
  int16 weight rows of the sources that spiked, in int32/int64 integer arithmetic (exact by
  construction, see the class), fused with the LIF update, compiled by numba; its code is in
  :mod:`neurocomp.backends.fixed_point_jit`, imported on first use.

The test suite runs Lava's own process models on random networks with extreme parameters (the
24-bit wrap, the v clip, all sign modes and weight widths, both signs of ``weight_exp``, huge
exponents that wrap the int32 channel) through both and compares every spike and every u/v value,
and compares the two with each other on many more random networks.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from neurocomp.ir import LoihiDense, LoihiLIF
from neurocomp.ir.loihi import (ACT_SHIFT, DECAY_SHIFT, DECAY_UNITY, DM_OFFSET, DS_OFFSET, EXCITATORY,  # noqa: F401
                                INHIBITORY, MAX_UV, MIXED, UV_BITS, VTH_SHIFT, effective_bias, effective_weights)

FLOAT32_EXACT = 2 ** 24   # every integer of magnitude <= 2**24 is a float32
FLOAT64_EXACT = 2 ** 53   # ... <= 2**53 a float64
INT32_LIMIT = 2 ** 31
# |a| < this keeps u in 24 bits and every int32 of Lava's LIF un-wrapped (module docstring)
NO_WRAP_ACTIVATION_BOUND = 2 ** 18


# ------------------------------------------------------------------------------ integer helpers
def wrap_int32(x: np.ndarray) -> np.ndarray:
    """Two's-complement int32 wrap-around of integer values (int64 or integer-valued float64)."""
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        return ((x + 2 ** 31) % 2 ** 32) - 2 ** 31
    return x - 2.0 ** 32 * np.floor((x + 2.0 ** 31) / 2.0 ** 32)


def shift_activation(a: np.ndarray, weight_exp: int) -> np.ndarray:
    """``a << weight_exp`` or the floor shift ``a >> -weight_exp`` on integer arrays."""
    return np.left_shift(a, weight_exp) if weight_exp > 0 else np.right_shift(a, -weight_exp)


def accumulation_bound(dense: LoihiDense) -> int:
    """``max_i sum_j |w_ij|`` of the effective weights: bounds ``|W @ s|`` for binary ``s``."""
    w = effective_weights(dense)
    return int(np.abs(w).sum(axis=1).max()) if w.size else 0


def activation_bound(dense: LoihiDense) -> int:
    """Bound on ``|a|`` this projection can deliver before the channel's int32 wrap."""
    acc = accumulation_bound(dense)
    e = dense.weight_exp
    return acc << e if e >= 0 else -((-acc) >> -e)  # ceil(acc / 2**-e) for the floor shift


# --------------------------------------------------------------------------------- Dense kernel
class DenseKernel:
    """Exact ``a = shift(W_eff @ s)`` as Lava's ``PyDenseModelBitAcc`` sends it, for many steps at once.

    ``activation(spikes)`` takes spikes ``[..., n_pre]`` (any dtype; non-zero = spike, as Lava's
    bool cast) and returns the integer activations ``[..., n_post]`` as floats (float32 when they
    fit 24 bits). Float32 GEMM when the accumulation provably fits 24 bits, float64 otherwise; the
    int32 channel wrap only when ``a`` can reach 2**31.
    """

    ROW_BLOCK = 4096  # rows per GEMM call: the float copy of the spikes is n_pre * 16 KiB

    def __init__(self, dense: LoihiDense):
        self.dense = dense
        w = effective_weights(dense)
        self.n_post, self.n_pre = w.shape
        self.accumulation_bound = accumulation_bound(dense)
        if self.accumulation_bound >= FLOAT64_EXACT:
            raise ValueError(f"row weight sums up to {self.accumulation_bound} exceed exact float64 range")
        self.bound = activation_bound(dense)
        self.wraps = self.bound >= INT32_LIMIT          # the int32 channel can wrap
        e = dense.weight_exp
        # fold a non-negative exponent into the weights when the scaled sums stay exact in float32
        self.fold_exp = e >= 0 and not self.wraps and self.bound <= FLOAT32_EXACT
        gemm_bound = self.bound if self.fold_exp else self.accumulation_bound
        self.gemm_dtype = np.float32 if gemm_bound <= FLOAT32_EXACT else np.float64
        # the activations themselves: float32 when they provably fit 24 bits (then the result of a
        # float32 GEMM, or its exact floor shift, needs no conversion)
        small = not self.wraps and self.bound <= FLOAT32_EXACT and self.gemm_dtype == np.float32
        self.dtype = np.float32 if small else np.float64
        self.weight_t = np.ascontiguousarray((w * (2 ** e if self.fold_exp else 1)).T.astype(self.gemm_dtype))
        self._buffers: dict = {}

    def _finish(self, acc: np.ndarray) -> np.ndarray:
        """Apply the weight exponent (unless folded) and the int32 channel wrap to exact sums."""
        e = self.dense.weight_exp
        if self.fold_exp:
            return acc
        if e < 0:
            out = np.floor(acc * 2.0 ** e)              # Lava: arithmetic right shift of int64
        elif self.wraps:
            # Lava shifts in int64 and the int32 channel keeps the low 32 bits: reduce first so the
            # product stays exact in float64 (only acc mod 2**(32-e) survives the wrap)
            m = 2.0 ** (32 - e) if e < 32 else 1.0
            out = (acc - m * np.floor(acc / m)) * 2.0 ** min(e, 32)
        else:
            out = acc * 2.0 ** e
        return wrap_int32(out) if self.wraps else out

    def _buffer(self, name: str, rows: int, cols: int) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < rows:
            buf = self._buffers[name] = np.empty((rows, cols), dtype=self.gemm_dtype)
        return buf

    def activation(self, spikes: np.ndarray) -> np.ndarray:
        """Activations ``[..., n_post]`` for spikes ``[..., n_pre]``, in blocks of :attr:`ROW_BLOCK` rows.

        Reuses two preallocated buffers (fresh 50 MB arrays per block cost more in page faults
        than the cast itself) and writes the GEMM straight into the result when nothing is left
        to do after it.
        """
        spikes = np.asarray(spikes)
        flat = spikes.reshape(-1, self.n_pre)           # a view for the contiguous arrays we pass
        out = np.empty((flat.shape[0], self.n_post), dtype=self.dtype)
        rows = min(self.ROW_BLOCK, flat.shape[0])
        x = self._buffer("x", rows, self.n_pre)
        direct = self.fold_exp and self.gemm_dtype == self.dtype      # GEMM result is final
        acc = None if direct else self._buffer("acc", rows, self.n_post)
        for lo in range(0, flat.shape[0], self.ROW_BLOCK):
            block = flat[lo:lo + self.ROW_BLOCK]
            r = len(block)
            if block.dtype == np.bool_:
                np.copyto(x[:r], block)
            else:
                np.not_equal(block, 0, out=x[:r])                      # Lava's bool cast of s_in
            if direct:
                np.matmul(x[:r], self.weight_t, out=out[lo:lo + r])
            else:
                np.matmul(x[:r], self.weight_t, out=acc[:r])
                out[lo:lo + r] = self._finish(acc[:r].astype(self.dtype, copy=False))
        return out.reshape(spikes.shape[:-1] + (self.n_post,))


def channel_sum(activations: Sequence[np.ndarray], kernels: Sequence[DenseKernel]) -> np.ndarray:
    """What a LIF's ``a_in`` InPort receives from several Dense: their sum, wrapped to int32 if it can."""
    if len(activations) == 1:
        return activations[0]
    total = activations[0].astype(np.float64)
    for a in activations[1:]:
        total += a
    if sum(k.bound for k in kernels) >= INT32_LIMIT:
        total = wrap_int32(total)
    return total


# ----------------------------------------------------------------------------------- LIF kernel
class LifKernel:
    """One population's bit-accurate LIF update, in place on float64 state ``[batch, n]``.

    ``activation_bound`` is a bound on ``|a_in|`` (``None`` = unknown: every int32 wrap is
    emulated). Below :data:`NO_WRAP_ACTIVATION_BOUND` the int32 wraps provably never happen and
    are skipped (module docstring); the 24-bit wrap of ``u`` and the clip of ``v`` always apply.
    """

    def __init__(self, neuron: LoihiLIF, activation_bound: Optional[int] = None):
        self.neuron = neuron
        self.keep_u = (DECAY_UNITY - (neuron.du + DS_OFFSET)) / DECAY_UNITY   # exact dyadic
        self.keep_v = (DECAY_UNITY - (neuron.dv + DM_OFFSET)) / DECAY_UNITY
        bias = effective_bias(neuron)
        self.bias = bias.astype(np.float64)
        self.has_bias = bool(np.any(bias))
        self.threshold = float(neuron.vth << VTH_SHIFT)
        self.exact_int32 = activation_bound is None or activation_bound >= NO_WRAP_ACTIVATION_BOUND
        # |decay(v) + u + bias| < 2**31 holds for any |u| Lava can hold after its single wrap
        # (< 2**31 - 2**24) when |bias| < 2**23; otherwise the int32 sum can wrap too
        self.wrap_v = self.exact_int32 and bool(np.abs(bias).max(initial=0) >= 2 ** 23)
        self.activation_bound = activation_bound

    def scaled_activation(self, a: np.ndarray) -> np.ndarray:
        """``int32(a << 6)`` as the LIF computes it (float64 when a wrap is possible)."""
        if self.exact_int32:
            act = np.asarray(a, dtype=np.float64) * 2.0 ** ACT_SHIFT
            if act.size and (act.max() >= INT32_LIMIT or act.min() < -INT32_LIMIT):
                act = wrap_int32(act)
            return act
        return a * a.dtype.type(2 ** ACT_SHIFT)  # exact: |64 a| < 2**24

    def step(self, u: np.ndarray, v: np.ndarray, act: np.ndarray, spikes: Optional[np.ndarray] = None):
        """Advance ``u``, ``v`` (float64, in place) by one step given ``act = int32(a << 6)``.

        Returns the bool spike array (written into ``spikes`` if given, which may be a view).
        """
        if self.keep_u == 0.0:
            u[:] = act
        else:
            u *= self.keep_u
            np.trunc(u, out=u)
            u += act
        hi, lo = u.max(initial=0), u.min(initial=0)
        if self.exact_int32 and (hi >= INT32_LIMIT or lo < -INT32_LIMIT):
            u[:] = wrap_int32(u)                       # Lava's int32 sum of decayed u and a << 6
            hi, lo = u.max(initial=0), u.min(initial=0)
        if hi > MAX_UV:                                # Lava's single 24-bit wrap, either side
            u -= np.where(u > MAX_UV, 2.0 * MAX_UV, 0.0)
        if lo <= -MAX_UV:
            u += np.where(u <= -MAX_UV, 2.0 * MAX_UV, 0.0)
        if self.keep_v != 1.0:
            v *= self.keep_v
            np.trunc(v, out=v)
        v += u
        if self.has_bias:
            v += self.bias
        if self.wrap_v:
            v[:] = wrap_int32(v)
        np.maximum(v, -(MAX_UV - 1), out=v)
        if self.threshold >= MAX_UV - 1:   # only then can the upper clip change anything observable
            np.minimum(v, MAX_UV - 1, out=v)
        spikes = np.greater(v, self.threshold, out=spikes)
        np.copyto(v, 0.0, where=spikes)
        return spikes


_STEP_KERNELS: dict = {}   # id(neuron) -> (neuron, kernel): lif_step is called once per step in loops


def lif_step(u: np.ndarray, v: np.ndarray, a_in: np.ndarray, neuron: LoihiLIF):
    """One Lava bit-accurate LIF step on integer arrays ``[batch, n]``; returns int64 ``(u, v, spikes)``.

    ``a_in`` is what the LIF's InPort received (int32 range). Same kernel as the batched simulator,
    with every int32 wrap emulated.
    """
    cached = _STEP_KERNELS.get(id(neuron))
    if cached is None or cached[0] is not neuron:
        if len(_STEP_KERNELS) > 256:
            _STEP_KERNELS.clear()
        cached = _STEP_KERNELS[id(neuron)] = (neuron, LifKernel(neuron, activation_bound=None))
    kernel = cached[1]
    uu = np.array(u, dtype=np.float64)
    vv = np.array(v, dtype=np.float64)
    a = np.asarray(a_in)
    if a.size and (a.max() >= INT32_LIMIT or a.min() < -INT32_LIMIT):
        a = wrap_int32(a.astype(np.int64))
    act = kernel.scaled_activation(a.astype(np.float64))
    s = kernel.step(uu, vv, act)
    return uu.astype(np.int64), vv.astype(np.int64), s


# ------------------------------------------------------------------ compiled event-driven kernel
_JIT = None


def _jit_module():
    """Import :mod:`neurocomp.backends.fixed_point_jit` (and numba) on first use.

    numba caches compiled code in ``__pycache__`` next to the module, else in its user-wide cache
    directory; when neither is writable (a read-only install and home), ``NUMBA_CACHE_DIR`` is set
    to a directory under the system's temporary directory before numba is imported.
    """
    global _JIT
    if _JIT is None:
        import os
        import tempfile
        from pathlib import Path

        def writable(d: Path) -> bool:
            while not d.exists():
                d = d.parent
            return os.access(d, os.W_OK)

        if "NUMBA_CACHE_DIR" not in os.environ and "numba" not in __import__("sys").modules:
            here = Path(__file__).resolve().parent / "__pycache__"
            user = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "numba"
            if not writable(here) and not writable(user):
                os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "neurocomp-numba-cache")
        from neurocomp.backends import fixed_point_jit
        _JIT = fixed_point_jit
    return _JIT


class LifPopulationKernel:
    """One LoihiLIF population and its incoming LoihiDense projections, compiled and event-driven.

    ``run(sources)`` takes the spikes of each projection's source ``[samples, steps, n_pre]`` and
    returns the population's spikes ``[samples, steps, n]`` (bool), spike counts ``[samples, n]``
    and, with ``probe=True``, int64 ``u``/``v`` after every step — each sample starting from
    ``u = v = 0``. It computes exactly what :class:`DenseKernel` + :func:`channel_sum` +
    :class:`LifKernel` compute (the semantics above), but per sample and step it adds only the
    weight rows of the sources that spiked, in integer arithmetic, fused with the LIF update in one
    numba function parallel over samples (:mod:`neurocomp.backends.fixed_point_jit`). Why it is exact:

    * **dot products**: a projection's sources are cut into blocks of at most
      :attr:`max_block` neurons; a block's weights (``|w| <= 256`` after the 8-bit clip) can sum
      to at most ``max_block * 256 < 2**31`` in magnitude whichever of them spiked, so its int32
      accumulator never overflows; the blocks' sums are added in int64 (``< 2**63`` for any
      fan-in below ``2**55``). Realistic fan-ins (up to 8 million) are a single block.
    * **everything after it** — the weight-exponent shift, every int32 wrap-around Lava's int32
      arrays can make (Dense channel, InPort sum, ``a << 6``, the ``u`` and ``v`` sums), the
      sign-magnitude decay, the 24-bit wrap of ``u``, the clip of ``v``, threshold and reset — is
      integer arithmetic modulo 2**32 exactly where Lava's is, applied unconditionally: no bound to
      prove, no branch on what a network can reach. The decay's 44-bit product is split into two
      int32 products, an exact identity (:func:`neurocomp.backends.fixed_point_jit._decay`).

    Cost per sample-step: an ``n_pre / 8`` scan plus ``n`` integer additions per spiking source —
    or, where at the previous step fewer sources changed (started or stopped spiking) than spiked, as
    with rate-coded inputs near saturation, per changed source, added to or subtracted from the
    previous step's exact sums — instead of ``n_pre * n`` multiply-adds. The first call in a fresh environment compiles the
    kernel (one signature, ~15 s); numba caches the machine code on disk (:func:`_jit_module`), so
    later processes load it in about a second.
    """

    max_block = (INT32_LIMIT - 1) // 2 ** 8 // 8 * 8      # a multiple of 8 (the kernel reads 8 at a time)

    def __init__(self, neuron: LoihiLIF, denses: Sequence[LoihiDense], max_block: Optional[int] = None):
        if not denses:
            raise ValueError("a population needs at least one incoming projection")
        if max_block is not None:          # smaller blocks: lets tests exercise the int64 block sums
            if max_block <= 0 or max_block % 8:
                raise ValueError(f"max_block={max_block}: a positive multiple of 8")
            self.max_block = int(max_block)
        for name in ("du", "dv"):
            if not 0 <= getattr(neuron, name) < DECAY_UNITY:
                raise ValueError(f"{name}={getattr(neuron, name)}: Loihi decays are 12-bit (0..4095)")
        self.neuron = neuron
        weights = [effective_weights(d) for d in denses]
        for d, w in zip(denses, weights):
            if w.shape[0] != neuron.size:
                raise ValueError(f"weights {w.shape} do not feed {neuron.size} neurons")
        # the kernel reads spikes 8 sources at a time: each projection's sources are padded to a
        # multiple of 8 (silent sources with zero weights); |w| <= 256 after the 8-bit clip, so
        # int16 rows (half the cache footprint of int32)
        self.n_sources = [w.shape[1] for w in weights]
        self.padded = [-(-n // 8) * 8 for n in self.n_sources]
        self.weights_t = np.zeros((sum(self.padded), neuron.size), dtype=np.int16)
        blocks, projection_blocks, start = [0], [0], 0
        for w, width in zip(weights, self.padded):
            self.weights_t[start:start + w.shape[1]] = w.T
            edges = list(range(start + self.max_block, start + width, self.max_block))
            start += width
            blocks += edges + [start]
            projection_blocks.append(len(blocks) - 1)
        self.blocks = np.array(blocks, dtype=np.int64)
        self.projection_blocks = np.array(projection_blocks, dtype=np.int64)
        self.weight_exps = np.array([d.weight_exp for d in denses], dtype=np.int64)
        self.keep_u = DECAY_UNITY - (neuron.du + DS_OFFSET)
        self.keep_v = DECAY_UNITY - (neuron.dv + DM_OFFSET)
        # Lava adds the bias in int32, and v (clipped to 24 bits) compares the same with any
        # threshold beyond int32 as with the int32 bound
        self.bias = np.ascontiguousarray(wrap_int32(effective_bias(neuron)), dtype=np.int32)
        self.threshold = int(np.clip(neuron.vth << VTH_SHIFT, -INT32_LIMIT, INT32_LIMIT - 1))

    def run(self, sources: Sequence[np.ndarray], probe: bool = False, out: Optional[np.ndarray] = None):
        """``(spikes [samples, steps, n] bool, counts [samples, n] int64, (u, v) int64 or None)``.

        ``sources``: one spike array per projection, in the order the projections were given
        (non-zero = spike, as Lava's bool cast). ``out``: a C-contiguous bool array to write the
        spikes into (else a new one).
        """
        spikes = [np.asarray(s) for s in sources]
        spikes = [s if s.dtype == np.bool_ else s != 0 for s in spikes]      # numpy's bools are 0/1 bytes
        shapes = [s.shape[-1] if s.ndim == 3 else None for s in spikes]
        if shapes != self.n_sources or len({s.shape[:2] for s in spikes}) != 1:
            raise ValueError(f"spikes of shapes {[s.shape for s in spikes]} do not match projections from "
                             f"{self.n_sources} source neurons ([samples, steps, n] each)")
        if self.padded == self.n_sources and len(spikes) == 1:
            spikes = np.ascontiguousarray(spikes[0])
        else:
            n_samples, steps = spikes[0].shape[:2]
            joined = np.zeros((n_samples, steps, sum(self.padded)), dtype=bool)
            for s, start, width in zip(spikes, np.cumsum([0] + self.padded), self.n_sources):
                joined[..., start:start + width] = s
            spikes = joined
        n_samples, steps, _ = spikes.shape
        shape = (n_samples, steps, self.neuron.size)
        if out is None:
            out = np.empty(shape, dtype=bool)
        elif out.shape != shape or out.dtype != np.bool_ or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous bool array of shape {shape}")
        counts = np.empty((n_samples, self.neuron.size), dtype=np.int64)
        u, v = (np.empty(shape if probe else (0, 0, 0), dtype=np.int64) for _ in range(2))
        _jit_module().run_lif_population(spikes.view(np.uint64), self.blocks, self.projection_blocks, self.weights_t,
                                         self.weight_exps, self.keep_u, self.keep_v, self.bias,
                                         self.threshold, out, counts, probe, u, v)
        return out, counts, ((u, v) if probe else None)
