"""The compiled (numba) form of :mod:`neurocomp.backends.conv`: event-driven conv scatter fused with
Lava's bit-accurate LIF.

An implementation detail of :class:`neurocomp.backends.conv.ConvPopulationKernel`; the semantics and
their sources in Lava are documented in :mod:`neurocomp.backends.conv` (the convolution) and
:mod:`neurocomp.backends.fixed_point` (the LIF), and nowhere else. The LIF arithmetic reuses
:mod:`neurocomp.backends.fixed_point_jit`'s int32 helpers, so both compiled engines share one
definition of Lava's wrap-arounds and decay.

Everything is integer arithmetic, exact by construction: the conv sums are int32 and cannot overflow
(the caller checks ``sum |w| < 2**31`` per output channel, which bounds every partial sum), the 24-bit
wrap is a mask of the two's-complement value (``(a + 2**23) mod 2**24 - 2**23``, Lava's
``signed_clamp``), and the LIF runs in int32 lanes wherever Lava's int32 arrays could wrap.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from neurocomp.backends.fixed_point_jit import BYTES_TO_BITS, _ctz, _i32, in_parallel, lif_step

CONV_HALF = 2 ** 23
CONV_MASK = 2 ** 24 - 1


@njit(inline="always")
def _scatter(acc, row, weights, taps, tap_ptr, p, counts, touched):
    """``acc`` (flat ``[Ho * Wo, C_out]``) ``+= conv(spikes)`` for one sample-step; ``weights`` flat
    ``[C_in, kH * kW, C_out/groups]``.

    ``row`` uint64 ``[n_in / 8]``: the input's bool spikes (C-major ``(C, H, W)``) 8 at a time. A spike
    of input channel ``ci`` at pixel ``q = iy * W + ix`` adds, for every entry ``e`` of the pixel's tap
    list ``taps[tap_ptr[q]:tap_ptr[q + 1]]`` = ``(output position, kernel tap)``, the weight row
    ``weights[ci, tap]`` (its group's ``C_out/groups`` outputs) to ``acc[output position]``.

    With a pooling block ``(bh, bw) = (p[16], p[17]) != (1, 1)`` (conv.pooled_factor) the spikes are
    first counted per block (``counts [C, Hp * Wp]``, the cells hit listed in ``touched``), and each
    hit block adds its count times the weight rows of its (pooled-grid) taps."""
    w, hw = p[2], p[1] * p[2]
    cig, cog = p[14], p[15]
    c_out, n_taps = p[3], p[6] * p[7]
    bh, bw, hp, wp = p[16], p[17], p[18], p[19]
    pooled = bh * bw > 1
    n_touched = 0
    for wi in range(row.shape[0]):
        x = row[wi]
        if x == 0:
            continue
        bits = (x * BYTES_TO_BITS) >> np.uint64(56)           # bit j = byte j (0/1 bytes)
        while bits:
            idx = wi * 8 + np.int64(_ctz(bits))
            bits &= bits - np.uint64(1)
            ci = idx // hw
            q = idx - ci * hw
            if pooled:
                iy = q // w
                ix = q - iy * w
                py = iy // bh
                px = ix // bw
                if py < hp and px < wp:          # pixels past the last whole block are never read
                    cell = ci * (hp * wp) + py * wp + px
                    if counts[cell] == 0:
                        touched[n_touched] = cell
                        n_touched += 1
                    counts[cell] += 1
                continue
            c0 = (ci // cig) * cog
            for e in range(tap_ptr[q], tap_ptr[q + 1]):
                ab = taps[e, 0] * c_out + c0
                wb = (ci * n_taps + taps[e, 1]) * cog
                for j in range(cog):
                    acc[ab + j] += weights[wb + j]
    for m in range(n_touched):
        cell = touched[m]
        n = counts[cell]
        counts[cell] = 0
        ci = cell // (hp * wp)
        q = cell - ci * (hp * wp)
        c0 = (ci // cig) * cog
        for e in range(tap_ptr[q], tap_ptr[q + 1]):
            ab = taps[e, 0] * c_out + c0
            wb = (ci * n_taps + taps[e, 1]) * cog
            for j in range(cog):
                acc[ab + j] += n * weights[wb + j]


@njit(inline="always")
def _wrap24(a):
    return _i32(((np.int64(a) + CONV_HALF) & CONV_MASK) - CONV_HALF)


@njit(cache=True, nogil=True)
def _conv_activation(words, weights, taps, tap_ptr, p, out):
    """``out [samples, steps, n_out] = wrap24(conv(spikes))``, int32, C-major outputs."""
    c_out, hw_out = p[3], p[4] * p[5]
    acc = np.zeros((hw_out, c_out), np.int32)
    flat_acc, flat_w = acc.ravel(), weights.ravel()
    counts = np.zeros(p[0] * p[18] * p[19], np.int32)
    touched = np.empty(p[0] * p[18] * p[19], np.int64)
    for k in range(words.shape[0]):
        for t in range(words.shape[1]):
            acc[:] = 0
            _scatter(flat_acc, words[k, t], flat_w, taps, tap_ptr, p, counts, touched)
            o = out[k, t]
            for co in range(c_out):
                for q in range(hw_out):
                    o[co * hw_out + q] = _wrap24(acc[q, co])


@njit(cache=True, nogil=True)
def _run_conv_lif(words, weights, taps, tap_ptr, p, has_wrap, extra, has_extra, keep_u, keep_v, bias, threshold,
                  out, counts, probe, u_out, v_out):
    """One LIF population fed by a conv (and ``extra`` int32 activations), over samples and steps.

    words    uint64 ``[samples, steps, n_in / 8]``: the conv's source spikes, 0/1 bytes
    weights  int32 ``[C_in, kH * kW, C_out / groups]``; ``taps``/``tap_ptr`` each input pixel's
             (output position, kernel tap) pairs; ``p`` int64 geometry (conv._Scatter.params)
    has_wrap the conv sums can reach 2**23 (else Lava's 24-bit wrap is the identity and skipped)
    extra    int32 ``[samples, steps, n]``: the other projections' messages, added in int32 when
             ``has_extra`` (Lava's InPort sum)
    keep_u/v int32 ``4095 - du`` / ``4096 - dv``; bias int32 ``[n]``; threshold int32 ``vth << 6``
    out      bool ``[samples, steps, n]``, counts int64 ``[samples, n]``; u_out/v_out int64, when probe
             (u/v at the end of each step, after the reset)

    Each sample starts from ``u = v = 0``. Per step: zero the sums, scatter the step's input spikes,
    then per neuron (C-major order) the LIF update exactly as fixed_point_jit computes it.
    """
    c_out, hw_out = p[3], p[4] * p[5]
    n = c_out * hw_out
    acc = np.zeros((hw_out, c_out), np.int32)
    flat_acc, flat_w = acc.ravel(), weights.ravel()
    counts_in = np.zeros(p[0] * p[18] * p[19], np.int32)
    touched = np.empty(p[0] * p[18] * p[19], np.int64)
    a = np.zeros(n, np.int32)
    for k in range(words.shape[0]):
        u = np.zeros(n, np.int32)
        v = np.zeros(n, np.int32)
        c = counts[k]
        c[:] = 0
        for t in range(words.shape[1]):
            acc[:] = 0
            _scatter(flat_acc, words[k, t], flat_w, taps, tap_ptr, p, counts_in, touched)
            for co in range(c_out):
                base = co * hw_out
                for q in range(hw_out):
                    a[base + q] = acc[q, co]
            if has_wrap:
                for j in range(n):
                    a[j] = _wrap24(a[j])
            if has_extra:
                e = extra[k, t]
                for j in range(n):
                    a[j] = _i32(a[j] + e[j])
            lif_step(a, u, v, keep_u, keep_v, bias, threshold, out[k, t], c)
            if probe:
                for j in range(n):
                    u_out[k, t, j] = u[j]
                    v_out[k, t, j] = v[j]


@njit(cache=True, nogil=True)
def _run_lif(act, keep_u, keep_v, bias, threshold, out, counts, probe, u_out, v_out):
    """The same LIF over precomputed int32 InPort sums ``act [samples, steps, n]`` (the GEMM path)."""
    n = act.shape[2]
    for k in range(act.shape[0]):
        u = np.zeros(n, np.int32)
        v = np.zeros(n, np.int32)
        c = counts[k]
        c[:] = 0
        for t in range(act.shape[1]):
            lif_step(act[k, t], u, v, keep_u, keep_v, bias, threshold, out[k, t], c)
            if probe:
                for j in range(n):
                    u_out[k, t, j] = u[j]
                    v_out[k, t, j] = v[j]


# Samples run in parallel on fixed_point_jit's threads (the kernels release the GIL), a few per task.
SAMPLES_PER_TASK = 4


def _parallel(fn, n: int):
    in_parallel(fn, n, SAMPLES_PER_TASK)


def conv_activation(words, weights, taps, tap_ptr, params, out):
    """:func:`_conv_activation` over all samples, in parallel."""
    _parallel(lambda lo, hi: _conv_activation(words[lo:hi], weights, taps, tap_ptr, params, out[lo:hi]),
              words.shape[0])


def run_conv_lif(words, weights, taps, tap_ptr, params, has_wrap, extra, has_extra, keep_u, keep_v, bias,
                 threshold, out, counts, probe, u_out, v_out):
    """:func:`_run_conv_lif` over all samples, in parallel."""
    scalars = (np.int32(keep_u), np.int32(keep_v), bias, np.int32(threshold))

    def task(lo, hi):
        ex = extra[lo:hi] if has_extra else extra
        uo, vo = (u_out[lo:hi], v_out[lo:hi]) if probe else (u_out, v_out)
        _run_conv_lif(words[lo:hi], weights, taps, tap_ptr, params, has_wrap, ex, has_extra, *scalars, out[lo:hi],
                      counts[lo:hi], probe, uo, vo)

    _parallel(task, words.shape[0])


def run_lif(act, keep_u, keep_v, bias, threshold, out, counts, probe, u_out, v_out):
    """:func:`_run_lif` over all samples, in parallel."""
    scalars = (np.int32(keep_u), np.int32(keep_v), bias, np.int32(threshold))

    def task(lo, hi):
        uo, vo = (u_out[lo:hi], v_out[lo:hi]) if probe else (u_out, v_out)
        _run_lif(act[lo:hi], *scalars, out[lo:hi], counts[lo:hi], probe, uo, vo)

    _parallel(task, act.shape[0])
