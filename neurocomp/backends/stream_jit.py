"""The stream schedule's compiled engine: :func:`neurocomp.backends.stream_engine.run_stream` with
``engine="jit"`` — the recurrent simulator and learner as one event-driven numba kernel.

It computes exactly what the numpy stepper computes (that stepper, with
:func:`neurocomp.backends.fixed_point.lif_step` and
:class:`~neurocomp.backends.learning_engine.LoihiLearningEngine`, stays the reference it is tested
against; the semantics and their sources in Lava are documented there and in
:mod:`neurocomp.backends.fixed_point`). Per step ``t`` (1-based), in the stepper's order:

1. **LIF** of every population from the activation buffered at ``t-1``: int32 lanes, Lava's int32
   wrap-arounds of ``a << 6`` and of the ``u``/``v`` sums, the sign-magnitude decay split exactly into
   int32 products, the single 24-bit wrap of ``u``, the clip of ``v`` — the very helpers of
   :mod:`neurocomp.backends.fixed_point_jit` (``integrate``: one neuron's u and v), applied unconditionally;
   An ATRLIF population (:func:`_atrlif`) makes :func:`neurocomp.backends.atrlif.atrlif_step`'s step: the
   current and voltage as the LIF's, the threshold and refractory state decayed in int64 and cut to int32,
   ``int32(v - r) >= theta``, ``r += 2 theta``, ``theta += theta_step``; a learned ``theta_init`` replaces
   the threshold after the stream's first step (Lava's first step always runs from ``theta0``);
2. **delivery**: per projection, the weight rows of the sources that spiked this step (the list of
   spiking neurons is made once per population and step) summed in int64 — the stepper's
   ``W[:, s].sum(axis=1)`` in int64, the same value modulo 2**64 whatever the order — then
   ``<< weight_exp`` or the floor shift ``>> -weight_exp`` in int64 as numpy shifts, cut to int32 and
   added to the target's int32 InPort sum (the stepper adds in int64 and wraps once: equal modulo
   2**32); the weights are those before this step's learning;
3. **learning**, per plastic projection, one epoch exactly as ``LoihiLearningEngine.step``:

   * random numbers: the same three PCG64 streams per projection (``rng_seed``, ``rng_seed + 2``,
     Lava's ``ConnVarRandom`` seed 2), drawn with numpy in blocks per chunk of steps
     (:class:`_LavaDraws`; a PCG64 generator's doubles are one 64-bit output each, so block draws
     are the same sequence) and indexed as the stepper does: ``2t``, ``2t`` and ``t``;
   * traces: ``x1`` (pre), ``y1`` (post) or the teacher's ``y2`` decay as
     ``floor(d * x) + (r < frac(d * x))`` with ``d`` the stepper's own float64 ``exp(-1/tau)``
     (computed by numpy once and passed in, so no libm difference can enter), the same float64
     product, ``frac = s - floor(s)`` (exactly numpy's ``s % 1``: both are the correctly rounded value
     of the exact ``s - floor(s)``), then the impulse and the 7-bit clip; a zero trace stays zero
     (``floor(0) + (r < 0) = 0``), so only non-zero traces are decayed;
   * each term's product ``dependency * prod(factors) * mantissa`` in int64 (a weight factor ``w + C`` is the
     synapse's weight before the epoch plus its constant, clipped to 9 bits: :func:`_wf`) (a product of integers:
     the same value in any order), ``>> max(0, width - 15)``, ``<< exponent + 7``, saturated, summed
     into ``w << 7`` with the accumulator's saturation after every term; the sign mode's clip; the
     stochastic rounding ``(acc >> 7) + ((acc & 127) > floor(128 r))`` — the stepper's
     ``floor(acc / 128) + (r < (acc / 128) % 1)``: ``acc / 128`` and its remainder
     ``(acc & 127) / 128`` are exact dyadic values, ``128 r`` is exact, and for an integer ``n``,
     ``x < n`` exactly when ``floor(x) < n``; the 8-bit clip. The factor clips of the stepper (``x0``,
     ``y0`` to 1 bit, traces to 7 bits) never change a value (spikes are 0/1 and traces 0..127), so
     they are not repeated.

   **Which synapses and terms it computes** (the one place this kernel is event-driven where the
   stepper is dense): an epoch where neither side spiked changes nothing (the stepper returns early;
   here too). Otherwise the stepper runs every term on every synapse; but while ``w`` is inside its
   sign mode's 8-bit range, ``|w << 7| <= 32640`` and every later partial sum is saturated into the
   accumulator's range, so a term whose product is zero changes nothing (``acc + 0`` needs no
   saturation), and a synapse all of whose products are zero keeps its weight (``acc = w << 7``
   rounds to ``w`` and needs no clip). So the first epoch that does work runs every term on every
   synapse (it brings out-of-range initial weights into range, as Lava's first epoch does), and
   every later one visits a superset of the synapses with a non-zero product, adding the terms
   that can be non-zero there, in the rule's order: a term with dependency ``x0`` is non-zero only
   in a column ``j`` whose pre neuron spiked and a row ``i`` whose post-side factors (``y0``, ``y1``,
   ``y2``) are all non-zero (rows found once per epoch); a term with dependency ``y0`` only in a row
   whose post neuron spiked and a column whose pre-side factors (``x0``, ``x1``) are all non-zero.
   A synapse in a spiking column and a row of the first kind is visited with its column (all its
   terms when its post neuron spiked too, else the ``x0`` terms); the other synapses of spiking rows
   with their row (the ``y0`` terms: their ``x0`` terms are zero).

The stream is cut into chunks of :data:`CHUNK` steps (random draws, input events and teacher values
per chunk; state carried between the calls). The first call in a fresh environment compiles the kernel
(one signature, ~10-20 s); numba caches it on disk like the batched engine's
(:func:`neurocomp.backends.fixed_point._jit_module` sets up the cache directory).

Why one module of ~810 lines: one compiled kernel and the program that lays the network out for it;
the array layout and the kernel that reads it must change together.
"""
from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np
from numba import njit

from neurocomp.backends.fixed_point_jit import _i32, integrate

DECAY_SHIFT_ = 12       # ATRLIF's threshold/refractory decays, in int64 (_decay64)

CHUNK = 8192            # steps per kernel call

# Lava 0.10's learning constants (the same as neurocomp.backends.learning_engine)
W_ACC = 15
ACC_MIN, ACC_MAX = -(2 ** W_ACC) - 1, 2 ** W_ACC - 1
TRACE_MAX = 127
ACC_SHIFT = 7
EXCITATORY, INHIBITORY, MIXED = 2, 3, 1

# factor codes of a term (counts per code are passed to the kernel)
_FACTORS = ("x0", "x1", "y0", "y1", "y2")


class _LavaDraws:
    """One of Lava's learning random streams as numpy draws it (a seeded PCG64 ``Generator``, one double
    per draw), handed out by index range: ``take(lo, hi, stride)`` = draws ``lo, lo+stride, ... < hi``.
    Indices must not go back below the previous ``hi`` (each chunk of steps asks for later ones)."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)
        self._buf = np.empty(0)
        self._base = 0

    def take(self, lo: int, hi: int, stride: int) -> np.ndarray:
        if lo < self._base:
            raise ValueError("draws are consumed in order")
        need = hi - self._base
        if need > len(self._buf):
            self._buf = np.concatenate([self._buf, self._rng.random(need - len(self._buf))])
        out = self._buf[lo - self._base: hi - self._base: stride].copy()
        self._buf = self._buf[hi - self._base:]
        self._base = hi
        return out


# ---------------------------------------------------------------------------------- the kernel
@njit(inline="always")
def _trace_decay(value, d, tau_zero, r):
    """The stepper's ``_decay_trace`` of one integer trace value (float64 ``d = exp(-1/tau)``)."""
    if tau_zero:
        return np.int64(0)
    scaled = d * np.float64(value)
    fl = np.floor(scaled)
    frac = scaled - fl
    return np.int64(fl + (1.0 if r < frac else 0.0))


@njit(inline="always")
def _ipow(x, c):
    """``x ** c`` for a small count ``c >= 0``, as repeated int64 multiplication."""
    if c == 0:
        return np.int64(1)
    r = x
    for _ in range(c - 1):
        r = r * x
    return r


@njit(inline="always")
def _post_side(k, post, y1v, y2v, tm_cnt):
    """A term's product of its post-side factors (``y0``, ``y1``, ``y2``) for one row."""
    return _ipow(post, tm_cnt[k, 2]) * _ipow(y1v, tm_cnt[k, 3]) * _ipow(y2v, tm_cnt[k, 4])


@njit(inline="always")
def _pre_side(k, pre, x1v, tm_cnt):
    """A term's product of its pre-side factors (``x0``, ``x1``) for one column."""
    return _ipow(pre, tm_cnt[k, 0]) * _ipow(x1v, tm_cnt[k, 1])


@njit(inline="always")
def _wf(wv, k, wcnt, wconst):
    """A term's weight factor at a synapse of weight ``wv`` (before this epoch): ``w + C`` clipped to 9 bits
    (Lava's factor saturation), or 1 for a term without one."""
    if wcnt[k] == 0:
        return np.int64(1)
    return np.int64(min(max(wv + wconst[k], -512), 511))


@njit(inline="always")
def _add_term(acc, prod, rs, ls):
    """Add one term's product ``prod`` (``dependency * factors * mantissa``) to the accumulator: shifted
    right to 15 bits, left by the exponent + 7, saturated, then the accumulator saturated."""
    p = min(max((prod >> rs) << ls, ACC_MIN), ACC_MAX)
    return min(max(acc + p, ACC_MIN), ACC_MAX)


@njit(inline="always")
def _round_clip(acc, sign, r128):
    """The sign mode's clip of the accumulator, the stochastic rounding to whole weights, the 8-bit clip.

    The stepper rounds up where ``r < (acc / 128) % 1 = (acc & 127) / 128``; multiplying by 128 is exact
    in binary floating point, and for an integer ``n``, ``x < n`` exactly when ``floor(x) < n``: so
    ``r128 = floor(128 r)`` compared with ``acc & 127`` decides it in integers."""
    if sign == EXCITATORY:
        acc = max(acc, 0)
    elif sign == INHIBITORY:
        acc = min(acc, 0)
    nw = (acc >> ACC_SHIFT) + (1 if (acc & 127) > r128 else 0)
    if sign == INHIBITORY:
        return -min(max(-nw, 0), 255)
    return min(max(nw, -256 if sign == MIXED else 0), 255)


@njit(nogil=True)
def _plastic_epoch(w, n_pre, n_post, pre, post, pre_ev, n_pre_ev, post_ev, n_post_ev, s0, t0,
                   xt, yt, third, full, sign, rc, dep, mant, rs, ls, cnt, xm, ym, ylist, yflag, xlist, cx,
                   kx, ky, ka, ylist1, accs, wcnt, wconst):
    """One projection's learning epoch on its weights ``w`` (transposed, flat ``[n_pre * n_post]``), after
    its traces were updated, when a pre or post neuron spiked. ``pre_ev``/``post_ev``: the spiking
    neurons (kernel indices: minus ``s0``/``t0``); ``dep``, ``mant``, ``rs``, ``ls``, ``cnt``: its terms;
    ``full``: visit every synapse (its first epoch with work); the rest is scratch space.

    ``xm[j, k]`` = term ``k``'s pre-side factors times its mantissa at column ``j``, ``ym[k, i]`` its
    post-side factors at row ``i``: a term's product is ``xm * ym`` where its dependency spiked. They
    are computed only where they are read: an ``x0`` term's post side in every row (to find the rows
    it can change) and its pre side in the spiking columns (``cx``, per column), a ``y0`` term's pre
    side in every column (when a post neuron spiked) and its post side in the spiking rows."""
    K = dep.shape[0]
    r128 = np.int64(np.floor(rc * 128.0))
    if full:
        for j in range(n_pre):
            for k in range(K):
                xm[j, k] = _pre_side(k, pre[j], xt[j], cnt) * mant[k]
        for i in range(n_post):
            yv = yt[i]
            for k in range(K):
                ym[k, i] = _post_side(k, post[i], 0 if third else yv, yv if third else 0, cnt)
        for j in range(n_pre):
            pj = pre[j]
            rb = j * n_post
            for i in range(n_post):
                acc = w[rb + i] << ACC_SHIFT
                for k in range(K):
                    prod = np.int64(0)
                    if (pj if dep[k] == 0 else post[i]) != 0:
                        prod = xm[j, k] * ym[k, i] * _wf(w[rb + i], k, wcnt, wconst)
                    acc = _add_term(acc, prod, rs[k], ls[k])
                w[rb + i] = _round_clip(acc, sign, r128)
        return
    # From here every weight is inside its sign mode's 8-bit range, where a term whose product is zero
    # changes nothing (acc + 0 needs no saturation): only terms with a non-zero mantissa are kept, and
    # only synapses where one of them can be non-zero are visited.
    nkx = nky = nka = 0
    for k in range(K):
        if mant[k] != 0:
            ka[nka] = k
            nka += 1
            if dep[k] == 0:
                kx[nkx] = k
                nkx += 1
            else:
                ky[nky] = k
                nky += 1
    do_x0 = nkx > 0 and n_pre_ev > 0
    do_y0 = nky > 0 and n_post_ev > 0
    n_y = n_y1 = 0
    if do_x0:      # rows where some x0 term's post side is non-zero: silent ones in ylist, spiking in ylist1
        for i in range(n_post):
            yflag[i] = 0
        for c in range(nkx):
            k = kx[c]
            yk = ym[k]
            c0, c1, c2 = cnt[k, 2], cnt[k, 3], cnt[k, 4]
            if c0 <= 1 and c1 <= 1 and c2 <= 1:     # each factor at most once: branch-free, vectorised
                for i in range(n_post):
                    yv = yt[i]
                    f = ((post[i] if c0 else np.int64(1)) * ((0 if third else yv) if c1 else np.int64(1))
                         * ((yv if third else 0) if c2 else np.int64(1)))
                    yk[i] = f
                    yflag[i] |= f != 0
            else:
                for i in range(n_post):
                    yv = yt[i]
                    f = _post_side(k, post[i], 0 if third else yv, yv if third else 0, cnt)
                    yk[i] = f
                    yflag[i] |= f != 0
        for i in range(n_post):
            if yflag[i] != 0:
                if post[i] != 0:
                    ylist1[n_y1] = i
                    n_y1 += 1
                else:
                    ylist[n_y] = i
                    n_y += 1
    else:
        for e in range(n_post_ev):
            yflag[post_ev[e] - t0] = 0
    n_x = 0
    if do_y0:      # columns where some y0 term's pre side is non-zero; its post side in spiking rows
        for j in range(n_pre):
            hit = 0
            for c in range(nky):
                k = ky[c]
                f = _pre_side(k, pre[j], xt[j], cnt) * mant[k]
                xm[j, k] = f
                hit |= f != 0
            xlist[n_x] = j
            n_x += hit
        for e in range(n_post_ev):
            i = post_ev[e] - t0
            yv = yt[i]
            for c in range(nky):
                k = ky[c]
                ym[k, i] = _post_side(k, 1, 0 if third else yv, yv if third else 0, cnt)
    if do_x0:      # columns whose pre neuron spiked x those rows
        dense = n_y == n_post
        for e in range(n_pre_ev):
            j = pre_ev[e] - s0
            for c in range(nkx):
                k = kx[c]
                cx[k] = _pre_side(k, 1, xt[j], cnt) * mant[k]
            if do_y0:
                for c in range(nky):
                    k = ky[c]
                    cx[k] = xm[j, k]
            wc = w[j * n_post:(j + 1) * n_post]
            # rows whose post neuron is silent: only the x0 terms, one term at a time over the rows
            if dense:
                for i in range(n_post):
                    accs[i] = wc[i] << ACC_SHIFT
                for d in range(nkx):
                    k = kx[d]
                    ck, rk, lk, yk = cx[k], rs[k], ls[k], ym[k]
                    if wcnt[k] == 0:     # the common case stays one branch-free, vectorised loop
                        for i in range(n_post):
                            accs[i] = _add_term(accs[i], ck * yk[i], rk, lk)
                    else:
                        for i in range(n_post):
                            accs[i] = _add_term(accs[i], ck * yk[i] * _wf(wc[i], k, wcnt, wconst), rk, lk)
                for i in range(n_post):
                    wc[i] = _round_clip(accs[i], sign, r128)
            else:
                for c in range(n_y):
                    accs[c] = wc[ylist[c]] << ACC_SHIFT
                for d in range(nkx):
                    k = kx[d]
                    ck, rk, lk, yk = cx[k], rs[k], ls[k], ym[k]
                    if wcnt[k] == 0:
                        for c in range(n_y):
                            accs[c] = _add_term(accs[c], ck * yk[ylist[c]], rk, lk)
                    else:
                        for c in range(n_y):
                            accs[c] = _add_term(accs[c], ck * yk[ylist[c]] * _wf(wc[ylist[c]], k, wcnt, wconst),
                                                rk, lk)
                for c in range(n_y):
                    wc[ylist[c]] = _round_clip(accs[c], sign, r128)
            # rows whose post neuron spiked too: every term, in the rule's order
            for c in range(n_y1):
                i = ylist1[c]
                acc = wc[i] << ACC_SHIFT
                for d in range(nka):
                    k = ka[d]
                    acc = _add_term(acc, cx[k] * ym[k, i] * _wf(wc[i], k, wcnt, wconst), rs[k], ls[k])
                wc[i] = _round_clip(acc, sign, r128)
    if do_y0:      # rows whose post neuron spiked x those columns, but the synapses visited above: y0 terms
        # (where the pre neuron spiked too but the row was not visited, every x0 term's product is 0)
        for e in range(n_post_ev):
            i = post_ev[e] - t0
            skip = yflag[i] != 0
            for c in range(n_x):
                j = xlist[c]
                if skip and pre[j] != 0:
                    continue
                acc = w[j * n_post + i] << ACC_SHIFT
                for d in range(nky):
                    k = ky[d]
                    acc = _add_term(acc, xm[j, k] * ym[k, i] * _wf(w[j * n_post + i], k, wcnt, wconst), rs[k], ls[k])
                w[j * n_post + i] = _round_clip(acc, sign, r128)


@njit(nogil=True)
def _lif(u, v, a, bias, ku, kv, thr, spk, row, ev, first):
    """One LIF step of a population (its slices of the kernel's arrays); returns how many neurons
    spiked, listed in ``ev`` as ``first + i``."""
    n = u.shape[0]
    for i in range(n):
        integrate(u, v, a, bias, ku, kv, i)
    for i in range(n):            # spike where v > vth << 6, reset v there
        fired = v[i] > thr
        spk[i] = fired
        row[i] = fired
        v[i] = 0 if fired else v[i]
    m = 0
    for i in range(n):            # the spiking neurons, in order
        ev[m] = first + i
        m += spk[i]
    return m


@njit(inline="always")
def _decay64(x, keep):
    """Lava's ``sign(x * keep) * (|x * keep| >> 12)`` in int64 (any int32 ``x``, ``keep <= 4096``)."""
    p = np.int64(x) * keep
    return -((-p) >> DECAY_SHIFT_) if p < 0 else p >> DECAY_SHIFT_


@njit(nogil=True)
def _atrlif(i_, v, a, bias, ki, kv, kt, kr, th0, tstep, theta, r, spk, row, ev, first):
    """One ATRLIF step of a population (``PyATRLIFModelFixed``, :mod:`neurocomp.backends.atrlif`: the
    current's int32 sum and single 24-bit wrap and the clipped voltage as the LIF's; the threshold relaxes
    to ``th0``, ``r`` decays; spike where ``int32(v - r) >= theta``, then ``r += 2 theta``, ``theta +=
    tstep``, all int32); returns how many neurons spiked, listed in ``ev`` as ``first + i``."""
    n = i_.shape[0]
    for j in range(n):
        integrate(i_, v, a, bias, ki, kv, j)
        theta[j] = _i32(_i32(_decay64(_i32(np.int64(theta[j]) - th0), kt)) + th0)
        r[j] = _i32(_decay64(r[j], kr))
    m = 0
    for j in range(n):
        fired = _i32(np.int64(v[j]) - r[j]) >= theta[j]
        spk[j] = fired
        row[j] = fired
        if fired:
            r[j] = _i32(np.int64(r[j]) + _i32(2 * np.int64(theta[j])))
            theta[j] = _i32(np.int64(theta[j]) + tstep)
            ev[m] = first + j
            m += 1
    return m


@njit(cache=True, nogil=True, fastmath=False)
def _run_stream(in_ptr, in_idx, rnd, teach,
                node_off, node_size, keep_u, keep_v, threshold, bias,
                proj_src, proj_tgt, proj_woff, proj_exp, weights,
                pl_proj, pl_xoff, pl_yoff, pl_dx, pl_dy, pl_xtau0, pl_ytau0, pl_ximp, pl_yimp, pl_third,
                pl_tcol, pl_sign, pl_tstart, pl_tstop, d_teacher,
                tm_dep, tm_mant, tm_rs, tm_ls, tm_cnt, tm_wcnt, tm_wconst,
                u, v, a_cur, x1, ytr, first, updates,
                trains, probe, u_out, v_out, peaks, peak_u, peak_v, fired_any,
                pop_kind, keep_t, keep_r, th0, tstep, theta, rr, theta_init, has_init, step0):
    """``n = len(in_ptr) - 1`` steps of the stream from the given state (updated in place).

    in_ptr/in_idx  the input's spiking channels per step (CSR)
    rnd            float64 ``[n, 3Q]``: per plastic projection its x-decay, y-decay and weight-rounding
                   random number of each step
    teach          int64 ``[n, columns]``: third-factor values, plastic projection ``q`` at ``pl_tcol[q]``
    node_off/size  node 0 is the input, node ``p + 1`` population ``p``; neuron arrays (u, v, a_cur,
                   bias, the spike vector) are indexed ``node_off[node] + i``
    keep_u/keep_v/threshold  per population, int32 (``4095 - du``, ``4096 - dv``, ``vth << 6`` clamped)
    proj_*         per projection: source/target node, offset of its transposed weights
                   ``[n_pre, n_post]`` in ``weights`` (int64), weight exponent
    pl_*           per plastic projection (``Q``): projection index, trace offsets in ``x1``/``ytr``,
                   decay factors and tau-0 flags, impulses, third-factor flag, teacher column, sign
                   mode, its terms ``tm_*[pl_tstart:pl_tstop]``
    tm_cnt         int64 ``[K, 5]``: how often x0, x1, y0, y1, y2 occur among a term's factors
    tm_wcnt/wconst per term: whether it has the weight as a factor, and that factor's constant
    pop_kind       per population: 0 LIF, 1 ATRLIF (``u`` holds its current ``i``; ``keep_t``/``keep_r``,
                   ``th0``/``tstep`` (``<< 6``), state ``theta``/``rr``; ``theta_init`` replaces ``theta``
                   after the stream's first step where ``has_init``; ``step0``: this chunk's first step)
    first          1 until the projection's first epoch that does work (then every synapse is visited)
    trains         bool ``[n, n_neurons]`` (written): every population's spikes, neuron ``i`` in column
                   ``i - n_in``; ``u_out``/``v_out`` likewise when ``probe``; ``peak_*``, ``fired_any``
                   per population when ``peaks``

    The loops over neurons are split so that LLVM vectorises them (a branch or a data-dependent store
    in a neuron loop stops it); the LIF and the learning epoch are their own compiled functions
    (:func:`_lif`, :func:`_plastic_epoch`) for the same reason.
    """
    n_steps = in_ptr.shape[0] - 1
    n_nodes = node_off.shape[0]
    n_pops = n_nodes - 1
    n_in = node_size[0]
    n_spk = node_off[n_nodes - 1] + node_size[n_nodes - 1]
    n_proj = proj_src.shape[0]
    n_pl = pl_proj.shape[0]
    max_n = 1
    for nd in range(n_nodes):
        max_n = max(max_n, node_size[nd])
    max_k = 1
    for q in range(n_pl):
        max_k = max(max_k, pl_tstop[q] - pl_tstart[q])
    spk = np.zeros(n_spk, np.int64)
    ev = np.zeros(n_spk, np.int64)
    ev_n = np.zeros(n_nodes, np.int64)
    a_next = np.zeros(n_spk, np.int32)
    dot = np.zeros(max_n, np.int64)
    xm = np.zeros((max_n, max_k), np.int64)
    ym = np.zeros((max_k, max_n), np.int64)
    ylist1 = np.zeros(max_n, np.int64)
    accs = np.zeros(max_n, np.int64)
    cx = np.zeros(max_k, np.int64)
    kx = np.zeros(max_k, np.int64)
    ky = np.zeros(max_k, np.int64)
    ka = np.zeros(max_k, np.int64)
    ylist = np.zeros(max_n, np.int64)
    yflag = np.zeros(max_n, np.int64)
    xlist = np.zeros(max_n, np.int64)
    for t in range(n_steps):
        # -- the input's spikes
        for e in range(ev_n[0]):
            spk[ev[e]] = 0
        m = 0
        for e in range(in_ptr[t], in_ptr[t + 1]):
            c = in_idx[e]
            spk[c] = 1
            ev[m] = c
            m += 1
        ev_n[0] = m
        # -- 1. LIF of every population from the activation buffered at t-1
        row = trains[t]
        for p in range(n_pops):
            lo = node_off[p + 1]
            hi = lo + node_size[p + 1]
            if pop_kind[p] == 1:
                m = _atrlif(u[lo:hi], v[lo:hi], a_cur[lo:hi], bias[lo:hi], keep_u[p], keep_v[p], keep_t[p],
                            keep_r[p], th0[p], tstep[p], theta[lo:hi], rr[lo:hi], spk[lo:hi],
                            row[lo - n_in:hi - n_in], ev[lo:hi], lo)
                if step0 + t == 0 and has_init[p] != 0:      # Lava: a learned threshold after step 1
                    for i in range(lo, hi):
                        theta[i] = theta_init[i]
            else:
                m = _lif(u[lo:hi], v[lo:hi], a_cur[lo:hi], bias[lo:hi], keep_u[p], keep_v[p], threshold[p],
                         spk[lo:hi], row[lo - n_in:hi - n_in], ev[lo:hi], lo)
            ev_n[p + 1] = m
            if probe:
                for i in range(lo, hi):
                    u_out[t, i - n_in] = u[i]
                    v_out[t, i - n_in] = v[i]
            if peaks:
                pu, pv = peak_u[p], peak_v[p]
                for i in range(lo, hi):
                    pu = max(pu, abs(np.int64(u[i])))
                    pv = max(pv, abs(np.int64(v[i])))
                peak_u[p], peak_v[p] = pu, pv
                if m > 0:
                    fired_any[p] = 1
        # -- 2. delivery: what every projection sends for step t+1 (weights before this step's learning)
        for i in range(n_in, n_spk):
            a_next[i] = 0
        for r in range(n_proj):
            src, tgt = proj_src[r], proj_tgt[r]
            ns = ev_n[src]
            we = proj_exp[r]
            if ns == 0 or we >= 32:       # nothing sent, or acc << e has 32 zero low bits
                continue
            n_post = node_size[tgt]
            woff = proj_woff[r]
            s0 = node_off[src]
            d = dot[:n_post]
            rb = woff + (ev[s0] - s0) * n_post
            for i in range(n_post):
                d[i] = weights[rb + i]
            for e in range(s0 + 1, s0 + ns):
                rb = woff + (ev[e] - s0) * n_post
                for i in range(n_post):
                    d[i] += weights[rb + i]
            an = a_next[node_off[tgt]:node_off[tgt] + n_post]
            if we >= 0:
                for i in range(n_post):
                    an[i] = _i32(an[i] + _i32(d[i] << we))
            else:
                sh = min(-we, 63)
                for i in range(n_post):
                    an[i] = _i32(an[i] + _i32(d[i] >> sh))
        for i in range(n_in, n_spk):
            a_cur[i] = a_next[i]
        # -- 3. one learning epoch per plastic projection
        for q in range(n_pl):
            r = pl_proj[q]
            src, tgt = proj_src[r], proj_tgt[r]
            s0, t0 = node_off[src], node_off[tgt]
            n_pre, n_post = node_size[src], node_size[tgt]
            woff = proj_woff[r]
            ts, te = pl_tstart[q], pl_tstop[q]
            rx, ry, rc = rnd[t, 3 * q], rnd[t, 3 * q + 1], rnd[t, 3 * q + 2]
            third = pl_third[q] != 0
            pre = spk[s0:s0 + n_pre]
            post = spk[t0:t0 + n_post]
            xt = x1[pl_xoff[q]:pl_xoff[q] + n_pre]
            yt = ytr[pl_yoff[q]:pl_yoff[q] + n_post]
            # traces (a zero trace decays to zero, floor(0) + (r < 0): only non-zero ones are decayed)
            if pl_xtau0[q] != 0:
                xt[:] = 0
            else:
                dx = pl_dx[q]
                for j in range(n_pre):
                    if xt[j] != 0:
                        xt[j] = _trace_decay(xt[j], dx, False, rx)
            ximp = pl_ximp[q]
            for j in range(n_pre):
                xt[j] = min(xt[j] + ximp, TRACE_MAX) if pre[j] != 0 else xt[j]
            if third:
                tv = teach[t, pl_tcol[q]:pl_tcol[q] + n_post]
                for i in range(n_post):
                    val = tv[i]
                    if val != 0:
                        val = _trace_decay(val, d_teacher, False, ry)
                    yt[i] = min(max(val, 0), TRACE_MAX)
            else:
                if pl_ytau0[q] != 0:
                    yt[:] = 0
                else:
                    dy = pl_dy[q]
                    for i in range(n_post):
                        if yt[i] != 0:
                            yt[i] = _trace_decay(yt[i], dy, False, ry)
                yimp = pl_yimp[q]
                for i in range(n_post):
                    yt[i] = min(yt[i] + yimp, TRACE_MAX) if post[i] != 0 else yt[i]
            n_pre_ev, n_post_ev = ev_n[src], ev_n[tgt]
            if n_pre_ev == 0 and n_post_ev == 0:
                continue          # every product is gated by a spike: nothing changes
            updates[q] += 1
            full = first[q] != 0      # the first epoch with work visits every synapse (weights into range)
            first[q] = 0
            _plastic_epoch(weights[woff:woff + n_pre * n_post], n_pre, n_post, pre, post, ev[s0:s0 + n_pre_ev],
                           n_pre_ev, ev[t0:t0 + n_post_ev], n_post_ev, s0, t0, xt, yt, third, full, pl_sign[q],
                           rc, tm_dep[ts:te], tm_mant[ts:te], tm_rs[ts:te], tm_ls[ts:te], tm_cnt[ts:te], xm, ym,
                           ylist, yflag, xlist, cx, kx, ky, ka, ylist1, accs, tm_wcnt[ts:te], tm_wconst[ts:te])


# ---------------------------------------------------------------------------------- the driver
def jit_problem(net) -> Optional[str]:
    """Why the compiled engine cannot run ``net`` exactly as the stepper does (None when it can)."""
    from neurocomp.ir import LoihiATRLIF, LoihiLIF
    for pop in net.populations:
        if not isinstance(pop.neuron, (LoihiLIF, LoihiATRLIF)):
            return f"population {pop.name!r}: {type(pop.neuron).__name__} runs on the stepper"
        for name in (("du", "dv") if isinstance(pop.neuron, LoihiLIF) else ()):
            if not 0 <= getattr(pop.neuron, name) < 4096:
                return f"population {pop.name!r}: {name}={getattr(pop.neuron, name)} is not a 12-bit decay"
    for proj in net.projections:
        rule = proj.plasticity
        if rule is not None and any(sum(f.startswith("w") for f in factors) > 1 for _, factors, _, _ in rule.terms):
            return f"projection {proj.name!r}: a term with the weight twice as a factor runs on the stepper"
    return None


class _Program:
    """A fixed-point network laid out as the kernel's flat arrays."""

    def __init__(self, net, learn: bool, teacher: Dict[str, np.ndarray], steps: int):
        from neurocomp.backends.fixed_point import INT32_LIMIT, VTH_SHIFT, effective_bias, wrap_int32
        from neurocomp.backends.learning_engine import (FACTOR_BITS, THIRD_FACTOR_TAU, W_S_MANT,
                                                        W_ACCUMULATOR_U, initial_weights)
        from neurocomp.ir.plasticity import factor_parts
        self.net = net
        self.pops = list(net.populations)
        names = [net.input.name] + [p.name for p in self.pops]
        sizes = [net.input.size] + [p.size for p in self.pops]
        self.node = {n: k for k, n in enumerate(names)}
        self.node_size = np.array(sizes, dtype=np.int64)
        self.node_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.n_in = net.input.size
        n_spk = int(sum(sizes))
        from neurocomp.backends.atrlif import base_threshold, is_adaptive, keeps
        P = len(self.pops)
        self.pop_kind = np.array([int(is_adaptive(p.neuron)) for p in self.pops], dtype=np.int64)
        ks = [keeps(p.neuron) if k else (4095 - p.neuron.du, 4096 - p.neuron.dv, 4096, 4096)
              for p, k in zip(self.pops, self.pop_kind)]
        self.keep_u = np.array([k[0] for k in ks], dtype=np.int32)
        self.keep_v = np.array([k[1] for k in ks], dtype=np.int32)
        self.keep_t = np.array([k[2] for k in ks], dtype=np.int64)
        self.keep_r = np.array([k[3] for k in ks], dtype=np.int64)
        self.threshold = np.array([0 if k else np.clip(p.neuron.vth << VTH_SHIFT, -INT32_LIMIT, INT32_LIMIT - 1)
                                   for p, k in zip(self.pops, self.pop_kind)], dtype=np.int32)
        self.th0 = np.array([base_threshold(p.neuron) if k else 0 for p, k in zip(self.pops, self.pop_kind)],
                            dtype=np.int64)
        self.tstep = np.array([(p.neuron.theta_step << 6) if k else 0 for p, k in zip(self.pops, self.pop_kind)],
                              dtype=np.int64)
        self.theta = np.zeros(n_spk, dtype=np.int32)
        self.rr = np.zeros(n_spk, dtype=np.int32)
        self.theta_init = np.zeros(n_spk, dtype=np.int32)
        self.has_init = np.zeros(P, dtype=np.int64)
        for k, p in enumerate(self.pops):
            if self.pop_kind[k]:
                o = self.node_off[k + 1]
                self.theta[o:o + p.size] = self.th0[k]
                if p.neuron.theta_init is not None:
                    self.has_init[k] = 1
                    self.theta_init[o:o + p.size] = wrap_int32(p.neuron.theta_init)
        self.bias = np.zeros(n_spk, dtype=np.int32)
        for k, p in enumerate(self.pops):
            o = self.node_off[k + 1]
            self.bias[o:o + p.size] = wrap_int32(effective_bias(p.neuron))
        projs = list(net.projections)
        self.projs = projs
        blocks, offs, off = [], [], 0
        for p in projs:
            w = initial_weights(p)
            blocks.append(np.ascontiguousarray(w.T, dtype=np.int64).ravel())
            offs.append(off)
            off += w.size
        self.weights = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
        self.proj_woff = np.array(offs, dtype=np.int64)
        self.proj_src = np.array([self.node[p.source] for p in projs], dtype=np.int64)
        self.proj_tgt = np.array([self.node[p.target] for p in projs], dtype=np.int64)
        self.proj_exp = np.array([p.synapse.weight_exp for p in projs], dtype=np.int64)
        plastic = [(r, p) for r, p in enumerate(projs) if p.plasticity is not None and learn]
        self.plastic = plastic
        Q = len(plastic)
        pl = {k: np.zeros(Q, dtype=np.int64) for k in ("proj", "xoff", "yoff", "xtau0", "ytau0", "ximp",
                                                       "yimp", "third", "tcol", "sign", "tstart", "tstop")}
        pl["dx"], pl["dy"] = np.zeros(Q), np.zeros(Q)
        terms, xo, yo, tc, cols = [], 0, 0, 0, []
        self.draws = []
        for q, (r, p) in enumerate(plastic):
            rule = p.plasticity
            n_post, n_pre = p.synapse.shape
            pl["proj"][q], pl["xoff"][q], pl["yoff"][q] = r, xo, yo
            xo += n_pre
            yo += n_post
            # the stepper's own float64 decay factors (numpy's exp, not libm's)
            pl["dx"][q] = np.exp(-1 / np.float64(rule.x1_tau)) if rule.x1_tau else 0.0
            pl["dy"][q] = np.exp(-1 / np.float64(rule.y1_tau)) if rule.y1_tau else 0.0
            pl["xtau0"][q], pl["ytau0"][q] = rule.x1_tau == 0, rule.y1_tau == 0
            pl["ximp"][q], pl["yimp"][q] = rule.x1_impulse, rule.y1_impulse
            pl["third"][q] = rule.third_factor
            pl["sign"][q] = p.synapse.sign_mode
            if rule.third_factor:
                given = np.asarray(teacher[p.name], dtype=np.int64)
                if given.ndim != 2 or given.shape[0] < steps or given.shape[1] != n_post:
                    raise ValueError(f"teacher for {p.name!r}: shape {given.shape}, expected ({steps}, {n_post})")
                pl["tcol"][q] = tc
                tc += n_post
                cols.append(given[:steps])
            pl["tstart"][q] = len(terms)
            for dep, factors, mant, exp in rule.terms:
                parts = [factor_parts(f) for f in factors]     # "w-254" -> ("w", -254)
                width = W_S_MANT + sum(FACTOR_BITS[f] for f, _ in parts)
                counts = [sum(1 for f, _ in parts if f == code) for code in _FACTORS]
                wconst = [c for f, c in parts if f == "w"]
                terms.append((0 if dep == "x0" else 1, mant, max(0, width - W_ACCUMULATOR_U), exp + 7, counts,
                              len(wconst), wconst[0] if wconst else 0))
            pl["tstop"][q] = len(terms)
            self.draws.append((_LavaDraws(rule.rng_seed), _LavaDraws(rule.rng_seed + 2), _LavaDraws(2)))
        self.pl = pl
        self.d_teacher = float(np.exp(-1 / np.float64(THIRD_FACTOR_TAU)))
        self.teacher = (np.ascontiguousarray(np.concatenate(cols, axis=1)) if cols
                        else np.zeros((steps, 0), dtype=np.int64))
        K = max(1, len(terms))
        self.tm_dep = np.array([t[0] for t in terms] or [0], dtype=np.int64)[:K]
        self.tm_mant = np.array([t[1] for t in terms] or [0], dtype=np.int64)[:K]
        self.tm_rs = np.array([t[2] for t in terms] or [0], dtype=np.int64)[:K]
        self.tm_ls = np.array([t[3] for t in terms] or [0], dtype=np.int64)[:K]
        self.tm_cnt = np.array([t[4] for t in terms] or [[0] * 5], dtype=np.int64).reshape(K, 5)
        self.tm_wcnt = np.array([t[5] for t in terms] or [0], dtype=np.int64)[:K]
        self.tm_wconst = np.array([t[6] for t in terms] or [0], dtype=np.int64)[:K]
        # state
        self.u = np.zeros(n_spk, dtype=np.int32)
        self.v = np.zeros(n_spk, dtype=np.int32)
        self.a = np.zeros(n_spk, dtype=np.int32)
        self.x1 = np.zeros(max(xo, 1), dtype=np.int64)
        self.ytr = np.zeros(max(yo, 1), dtype=np.int64)
        self.first = np.ones(Q, dtype=np.int64)
        self.updates = np.zeros(Q, dtype=np.int64)
        P = len(self.pops)
        self.peak_u = np.zeros(P, dtype=np.int64)
        self.peak_v = np.zeros(P, dtype=np.int64)
        self.fired_any = np.zeros(P, dtype=np.int64)

    def random_chunk(self, t_lo: int, t_hi: int) -> np.ndarray:
        """``[t_hi - t_lo + 1, 3Q]`` random numbers for steps ``t_lo..t_hi`` (1-based): draws ``2t``, ``2t``, ``t``."""
        out = np.zeros((t_hi - t_lo + 1, 3 * len(self.draws)))
        for q, (dx, dy, dc) in enumerate(self.draws):
            out[:, 3 * q] = dx.take(2 * t_lo, 2 * t_hi + 1, 2)
            out[:, 3 * q + 1] = dy.take(2 * t_lo, 2 * t_hi + 1, 2)
            out[:, 3 * q + 2] = dc.take(t_lo, t_hi + 1, 1)
        return out

    def weights_of(self, r: int) -> np.ndarray:
        p = self.projs[r]
        n_post, n_pre = p.synapse.shape
        o = self.proj_woff[r]
        return self.weights[o:o + n_post * n_pre].reshape(n_pre, n_post).T.copy()


def run_stream_jit(net, stream: np.ndarray, teacher: Dict[str, np.ndarray], learn: bool, probe: bool,
                   probe_peaks: bool, progress=None):
    """The compiled run of ``stream`` (bool ``[steps, n_in]``) through fixed-point ``net`` (checked by the
    caller). Returns ``(trains {pop: [steps, n] bool}, (u, v) {pop: [steps, n] int64} or {},
    weights {proj: [n_post, n_pre] int64}, learning_updates {proj: int}, peaks {pop: (u, v)} or {},
    thresholds {ATRLIF pop: [n] int64})``."""
    from neurocomp.backends.fixed_point import VTH_SHIFT, _jit_module
    _jit_module()   # numba's cache directory set up as for the batched engine
    steps = len(stream)
    prog = _Program(net, learn, teacher, steps)
    n_neurons = int(prog.node_size[1:].sum())
    trains = np.zeros((steps, n_neurons), dtype=bool)
    u_out = np.zeros((steps, n_neurons) if probe else (0, 0), dtype=np.int64)
    v_out = np.zeros_like(u_out)
    pl = prog.pl
    for lo in range(0, steps, CHUNK):
        hi = min(lo + CHUNK, steps)
        part = stream[lo:hi]
        k, c = np.nonzero(part)
        ptr = np.zeros(hi - lo + 1, dtype=np.int64)
        np.cumsum(np.bincount(k, minlength=hi - lo), out=ptr[1:])
        rnd = prog.random_chunk(lo + 1, hi)
        teach = np.ascontiguousarray(prog.teacher[lo:hi])
        _run_stream(ptr, c.astype(np.int64), rnd, teach,
                    prog.node_off, prog.node_size, prog.keep_u, prog.keep_v, prog.threshold, prog.bias,
                    prog.proj_src, prog.proj_tgt, prog.proj_woff, prog.proj_exp, prog.weights,
                    pl["proj"], pl["xoff"], pl["yoff"], pl["dx"], pl["dy"], pl["xtau0"], pl["ytau0"], pl["ximp"],
                    pl["yimp"], pl["third"], pl["tcol"], pl["sign"], pl["tstart"], pl["tstop"], prog.d_teacher,
                    prog.tm_dep, prog.tm_mant, prog.tm_rs, prog.tm_ls, prog.tm_cnt, prog.tm_wcnt, prog.tm_wconst,
                    prog.u, prog.v, prog.a, prog.x1, prog.ytr, prog.first, prog.updates,
                    trains[lo:hi], probe, u_out[lo:hi] if probe else u_out, v_out[lo:hi] if probe else v_out,
                    probe_peaks, prog.peak_u, prog.peak_v, prog.fired_any,
                    prog.pop_kind, prog.keep_t, prog.keep_r, prog.th0, prog.tstep, prog.theta, prog.rr,
                    prog.theta_init, prog.has_init, lo)
        if progress:
            progress(hi, steps)
    out_trains, states, peaks = {}, {}, {}
    for k, p in enumerate(prog.pops):
        o = prog.node_off[k + 1] - prog.n_in
        out_trains[p.name] = trains[:, o:o + p.size]
        if probe:
            states[p.name] = (u_out[:, o:o + p.size], v_out[:, o:o + p.size])
        if probe_peaks:
            vth = int(p.neuron.vth << VTH_SHIFT) if prog.fired_any[k] and not prog.pop_kind[k] else 0
            peaks[p.name] = (int(prog.peak_u[k]), max(int(prog.peak_v[k]), vth))
    weights = {prog.projs[r].name: prog.weights_of(r) for r, _ in prog.plastic}
    thresholds = {p.name: prog.theta[prog.node_off[k + 1]:prog.node_off[k + 1] + p.size].astype(np.int64)
                  for k, p in enumerate(prog.pops) if prog.pop_kind[k]}
    updates = {prog.projs[r].name: int(prog.updates[q]) for q, (r, _) in enumerate(prog.plastic)}
    return out_trains, states, weights, updates, peaks, thresholds
