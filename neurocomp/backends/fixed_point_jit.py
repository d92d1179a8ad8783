"""The compiled (numba) form of :mod:`neurocomp.backends.fixed_point`'s Dense + LIF arithmetic, event-driven.

This module is an implementation detail of :class:`neurocomp.backends.fixed_point.LifPopulationKernel`; the
semantics and their sources in Lava are documented in :mod:`neurocomp.backends.fixed_point` and nowhere else.
Import it through that class: importing numba costs ~0.5 s, which the CLI pays only when a
fixed-point network is simulated.

Everything here is integer arithmetic, exact by construction (no float bound is involved):

* dot products: int32 accumulators over source blocks small enough that no sum of their weights
  can leave int32 (the caller sizes the blocks), blocks added in int64;
* the Dense channel, InPort sum and LIF: Lava computes them in int32 numpy arrays, i.e. modulo
  2**32; so do we, in int32 lanes (numba's int32 casts truncate: two's-complement wrap-around),
  wherever Lava's arrays could wrap, whether or not a given network can ever reach that. The one
  wider intermediate, Lava's int64 decay product ``u * keep`` (up to 2**43), is split exactly into
  int32 pieces (:func:`_decay`).

Numba caches the machine code next to this file (``__pycache__``); when that is not writable it
uses its user-wide cache, and :func:`neurocomp.backends.fixed_point._jit_module` points ``NUMBA_CACHE_DIR``
to a temporary directory when neither is.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from llvmlite import ir
from numba import config, njit
from numba.extending import intrinsic

MAX_UV = 2 ** 23           # fixed_point.MAX_UV: u and v are 24-bit
UV_RANGE = 2 ** 24
DECAY_SHIFT = 12
DECAY_MASK = 2 ** DECAY_SHIFT - 1
ACT_SHIFT = 6
BYTES_TO_BITS = np.uint64(0x0102040810204080)   # ((w * this) >> 56) bit j = byte j of w, for 0/1 bytes


@intrinsic
def _ctz(typingctx, x):
    """Trailing zero bits of an integer (LLVM ``cttz``)."""
    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))
    return x(x), codegen


@intrinsic
def _popcount(typingctx, x):
    """Set bits of an integer (LLVM ``ctpop``)."""
    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return x(x), codegen


@njit(inline="always")
def _spike_bits(words, g, stop, before):
    """Spikes of up to 64 sources (``words[g:min(g + 8, stop)]``, 8 bool bytes each) as bits, and which
    of them differ from ``before`` (the same sources one step earlier)."""
    spiked = np.uint64(0)
    changed = np.uint64(0)
    for w in range(g, min(g + 8, stop)):
        sh = np.uint64(8 * (w - g))
        x = words[w]
        spiked |= ((x * BYTES_TO_BITS) >> np.uint64(56)) << sh
        changed |= (((x ^ before[w]) * BYTES_TO_BITS) >> np.uint64(56)) << sh
    return spiked, changed


@njit(inline="always")
def _i32(x):
    """Two's-complement wrap to int32 (numba's integer cast truncates)."""
    return np.int32(x)


@njit(inline="always")
def _decay(x, keep):
    """Lava's ``sign(x * keep) * (|x * keep| >> 12)`` for int32 ``x``, ``0 <= keep <= 4096``, in int32.

    With ``|x| = h * 4096 + l`` (``0 <= l < 4096``): ``|x| * keep >> 12 = h * keep + (l * keep >> 12)``
    exactly, and both products fit int32 as long as ``h * keep < 2**31`` — true for ``|x| < 2**31``
    when ``keep <= 4095`` (the current: ``keep = 4095 - du``) and for ``|x| < 2**23`` when
    ``keep = 4096`` (the voltage, clipped to 24 bits). ``|u| < 2**31`` always: after Lava's 24-bit
    wrap, ``u >= -2**31 + 2**24``.
    """
    ax = _i32(abs(x))
    m = _i32(_i32((ax >> DECAY_SHIFT) * keep) + _i32(_i32((ax & DECAY_MASK) * keep) >> DECAY_SHIFT))
    return _i32(-m) if x < 0 else m


@njit(inline="always")
def integrate(u, v, a, bias, keep_u, keep_v, j):
    """Neuron ``j``'s current ``u`` and voltage ``v`` after one step of Lava's bit-accurate LIF (and
    ATRLIF's current and voltage), in place: ``a`` the InPort's int32 sum."""
    # u: int32 sum of the decayed current and int32(a << 6), then Lava's single 24-bit wrap
    uu = _i32(_decay(u[j], keep_u) + _i32(a[j] << ACT_SHIFT))
    uu = _i32(uu - UV_RANGE) if uu > MAX_UV else uu
    uu = _i32(uu + UV_RANGE) if uu <= -MAX_UV else uu
    # v: int32 sum of decayed voltage, u and bias, clipped to 24 bits
    vv = _i32(_i32(_decay(v[j], keep_v) + uu) + bias[j])
    u[j] = uu
    v[j] = min(max(vv, np.int32(1 - MAX_UV)), np.int32(MAX_UV - 1))


@njit(inline="always")
def lif_step(a, u, v, keep_u, keep_v, bias, threshold, o, c):
    """One step of Lava's bit-accurate LIF on int32 lanes, in place (every batched kernel's neuron
    update): ``a`` the InPort's int32 sum, ``o`` the step's spikes, ``c`` spike counts."""
    n = a.shape[0]
    for j in range(n):
        integrate(u, v, a, bias, keep_u, keep_v, j)
    for j in range(n):            # spike where v > vth << 6, reset v there
        fired = v[j] > threshold
        o[j] = fired
        c[j] += fired
        v[j] = 0 if fired else v[j]


@njit(inline="always")
def _add_message(a, dot, weight_exp, first):
    """Add what one Dense sends over its int32 channel, ``acc << e`` or ``acc >> -e`` cut to int32, to
    the InPort's int32 sum ``a`` (``first``: set it instead).

    ``dot`` holds the exact int64 dot products. numpy (which Lava uses) gives 0 for a left shift by
    64 or more and the sign for a right shift by 64 or more; the low 32 bits of ``acc << e`` are 0
    for any ``e >= 32``. One loop per case keeps the branch on ``e`` out of the neuron loops.
    """
    n = a.shape[0]
    if first:
        a[:] = 0
    if weight_exp >= 32:
        return
    if weight_exp >= 0:
        for j in range(n):
            a[j] = _i32(a[j] + _i32(dot[j] << weight_exp))
    else:
        shift = min(-weight_exp, 63)
        for j in range(n):
            a[j] = _i32(a[j] + _i32(dot[j] >> shift))


@njit(inline="always")
def _add_rows(acc, weights, events, start, stop, sign):
    """``acc += sign * sum(weights[events[start:stop]])``, eight rows per pass over ``acc`` (their sum,
    at most ``8 * 256`` in magnitude, is exact in int16); int32 wrap-around like Lava's."""
    n = acc.shape[0]
    q = start
    while q + 8 <= stop:
        r0, r1, r2, r3 = weights[events[q]], weights[events[q + 1]], weights[events[q + 2]], weights[events[q + 3]]
        r4, r5, r6, r7 = weights[events[q + 4]], weights[events[q + 5]], weights[events[q + 6]], weights[events[q + 7]]
        for j in range(n):
            acc[j] += sign * np.int16(((r0[j] + r1[j]) + (r2[j] + r3[j])) + ((r4[j] + r5[j]) + (r6[j] + r7[j])))
        q += 8
    while q < stop:
        r0 = weights[events[q]]
        for j in range(n):
            acc[j] += sign * r0[j]
        q += 1


@njit(cache=True, nogil=True, fastmath=False)
def _run_lif_population(words, blocks, projection_blocks, weights, weight_exps, keep_u, keep_v, bias,
                        threshold, out, counts, probe, u_out, v_out):
    """One LIF population over samples and steps, from its sources' spikes.

    words       uint64 ``[samples, steps, n_pre / 8]``: the bool spikes (0/1 bytes) of the sources of
                every incoming projection side by side, viewed 8 at a time
    blocks      int64 ``[B+1]``: source block ``b`` is sources ``blocks[b]`` to ``blocks[b+1]`` (multiples
                of 8); any sum of its weights fits int32
    projection_blocks  int64 ``[P+1]``: projection ``p`` is blocks ``projection_blocks[p]`` to ``[p+1]``
    weights     int16 ``[n_pre, n]``: effective weights (``|w| <= 256``), transposed: one row per source
    weight_exps int64 ``[P]``
    keep_u/v    int32 ``4095 - du`` and ``4096 - dv``
    bias        int32 ``[n]``: effective bias, wrapped to int32 (Lava adds it in int32)
    threshold   int32 ``vth << 6`` clamped to int32 (the same comparisons with a 24-bit ``v``)
    out         bool ``[samples, steps, n]`` (written); ``counts`` int64 ``[samples, n]`` (written)
    u_out/v_out int64 ``[samples, steps, n]``, written when ``probe`` (u/v at the end of each step,
                after the reset)

    Each sample starts from ``u = v = 0`` (its own window). Per step and block, the spikes of 64
    sources at a time become a bit mask, whose set bits (``ctz``) list the sources to add. A block's
    dot product is either the sum of the rows of the sources that spiked, or — when at the previous
    step fewer sources changed than spiked, as with rate-coded inputs that spike at almost every
    step — the previous step's sums plus the rows of the sources that started spiking minus those
    that stopped: both exact, integer sums modulo 2**32 of a result that fits int32. A projection's
    blocks are summed in int64, then the LIF update runs in int32 lanes. The loops are split so that
    LLVM vectorises each one (a bool store or a branch on a loop invariant inside a neuron loop
    stops it).
    """
    n_samples, n_steps, n_words = words.shape
    n_pre = n_words * 8
    n = weights.shape[1]
    n_proj = weight_exps.shape[0]
    n_blocks = blocks.shape[0] - 1
    for k in range(n_samples):
        u = np.zeros(n, np.int32)
        v = np.zeros(n, np.int32)
        a = np.zeros(n, np.int32)
        dot = np.zeros(n, np.int64)
        accs = np.zeros((n_blocks, n), np.int32)      # each block's dot product at the last step
        spiking = np.zeros(n_blocks, np.int64)          # how many of its sources spiked then
        delta = np.zeros(n_blocks, np.bool_)            # fewer of them changed than spiked then
        events = np.empty(n_pre, np.int64)              # sources to add (that spiked / started)
        gone = np.empty(n_pre, np.int64)                # sources to subtract (that stopped)
        c = counts[k]
        c[:] = 0
        for t in range(n_steps):
            now = words[k, t]
            before = words[k, t - 1] if t > 0 else now
            for p in range(n_proj):
                for b in range(projection_blocks[p], projection_blocks[p + 1]):
                    lo, hi = blocks[b] >> 3, blocks[b + 1] >> 3
                    acc = accs[b]
                    if t == 0 or not delta[b]:
                        m = 0
                        n_changed = 0
                        for g in range(lo, hi, 8):
                            spiked, changed = _spike_bits(now, g, hi, before)
                            n_changed += np.int64(_popcount(changed))
                            while spiked:
                                events[m] = g * 8 + np.int64(_ctz(spiked))
                                m += 1
                                spiked &= spiked - np.uint64(1)
                        acc[:] = 0
                        _add_rows(acc, weights, events, 0, m, 1)
                        spiking[b] = m
                    else:
                        n_on = 0
                        n_off = 0
                        for g in range(lo, hi, 8):
                            spiked, changed = _spike_bits(now, g, hi, before)
                            while changed:
                                bit = _ctz(changed)
                                on = np.int64((spiked >> bit) & np.uint64(1))
                                source = g * 8 + np.int64(bit)
                                events[n_on] = source
                                gone[n_off] = source
                                n_on += on
                                n_off += 1 - on
                                changed &= changed - np.uint64(1)
                        _add_rows(acc, weights, events, 0, n_on, 1)
                        _add_rows(acc, weights, gone, 0, n_off, -1)
                        n_changed = n_on + n_off
                        spiking[b] += n_on - n_off
                    delta[b] = t > 0 and n_changed < spiking[b]
                    if b == projection_blocks[p]:
                        for j in range(n):
                            dot[j] = acc[j]
                    else:
                        for j in range(n):
                            dot[j] += acc[j]
                _add_message(a, dot, weight_exps[p], p == 0)
            lif_step(a, u, v, keep_u, keep_v, bias, threshold, out[k, t], c)
            if probe:
                for j in range(n):
                    u_out[k, t, j] = u[j]
                    v_out[k, t, j] = v[j]


# Samples run in parallel on Python threads, each calling the compiled kernel (which releases the
# GIL) on a slice of samples; slices are dealt out as threads free up, so a thread that shares its
# core with another process does not hold the others back. (numba's own parallel=True compiles ~4x
# slower, and starting its thread pool fixes multiprocessing's start method, which Lava sets itself.)
SAMPLES_PER_TASK = 8
THREADS = max(1, min(config.NUMBA_NUM_THREADS, len(os.sched_getaffinity(0))))
_pool = None
_pool_lock = threading.Lock()


def in_parallel(fn, n: int, per_task: int = SAMPLES_PER_TASK) -> None:
    """``fn(lo, hi)`` over ``0..n`` in slices of ``per_task`` samples on :data:`THREADS` threads (one
    pool for every compiled kernel; in the calling thread when one slice or one thread suffices)."""
    global _pool
    if THREADS == 1 or n <= per_task:
        fn(0, n)
        return
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="neurocomp-kernel")
    for _ in _pool.map(lambda lo: fn(lo, min(lo + per_task, n)), range(0, n, per_task)):
        pass


def run_lif_population(words, blocks, projection_blocks, weights, weight_exps, keep_u, keep_v, bias,
                       threshold, out, counts, probe, u_out, v_out):
    """:func:`_run_lif_population` over all samples, :data:`SAMPLES_PER_TASK` at a time on :data:`THREADS` threads."""
    params = (blocks, projection_blocks, weights, weight_exps, np.int32(keep_u), np.int32(keep_v), bias,
              np.int32(threshold))

    def task(lo, hi):
        u_part, v_part = (u_out[lo:hi], v_out[lo:hi]) if probe else (u_out, v_out)
        _run_lif_population(words[lo:hi], *params, out[lo:hi], counts[lo:hi], probe, u_part, v_part)

    in_parallel(task, words.shape[0])
