"""The ``cpu`` target against Lava's own bit-accurate process models, at the edges of the integer ranges.

Every hypothesis example is one random network run on the same input spikes by Lava's runtime
(``LIFReset``/``Dense`` process models, ``Loihi2SimCfg(select_tag="fixed_pt")``, u/v read every step
by Lava ``Monitor``s) and by :func:`neurocomp.backends.batch_engine.simulate` with both fixed-point engines —
the compiled event-driven kernel (``engine="jit"``, the ``cpu`` target) and the numpy GEMM path
(``engine="numpy"``). Every spike and every u/v value must be identical.

Further down, property tests without Lava compare the two engines directly on many more random
networks (the same edge-case networks, wide ones that exercise the kernel's unrolled row sums and
its threads, split source blocks, extreme weight exponents).

To make a handful of Lava runs count, each example packs four populations with different roles
into one process graph:

* ``wrap``  — slow current decay, big same-sign weights on always-on inputs: ``u`` runs into the
  24-bit wrap-around (both directions);
* ``clip``  — fast current decay, slow voltage decay, strong inhibition: ``v`` hits the
  ``-(2**23-1)`` clip;
* ``free``  — every parameter drawn from its full legal range, biased towards the extremes
  (du/dv 0 and 4095, vth 0 and 2**17-1, weights beyond 8 bits, all sign modes and widths);
* ``out``   — fed by all three (Lava adds the three Dense messages in its int32 InPort), with weight
  exponents up to 2**27 so the int32 ``a << 6`` and the int32 channel wrap around.

Whether an edge really happened is decided from Lava's own traces by :func:`edge_events` (written
here with Lava's weight utilities and plain int64 numpy, sharing no code with neurocomp), and the
test asserts every edge occurred at least once, so it cannot pass vacuously.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from neurocomp.backends import fixed_point as fxp
from neurocomp.backends.lava import run_lava
from neurocomp.backends.batch_engine import simulate
from neurocomp.ir import Input, LoihiDense, LoihiLIF, Network, Population, Projection

N_IN, DRIVE = 10, 3  # the first DRIVE input channels spike at every step
M23 = 2 ** 23


# ------------------------------------------------------------------------------------ strategies
def decay():
    return st.one_of(st.sampled_from([0, 1, 4094, 4095]), st.integers(0, 4095))


def vth():
    return st.one_of(st.sampled_from([0, 1, 2 ** 17 - 1]), st.integers(0, 2 ** 17 - 1))


@st.composite
def lif(draw, n, du=None, dv=None):
    bias_kind = draw(st.sampled_from(["zero", "small", "full"]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    bias = {"zero": np.zeros(n, dtype=np.int64), "small": rng.integers(-20, 21, n),
            "full": rng.integers(-4096, 4096, n)}[bias_kind]
    return LoihiLIF(n, du=draw(du if du is not None else decay()), dv=draw(dv if dv is not None else decay()),
                    vth=draw(vth()), bias_mant=bias, bias_exp=draw(st.integers(-2, 7)))


@st.composite
def dense(draw, n_post, n_pre, exps, driven_sign=0):
    """Random weights (``driven_sign`` != 0: large weights of that sign on the always-on inputs)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    w = rng.integers(-300, 301, (n_post, n_pre))          # beyond 8 bits: Lava clips per sign mode
    if driven_sign:
        w = driven_sign * rng.integers(0, 256, (n_post, n_pre))
        w[:, :DRIVE] = driven_sign * rng.integers(150, 256, (n_post, DRIVE))
        sign_mode = draw(st.sampled_from([fxp.MIXED, fxp.EXCITATORY if driven_sign > 0 else fxp.INHIBITORY]))
        nwb = draw(st.integers(5, 8))
    else:
        sign_mode = draw(st.sampled_from([fxp.MIXED, fxp.EXCITATORY, fxp.INHIBITORY]))
        nwb = draw(st.integers(1, 8))
    return LoihiDense(w, num_weight_bits=nwb, weight_exp=draw(exps), sign_mode=sign_mode)


@st.composite
def cases(draw):
    T = draw(st.integers(20, 28))
    samples = draw(st.integers(2, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    density = draw(st.sampled_from([0.1, 0.4, 0.8]))
    spikes = rng.random((samples, T, N_IN)) < density
    spikes[:, :, :DRIVE] = True
    if draw(st.booleans()):   # some samples start silent: state must not leak from the previous one
        spikes[0, : T // 2] = False
    wrap_sign = draw(st.sampled_from([1, -1]))
    pops = [
        Population("wrap", draw(lif(8, du=st.integers(0, 40)))),
        Population("clip", draw(lif(8, du=st.one_of(st.just(4095), st.integers(2000, 4095)),
                                   dv=st.integers(0, 60)))),
        Population("free", draw(lif(8))),
        Population("out", draw(lif(6))),
    ]
    normal_exp = st.integers(-8, 8)
    projs = [
        Projection("in_wrap", "input", "wrap", draw(dense(8, N_IN, st.integers(4, 8), driven_sign=wrap_sign))),
        Projection("in_clip", "input", "clip", draw(dense(8, N_IN, st.integers(4, 7), driven_sign=-1))),
        Projection("in_free", "input", "free", draw(dense(8, N_IN, normal_exp))),
        Projection("wrap_out", "wrap", "out", draw(dense(6, 8, st.one_of(normal_exp, st.integers(17, 27))))),
        Projection("clip_out", "clip", "out", draw(dense(6, 8, normal_exp))),
        Projection("free_out", "free", "out", draw(dense(6, 8, st.one_of(normal_exp, st.integers(20, 27))))),
    ]
    return Network("edges", Input("input", N_IN), pops, projs, "out", T), spikes


# ----------------------------------------------------------------- independent edge detection
def _lava_weights(d: LoihiDense) -> np.ndarray:
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights
    mode = SignMode(d.sign_mode)
    w = clip_weights(d.weight.astype(np.int32), mode, num_bits=8)
    return truncate_weights(w, mode, d.num_weight_bits).astype(np.int64)


def _wrap32(x):
    return ((x + 2 ** 31) % 2 ** 32) - 2 ** 31


def _lava_decay(x, keep):
    p = x.astype(np.int64) * keep
    return np.sign(p) * (np.abs(p) >> 12)


def edge_events(net: Network, spikes_in: np.ndarray, lava) -> Counter:
    """Which integer edges Lava's run actually went through, recomputed from its spikes and u/v."""
    ev = Counter()
    emitted = {"input": spikes_in.astype(bool)}
    emitted.update(lava.spikes)
    for pop in net.populations:
        nrn = pop.neuron
        a = 0
        for pr in net.incoming(pop.name):
            acc = np.einsum("kti,ji->ktj", emitted[pr.source].astype(np.int64), _lava_weights(pr.synapse))
            e = pr.synapse.weight_exp
            shifted = np.left_shift(acc, e) if e > 0 else np.right_shift(acc, -e)
            ev["channel_int32_wrap"] += int(np.sum(shifted != _wrap32(shifted)))
            a = a + _wrap32(shifted)
        a = _wrap32(a)
        ev["act_int32_wrap"] += int(np.sum((a << 6) != _wrap32(a << 6)))
        u, v = lava.states[pop.name]["u"], lava.states[pop.name]["v"]
        u_prev = np.concatenate([np.zeros_like(u[:, :1]), u[:, :-1]], axis=1)   # windows start from 0
        v_prev = np.concatenate([np.zeros_like(v[:, :1]), v[:, :-1]], axis=1)
        pre_u = _wrap32(_lava_decay(u_prev, 4096 - nrn.du - 1) + _wrap32(a << 6))
        ev["u_wrap_up"] += int(np.sum(pre_u > M23))
        ev["u_wrap_down"] += int(np.sum(pre_u <= -M23))
        ev["u_beyond_24_bits"] += int(np.sum((u > M23) | (u <= -M23)))
        bias = (nrn.bias_mant << nrn.bias_exp) if nrn.bias_exp >= 0 else (nrn.bias_mant >> -nrn.bias_exp)
        pre_v = _lava_decay(v_prev, 4096 - nrn.dv) + u + bias
        ev["v_clip_low"] += int(np.sum(pre_v < -(M23 - 1)))
        ev["spikes"] += int(lava.spikes[pop.name].sum())
    return ev


def _params(net: Network) -> Counter:
    seen = Counter()
    for pr in net.projections:
        d = pr.synapse
        seen[f"sign_mode={d.sign_mode}"] += 1
        seen[f"nwb={d.num_weight_bits}"] += 1
        seen["weight_exp<0" if d.weight_exp < 0 else "weight_exp>0" if d.weight_exp > 0 else "weight_exp=0"] += 1
    for p in net.populations:
        n = p.neuron
        for name, value in (("du", n.du), ("dv", n.dv)):
            if value in (0, 4095):
                seen[f"{name}={value}"] += 1
        if n.vth in (0, 2 ** 17 - 1):
            seen[f"vth={n.vth}"] += 1
        seen["bias_exp<0" if n.bias_exp < 0 else "bias_exp>=0"] += 1
    return seen


# ------------------------------------------------------------------------------------------ tests
def assert_same_run(ours, theirs, net: Network, label: str):
    """Every spike, count and u/v value of every population equal (u/v only where both probed)."""
    for pop in net.populations:
        name = pop.name
        assert np.array_equal(ours.spikes[name], theirs.spikes[name]), f"{label}: spikes of {name!r} differ"
        assert np.array_equal(ours.counts[name], theirs.counts[name]), f"{label}: counts of {name!r} differ"
        for var in ("u", "v") if ours.states and theirs.states else ():
            a, b = ours.states[name][var], theirs.states[name][var]
            if not np.array_equal(a, b):
                k, t, i = np.argwhere(a != b)[0]
                raise AssertionError(f"{label}: {name}.{var} differs first at sample {k} step {t} neuron {i}: "
                                     f"{a[k, t, i]} vs {b[k, t, i]}")


@pytest.mark.slow
def test_cpu_target_equals_lava_process_models_at_the_edges():
    events, params, examples = Counter(), Counter(), []

    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases())
    def check(case):
        net, spikes = case
        lava = run_lava(net, spikes, record=True, probe=True)
        for engine in ("jit", "numpy"):
            cpu = simulate(net, spikes, record=True, probe=True, target="cpu", engine=engine)
            assert_same_run(cpu, lava, net, f"{engine} vs Lava")
        events.update(edge_events(net, spikes, lava))
        params.update(_params(net))
        examples.append(1)

    check()
    assert len(examples) >= 8
    for edge in ("u_wrap_up", "u_wrap_down", "u_beyond_24_bits", "v_clip_low",
                 "act_int32_wrap", "channel_int32_wrap", "spikes"):
        assert events[edge] > 0, f"edge {edge!r} never happened in Lava's runs: {dict(events)}"
    for p in ["sign_mode=1", "sign_mode=2", "sign_mode=3", "weight_exp<0", "weight_exp>0",
              "du=0", "du=4095", "dv=0", "dv=4095", "vth=0", f"vth={2 ** 17 - 1}", "bias_exp<0"] + \
             [f"nwb={b}" for b in range(1, 9)]:
        assert params[p] > 0, f"parameter {p} never drawn: {dict(params)}"


# ----------------------------------------------------- the exactness bounds, tested at the boundary
def test_float32_gemm_used_up_to_its_exact_bound_and_float64_beyond():
    """Row L1 = 2**24 is still exact in float32; one more unit is not, and the kernel switches."""
    n = 2 ** 24 // 255 + 1                       # 65794 inputs: 65793 * 255 + 1 = 2**24
    w = np.full((1, n), 255, dtype=np.int64)
    w[0, -1] = 1
    at_bound = fxp.DenseKernel(LoihiDense(w, 8, 0, fxp.EXCITATORY))
    assert at_bound.accumulation_bound == 2 ** 24 and at_bound.gemm_dtype == np.float32
    ones = np.ones((1, 1, n), dtype=bool)
    assert at_bound.activation(ones)[0, 0, 0] == 2 ** 24

    w[0, -1] = 2                                 # 2**24 + 1: not a float32
    past = fxp.DenseKernel(LoihiDense(w, 8, 0, fxp.EXCITATORY))
    assert past.accumulation_bound == 2 ** 24 + 1 and past.gemm_dtype == np.float64
    assert past.activation(ones)[0, 0, 0] == 2 ** 24 + 1
    assert float(np.float32(2 ** 24 + 1)) != 2 ** 24 + 1   # why the switch is needed
    rng = np.random.default_rng(0)
    some = rng.random((3, 2, n)) < 0.5
    exact = some.astype(np.int64) @ fxp.effective_weights(LoihiDense(w, 8, 0, fxp.EXCITATORY)).T
    assert np.array_equal(past.activation(some), exact)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), du=decay(), dv=decay(), vth_=vth(),
       margin=st.integers(1, 1000), bias_exp=st.integers(0, 7))
def test_no_wrap_fast_path_equals_full_int32_emulation_below_its_bound(seed, du, dv, vth_, margin, bias_exp):
    """Below NO_WRAP_ACTIVATION_BOUND, skipping the int32 wrap emulation changes nothing — the
    induction in fixed_point's docstring, checked on activations right at the bound."""
    rng = np.random.default_rng(seed)
    bound = fxp.NO_WRAP_ACTIVATION_BOUND - margin
    neuron = LoihiLIF(16, du, dv, vth_, rng.integers(-4096, 4096, 16), bias_exp)
    fast = fxp.LifKernel(neuron, activation_bound=bound)
    full = fxp.LifKernel(neuron, activation_bound=None)
    assert not fast.exact_int32 and full.exact_int32
    u1, v1, u2, v2 = (np.zeros((8, 16)) for _ in range(4))
    for _ in range(40):
        a = rng.choice([-bound, bound, 0], size=(8, 16)) if rng.random() < 0.5 else \
            rng.integers(-bound, bound + 1, (8, 16))
        s1 = fast.step(u1, v1, fast.scaled_activation(a.astype(np.float32)))
        s2 = full.step(u2, v2, full.scaled_activation(a.astype(np.float64)))
        assert np.array_equal(s1, s2) and np.array_equal(u1, u2) and np.array_equal(v1, v2)
        assert np.all(np.abs(u1) <= 2 ** 23)


# ------------------------------------------------- compiled event-driven kernel vs the numpy path
def _both_engines(net, spikes, label):
    jit = simulate(net, spikes, record=True, probe=True, engine="jit")
    ref = simulate(net, spikes, record=True, probe=True, engine="numpy")
    assert_same_run(jit, ref, net, label)
    return jit


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_jit_engine_equals_numpy_engine_at_the_edges(case):
    """The edge-case networks of the Lava test (24-bit wrap, v clip, int32 channel/InPort/a<<6 wraps,
    every sign mode and width), many more of them: every spike, count and u/v value equal."""
    net, spikes = case
    _both_engines(net, spikes, "jit vs numpy")


@st.composite
def wide_cases(draw):
    """Two or three layers wide enough for the kernel's 8-row unrolled sums, and enough samples
    (> fixed_point_jit.SAMPLES_PER_TASK) to run on its thread pool; parameters at the extremes."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    sizes = [draw(st.integers(1, 300))] + [draw(st.integers(1, 70)) for _ in range(draw(st.integers(1, 2)))] + \
        [draw(st.integers(1, 12))]
    T, samples = draw(st.integers(1, 30)), draw(st.integers(1, 40))
    spikes = rng.random((samples, T, sizes[0])) < draw(st.sampled_from([0.0, 0.05, 0.15, 0.5, 1.0]))
    exps = st.one_of(st.integers(-8, 8), st.sampled_from([-40, 12, 20, 27]))
    pops, projs = [], []
    for d, (n_pre, n) in enumerate(zip(sizes, sizes[1:])):
        src = "input" if d == 0 else f"l{d - 1}"
        pops.append(Population(f"l{d}", draw(lif(n))))
        projs.append(Projection(f"p{d}", src, f"l{d}", draw(dense(n, n_pre, exps))))
    return Network("wide", Input("input", sizes[0]), pops, projs, pops[-1].name, T), spikes


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@pytest.mark.slow
@given(case=wide_cases())
def test_jit_engine_equals_numpy_engine_on_wide_networks(case):
    net, spikes = case
    _both_engines(net, spikes, "jit vs numpy")


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_source_blocks_summed_in_int64_change_nothing(case):
    """The kernel cuts fan-ins above 8 million into blocks whose int32 sums cannot overflow and adds
    the blocks in int64; with blocks of 8 forced, every population must still equal the numpy path."""
    net, spikes = case
    ref = simulate(net, spikes, record=True, probe=True, engine="numpy")
    emitted = {"input": spikes, **ref.spikes}
    for pop in net.populations:
        incoming = net.incoming(pop.name)
        kernel = fxp.LifPopulationKernel(pop.neuron, [pr.synapse for pr in incoming], max_block=8)
        if pop.name != "out":
            assert len(kernel.blocks) - 1 > len(incoming)        # N_IN = 10 sources: really split
        out, counts, (u, v) = kernel.run([emitted[pr.source] for pr in incoming], probe=True)
        assert np.array_equal(out, ref.spikes[pop.name]) and np.array_equal(counts, ref.counts[pop.name])
        assert np.array_equal(u, ref.states[pop.name]["u"]) and np.array_equal(v, ref.states[pop.name]["v"])


@pytest.mark.parametrize("weight_exp", [-70, -64, -63, -33, -32, -31, 24, 25, 31, 32, 33, 63, 64, 70])
def test_extreme_weight_exponents_shift_like_numpy(weight_exp):
    """Shifts by 32 or more (int32 channel keeps nothing of ``acc << e``) and by 64 or more (numpy's
    defined results) give the same as the numpy path, for both signs of the accumulated sum."""
    rng = np.random.default_rng(abs(weight_exp))
    w = rng.integers(-256, 256, (5, 40))
    net = Network("exp", Input("input", 40), [Population("out", LoihiLIF(5, 100, 100, 1000))],
                  [Projection("p", "input", "out", LoihiDense(w, 8, weight_exp, fxp.MIXED))], "out", 12)
    spikes = rng.random((3, 12, 40)) < 0.5
    u = _both_engines(net, spikes, f"weight_exp={weight_exp}").states["out"]["u"]
    if -63 < weight_exp < 0:
        assert np.any(u != 0)
    if weight_exp >= 26:   # mixed 8-bit weights are even: int32(acc << e << 6) keeps nothing
        assert not np.any(u)


def test_jit_engine_takes_any_spike_dtype_and_writes_into_out():
    """Non-zero input of any dtype is a spike (Lava's bool cast); ``out`` receives the spikes."""
    rng = np.random.default_rng(1)
    denses = [LoihiDense(rng.integers(-100, 100, (7, 20)), 8, 0, fxp.MIXED),
              LoihiDense(rng.integers(-100, 100, (7, 5)), 6, 2, fxp.MIXED)]
    kernel = fxp.LifPopulationKernel(LoihiLIF(7, 300, 200, 50), denses)
    a, b = rng.random((4, 9, 20)) < 0.3, rng.random((4, 9, 5)) < 0.3
    spikes, counts, _ = kernel.run([a, b])
    out = np.zeros((4, 9, 7), dtype=bool)
    again, counts2, _ = kernel.run([a * 2.5, b.astype(np.int8) * -3], out=out)
    assert again is out and np.array_equal(out, spikes) and np.array_equal(counts, counts2)
    assert np.array_equal(counts, spikes.sum(axis=1)) and spikes.any()
    with pytest.raises(ValueError):
        kernel.run([a])                              # 20 source neurons, the kernel expects 25


def test_int32_decay_equals_lavas_int64_product_at_the_extremes():
    """The kernel's decay splits Lava's 44-bit ``u * keep`` into int32 pieces: equal to Lava's
    ``sign(p) * (|p| >> 12)`` in int64 for every keep and |u| up to 2**31 - 2**24 (the most a wrapped
    u can hold), v up to the 24-bit clip with keep = 4096 — edges and random values."""
    from numba import njit

    from neurocomp.backends.fixed_point_jit import _decay

    @njit
    def decay_all(x, keep, out):
        for i in range(x.shape[0]):
            out[i] = _decay(x[i], keep)

    rng = np.random.default_rng(0)
    u_max, v_max = 2 ** 31 - 2 ** 24, M23 - 1
    edges = np.array([0, 1, 4095, 4096, 4097, M23 - 1, M23, 2 ** 24, 2 ** 30, u_max - 1, u_max], dtype=np.int64)
    u = np.concatenate([edges, -edges, rng.integers(-u_max, u_max + 1, 20000)]).astype(np.int32)
    v = np.concatenate([edges[edges <= v_max], -edges[edges <= v_max],
                        rng.integers(-v_max, v_max + 1, 20000)]).astype(np.int32)
    for x, keeps in ((u, [0, 1, 2, 2047, 3071, 4094, 4095]), (v, [0, 1, 3584, 4095, 4096])):
        for keep in keeps:
            out = np.empty_like(x)
            decay_all(x, np.int32(keep), out)
            assert np.array_equal(out, _lava_decay(x, keep)), f"keep={keep}"
