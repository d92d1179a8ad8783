"""The compiled (numba) form of :mod:`neurocomp.backends.graded`: graded Dense/Conv messages and Lava's
bit-accurate LIF over them.

An implementation detail of :class:`neurocomp.backends.graded.GradedPopulationKernel`; the semantics and
where they come from in Lava are documented in :mod:`neurocomp.backends.graded` (the messages) and
:mod:`neurocomp.backends.fixed_point` (the LIF), and nowhere else. The LIF arithmetic reuses
:mod:`neurocomp.backends.fixed_point_jit`'s int32 helpers (one definition of Lava's wrap-arounds and
decay for every compiled engine).

Everything is integer arithmetic, exact by construction:

* a Dense message sums ``w * x`` in int64 (``|w| <= 256``, ``x < 2**24``: every product below 2**32,
  and int64 sums wrap modulo 2**64 at worst, which keeps them right modulo 2**32), then cuts the sum
  to int32 (numba's integer casts truncate: Lava's int32 dot product, modulo 2**32) and shifts it in
  int64 (a left shift of an int32 value by ``e <= 31`` is below 2**62) before cutting to int32 again;
* a Conv message sums in int64 — exact, the caller checks ``sum |w| * max x < 2**31`` — and wraps it to
  24 bits with a mask of the two's-complement value (Lava's ``signed_clamp``);
* a step whose input equals the previous step's (direct-current input repeats one row) reuses the
  previous step's messages: the same integers, computed once.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from neurocomp.backends.fixed_point_jit import _i32, in_parallel, lif_step

CONV_HALF = 2 ** 23
CONV_MASK = 2 ** 24 - 1


@njit(inline="always")
def _same_row(x, t):
    """Whether step ``t`` of ``x [steps, n]`` equals step ``t - 1``."""
    if t == 0:
        return False
    a, b = x[t], x[t - 1]
    for i in range(a.shape[0]):
        if a[i] != b[i]:
            return False
    return True


@njit(inline="always")
def _shift_message(acc, weight_exp):
    """Lava's graded Dense: the int32 dot product (``acc`` cut to int32) shifted as numpy shifts int32."""
    a = np.int64(_i32(acc))
    if weight_exp >= 32:
        return np.int32(0)
    if weight_exp >= 0:
        return _i32(a << weight_exp)
    return _i32(a >> min(-weight_exp, 63))


@njit(cache=True, nogil=True)
def _dense_messages(values, weights_t, weight_exp, out):
    """``out[k, t] = shift(int32(W @ values[k, t]))``: values int32 ``[samples, steps, n_pre]``, weights
    int32 ``[n_pre, n]`` (effective, transposed), out int32 ``[samples, steps, n]``."""
    n_samples, n_steps, n_pre = values.shape
    n = weights_t.shape[1]
    acc = np.zeros(n, np.int64)
    for k in range(n_samples):
        x = values[k]
        for t in range(n_steps):
            if _same_row(x, t):
                out[k, t] = out[k, t - 1]
                continue
            acc[:] = 0
            for i in range(n_pre):
                xi = np.int64(x[t, i])
                if xi != 0:
                    row = weights_t[i]
                    for j in range(n):
                        acc[j] += np.int64(row[j]) * xi
            o = out[k, t]
            for j in range(n):
                o[j] = _shift_message(acc[j], weight_exp)


@njit(cache=True, nogil=True)
def _conv_messages(values, weight, p, out):
    """``out[k, t] = wrap24(conv(values[k, t]))`` — torch's cross-correlation with zero padding, flat
    C-major ``(C, H, W)`` on both sides. values int32 ``[samples, steps, C*H*W]``; weight int32 ``[C_out,
    C_in/groups, kH, kW]``; ``p`` = (C, H, W, C_out, H_out, W_out, kH, kW, sh, sw, ph, pw, dh, dw, groups)."""
    c_in, h, w, c_out, ho, wo, kh, kw, sh, sw, ph, pw, dh, dw, groups = (p[0], p[1], p[2], p[3], p[4], p[5], p[6],
                                                                          p[7], p[8], p[9], p[10], p[11], p[12],
                                                                          p[13], p[14])
    cig, cog = c_in // groups, c_out // groups
    n_samples, n_steps = values.shape[0], values.shape[1]
    for k in range(n_samples):
        x = values[k]
        for t in range(n_steps):
            if _same_row(x, t):
                out[k, t] = out[k, t - 1]
                continue
            xt = x[t]
            o = out[k, t]
            for co in range(c_out):
                g = co // cog
                for oy in range(ho):
                    for ox in range(wo):
                        acc = np.int64(0)
                        for ci in range(cig):
                            base = (g * cig + ci) * h * w
                            for ky in range(kh):
                                iy = oy * sh + ky * dh - ph
                                if iy < 0 or iy >= h:
                                    continue
                                for kx in range(kw):
                                    ix = ox * sw + kx * dw - pw
                                    if ix < 0 or ix >= w:
                                        continue
                                    xv = xt[base + iy * w + ix]
                                    if xv != 0:
                                        acc += np.int64(weight[co, ci, ky, kx]) * np.int64(xv)
                        o[(co * ho + oy) * wo + ox] = np.int32(((acc + CONV_HALF) & CONV_MASK) - CONV_HALF)


@njit(cache=True, nogil=True)
def _run_lif(act, n_steps, keep_u, keep_v, bias, threshold, out, counts, probe, u_out, v_out):
    """Lava's LIF over int32 InPort sums ``act [samples, steps or 1, n]`` (one row: the same every step),
    ``n_steps`` steps from ``u = v = 0``; spikes into ``out [samples, n_steps, n]`` (bool), counts, and
    u/v after every step when ``probe``. The arithmetic of :mod:`neurocomp.backends.fixed_point_jit`."""
    n = act.shape[2]
    varying = act.shape[1] > 1
    for k in range(act.shape[0]):
        u = np.zeros(n, np.int32)
        v = np.zeros(n, np.int32)
        c = counts[k]
        c[:] = 0
        for t in range(n_steps):
            a = act[k, t if varying else 0]
            lif_step(a, u, v, keep_u, keep_v, bias, threshold, out[k, t], c)
            if probe:
                for j in range(n):
                    u_out[k, t, j] = u[j]
                    v_out[k, t, j] = v[j]


# samples in parallel on fixed_point_jit's threads (the kernels release the GIL)
SAMPLES_PER_TASK = 8


def _parallel(fn, n: int) -> None:
    in_parallel(fn, n, SAMPLES_PER_TASK)


def dense_messages(values, weights_t, weight_exp, out) -> None:
    _parallel(lambda lo, hi: _dense_messages(values[lo:hi], weights_t, np.int64(weight_exp), out[lo:hi]),
              values.shape[0])


def conv_messages(values, weight, params, out) -> None:
    _parallel(lambda lo, hi: _conv_messages(values[lo:hi], weight, params, out[lo:hi]), values.shape[0])


def run_lif(act, n_steps, keep_u, keep_v, bias, threshold, out, counts, probe, u_out, v_out) -> None:
    scalars = (np.int64(n_steps), np.int32(keep_u), np.int32(keep_v), bias, np.int32(threshold))

    def task(lo, hi):
        uo, vo = (u_out[lo:hi], v_out[lo:hi]) if probe else (u_out, v_out)
        _run_lif(act[lo:hi], *scalars, out[lo:hi], counts[lo:hi], probe, uo, vo)

    _parallel(task, act.shape[0])
