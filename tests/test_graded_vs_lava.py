"""Graded (direct-current) input: the ``cpu`` target's engines against Lava's own process models.

Every hypothesis example of the Lava test is one random network whose input is graded — a
``RingBuffer`` of int32 values into ``Dense`` / ``Conv`` processes with ``num_message_bits > 0`` —
run by Lava's runtime (``Loihi2SimCfg(select_tag="fixed_pt")``, u/v read every step by ``Monitor``s)
and by :func:`neurocomp.backends.batch_engine.simulate` with both fixed-point engines (the compiled
kernels, ``engine="jit"``, and the numpy reference, ``engine="numpy"``). Every spike and every u/v value
must be identical.

Each example packs four populations into one process graph:

* ``dot``  — a graded Dense with big same-sign weights on inputs at the top of the message range, so
  the int32 dot product Lava forms wraps around, and weight exponents down to -8, where the shift of
  the wrapped sum differs from the shift of the exact one;
* ``free`` — a graded Dense with every parameter drawn from its full range (weights beyond 8 bits, all
  sign modes and widths, both signs of ``weight_exp``, LIF decays/threshold/bias at the extremes);
* ``conv`` — a graded Conv whose sums run past 24 bits (Lava's wrap) while staying below 2**31;
* ``out``  — binary Dense from all three (Lava adds their messages in its int32 InPort), weight
  exponents up to 2**20 so ``a << 6`` wraps.

Input values are drawn per channel from {0, 2**k - 1, anything in between}, either the same every step
(what ``encode`` makes of a ``current`` input: a zero-stride view) or changing from step to step;
``num_message_bits`` includes 1 and 24. Which edges Lava's run went through is recomputed from its own
traces by :func:`edge_events` (Lava's weight utilities, torch's conv2d and int64 numpy; no neurocomp
code), and the test asserts each edge occurred, so it cannot pass vacuously. Without Lava, further
property tests compare the two engines on many more random layers, and check the refusals.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from neurocomp.backends import graded
from neurocomp.backends.batch_engine import simulate
from neurocomp.ir import CurrentEncoding, Input, LoihiDense, LoihiLIF, Network, Population, Projection, encode
from neurocomp.ir.synapses import LoihiConv

N_IN, SHAPE = 10, (1, 2, 5)
DRIVE = 3                     # input channels held at the top of the message range in the "dot" layer


# ------------------------------------------------------------------------------------ strategies
def decay():
    return st.one_of(st.sampled_from([0, 1, 4094, 4095]), st.integers(0, 4095))


@st.composite
def lif(draw, n, du=None, vth=None):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    bias = {"zero": np.zeros(n, np.int64), "full": rng.integers(-4096, 4096, n)}[draw(st.sampled_from(["zero", "full"]))]
    return LoihiLIF(n, du=draw(du if du is not None else decay()), dv=draw(decay()),
                    vth=draw(vth if vth is not None else st.one_of(st.sampled_from([0, 1, 2 ** 17 - 1]),
                                                                   st.integers(0, 2 ** 17 - 1))),
                    bias_mant=bias, bias_exp=draw(st.integers(-2, 7)))


@st.composite
def values(draw, samples, steps, bits):
    """Input values ``[samples, steps, N_IN]``: per channel 0, the maximum, or random; constant over the
    steps (a zero-stride view, as encode returns) or not. The DRIVE first channels sit at the maximum."""
    top = 2 ** bits - 1
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    kind = rng.integers(0, 3, N_IN)
    kind[:DRIVE] = 1
    constant = draw(st.booleans())
    shape = (samples, 1 if constant else steps, N_IN)
    x = rng.integers(0, top + 1, shape)
    x[..., kind == 0] = 0
    x[..., kind == 1] = top
    if not constant and draw(st.booleans()):     # some channels switch between the two ends
        flip = rng.random(shape) < 0.3
        x = np.where(flip & (kind == 2), rng.choice([0, top], shape), x)
    x = x.astype(CurrentEncoding(bits).dtype)
    return np.broadcast_to(x, (samples, steps, N_IN)) if constant else x


@st.composite
def cases(draw):
    bits = draw(st.sampled_from([1, 8, 16, 24]) | st.integers(1, 24))
    T, samples = draw(st.integers(8, 12)), draw(st.integers(2, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x = draw(values(samples, T, bits))
    sign = draw(st.sampled_from([1, -1]))
    w_dot = sign * rng.integers(0, 256, (6, N_IN))
    w_dot[:, :DRIVE] = sign * rng.integers(128, 256, (6, DRIVE))
    dot = LoihiDense(w_dot, num_weight_bits=draw(st.integers(6, 8)), weight_exp=draw(st.integers(-8, -5)),
                     sign_mode=draw(st.sampled_from([1, 2 if sign > 0 else 3])), num_message_bits=bits)
    free = LoihiDense(rng.integers(-300, 301, (6, N_IN)), num_weight_bits=draw(st.integers(1, 8)),
                      weight_exp=draw(st.integers(-8, 8)), sign_mode=draw(st.sampled_from([1, 2, 3])),
                      num_message_bits=bits)
    # the largest even weight magnitude that keeps sum |w| * max value below 2**31 (Lava's int32 cast)
    limit = min(254, (2 ** 31 - 1) // (8 * (2 ** bits - 1)) // 2 * 2)
    w_conv = rng.integers(-(limit // 2), limit // 2 + 1, (2, 1, 2, 2)) * 2 if limit >= 2 else np.zeros((2, 1, 2, 2))
    conv = LoihiConv(w_conv.astype(np.int64), padding=draw(st.sampled_from([0, 1])), num_message_bits=bits)
    conv_shape = conv.output_shape(SHAPE)
    n_conv = int(np.prod(conv_shape))
    pops = [Population("dot", draw(lif(6, du=st.sampled_from([4095, 0]) | st.integers(0, 4095)))),
            Population("free", draw(lif(6))),
            Population("conv", draw(lif(n_conv)), shape=conv_shape),
            Population("out", draw(lif(5)))]

    def binary(n_pre, exps):
        return LoihiDense(rng.integers(-300, 301, (5, n_pre)), num_weight_bits=draw(st.integers(1, 8)),
                          weight_exp=draw(exps), sign_mode=draw(st.sampled_from([1, 2, 3])))
    projs = [Projection("in_dot", "input", "dot", dot), Projection("in_free", "input", "free", free),
             Projection("in_conv", "input", "conv", conv),
             Projection("dot_out", "dot", "out", binary(6, st.integers(-8, 8) | st.integers(14, 20))),
             Projection("free_out", "free", "out", binary(6, st.integers(-8, 8))),
             Projection("conv_out", "conv", "out", binary(n_conv, st.integers(-8, 8) | st.integers(14, 20)))]
    net = Network("graded_edges", Input("input", N_IN, CurrentEncoding(bits), shape=SHAPE), pops, projs, "out", T)
    return net, x


# ----------------------------------------------------------------- independent edge detection
def _lava_weights(d: LoihiDense) -> np.ndarray:
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights
    mode = SignMode(d.sign_mode)
    return truncate_weights(clip_weights(d.weight.astype(np.int32), mode, num_bits=8), mode,
                            d.num_weight_bits).astype(np.int64)


def _wrap32(x):
    return ((x + 2 ** 31) % 2 ** 32) - 2 ** 31


def _shift(x, e):
    return np.left_shift(x, e) if e > 0 else np.right_shift(x, -e)


def edge_events(net: Network, x: np.ndarray, lava) -> Counter:
    """The edges Lava's run went through, recomputed from its spikes and u/v with Lava's weight rules,
    torch and int64 numpy."""
    import torch
    ev = Counter()
    top = 2 ** net.input.encoding.bits - 1
    xi = np.asarray(x, dtype=np.int64)
    ev["value_zero"] += int(np.sum(xi == 0))
    ev["value_max"] += int(np.sum(xi == top))
    a_in = {}
    for pr in net.projections:
        syn = pr.synapse
        src = xi if pr.source == "input" else lava.spikes[pr.source].astype(np.int64)
        if isinstance(syn, LoihiConv):
            img = torch.from_numpy(src.reshape((-1,) + SHAPE).astype(np.float64))
            acc = torch.nn.functional.conv2d(img, torch.from_numpy(syn.weight.astype(np.float64)),
                                             padding=syn.padding).numpy().reshape(src.shape[:2] + (-1,))
            acc = np.rint(acc).astype(np.int64)
            ev["conv_sum_beyond_24_bits"] += int(np.sum((acc >= 2 ** 23) | (acc < -2 ** 23)))
            msg = ((acc + 2 ** 23) % 2 ** 24) - 2 ** 23
        else:
            acc = np.einsum("kti,ji->ktj", src, _lava_weights(syn))
            e = syn.weight_exp
            if syn.num_message_bits:
                wrapped = _wrap32(acc)
                ev["dot_int32_wrap"] += int(np.sum(acc != wrapped))
                # what the LIF sees is (msg << 6) mod 2**32: does the int32 dot change it?
                ev["dot_wrap_changes_message"] += int(np.sum(
                    _wrap32(_wrap32(_shift(acc, e)) << 6) != _wrap32(_shift(wrapped, e) << 6)))
                msg = _wrap32(_shift(wrapped, e))
            else:
                msg = _wrap32(_shift(acc, e))
        a_in[pr.target] = _wrap32(a_in.get(pr.target, 0) + msg)
    for pop in net.populations:
        a = a_in[pop.name]
        ev["act_int32_wrap"] += int(np.sum((a << 6) != _wrap32(a << 6)))
        u = lava.states[pop.name]["u"]
        ev["u_beyond_24_bits"] += int(np.sum((u > 2 ** 23) | (u <= -2 ** 23)))
        ev[f"spikes_{pop.name}"] += int(lava.spikes[pop.name].sum())
    return ev


def assert_same_run(ours, theirs, net: Network, label: str):
    for pop in net.populations:
        name = pop.name
        assert np.array_equal(ours.spikes[name], theirs.spikes[name]), f"{label}: spikes of {name!r} differ"
        assert np.array_equal(ours.counts[name], theirs.counts[name]), f"{label}: counts of {name!r} differ"
        for var in ("u", "v"):
            a, b = ours.states[name][var], theirs.states[name][var]
            if not np.array_equal(a, b):
                k, t, i = np.argwhere(a != b)[0]
                raise AssertionError(f"{label}: {name}.{var} differs first at sample {k} step {t} neuron {i}: "
                                     f"{a[k, t, i]} vs {b[k, t, i]}")


# ------------------------------------------------------------------------------------------ tests
@pytest.mark.slow
def test_graded_input_cpu_engines_equal_lava_at_the_edges():
    from neurocomp.backends.lava import run_lava
    events, bits_seen = Counter(), Counter()

    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases())
    def check(case):
        net, x = case
        lava = run_lava(net, x, record=True, probe=True)
        for engine in ("jit", "numpy"):
            assert_same_run(simulate(net, x, record=True, probe=True, engine=engine), lava, net, engine)
        events.update(edge_events(net, x, lava))
        bits_seen[net.input.encoding.bits] += 1

    check()
    for edge in ("value_zero", "value_max", "dot_int32_wrap", "dot_wrap_changes_message", "act_int32_wrap",
                 "conv_sum_beyond_24_bits", "u_beyond_24_bits", "spikes_dot", "spikes_free", "spikes_conv",
                 "spikes_out"):
        assert events[edge] > 0, f"no example reached {edge}: {dict(events)}"
    assert bits_seen[1] and bits_seen[24], f"message widths drawn: {dict(bits_seen)}"


@pytest.mark.slow
def test_direct_current_encoding_through_lava_equals_cpu():
    """encode()'s own output for a current input (pixels -> levels, a zero-stride view) on a small
    graded network: Lava's RingBuffer of int32 levels and the cpu engines agree on every spike and u/v."""
    from neurocomp.backends.lava import run_lava
    rng = np.random.default_rng(3)
    enc = CurrentEncoding(bits=8)
    net = Network("dc", Input("input", N_IN, enc, shape=SHAPE),
                  [Population("h", LoihiLIF(6, 4095, 0, 2000, None, 0)), Population("o", LoihiLIF(3, 4095, 0, 3))],
                  [Projection("p1", "input", "h", LoihiDense(rng.integers(-128, 128, (6, N_IN)) * 2, 8, -1, 1,
                                                              num_message_bits=8)),
                   Projection("p2", "h", "o", LoihiDense(rng.integers(0, 200, (3, 6)), 8, 0, 2))], "o", 16)
    x = encode(rng.random((3,) + SHAPE), enc, 16)
    assert x.strides[1] == 0 and x.dtype == np.uint8
    lava = run_lava(net, x, record=True, probe=True)
    for engine in ("jit", "numpy"):
        assert_same_run(simulate(net, x, record=True, probe=True, engine=engine), lava, net, engine)
    assert lava.counts["h"].sum() > 0 and lava.counts["o"].sum() > 0


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_graded_engines_agree_on_random_layers(case):
    """No Lava: the compiled kernels and the numpy reference on many more edge-case networks."""
    net, x = case
    a = simulate(net, x, record=True, probe=True, engine="jit")
    b = simulate(net, x, record=True, probe=True, engine="numpy")
    assert_same_run(a, b, net, "jit vs numpy")
    c = simulate(net, np.ascontiguousarray(x), record=True, probe=True, engine="jit")   # no zero stride
    assert_same_run(c, b, net, "jit (copied input) vs numpy")


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 2 ** 32 - 1), bits=st.integers(1, 24), n_pre=st.integers(1, 300),
       exp=st.integers(-40, 40))
def test_graded_dense_message_is_lavas_int32_dot_then_shift(seed, bits, n_pre, exp):
    """The graded Dense message, both engines, against Lava's own arithmetic written out with numpy
    int32 arrays (``weights.dot(s_in)`` and the shift, as PyDenseModelBitAcc runs them)."""
    rng = np.random.default_rng(seed)
    dense = LoihiDense(rng.integers(-256, 256, (7, n_pre)), 8, exp, 1, num_message_bits=bits)
    x = rng.integers(0, 2 ** bits, (2, 3, n_pre))
    x[0, 0] = 2 ** bits - 1
    w32 = _lava_weights(dense).astype(np.int32)
    want = np.empty((2, 3, 7), dtype=np.int64)
    for k in range(2):
        for t in range(3):
            acc = w32.dot(x[k, t].astype(np.int32))           # Lava: int32 dot, wraps
            want[k, t] = np.left_shift(acc, exp) if exp > 0 else np.right_shift(acc, -exp)
    assert np.array_equal(graded.GradedDenseKernel(dense).activation(x), want)
    kernel = graded.GradedPopulationKernel(LoihiLIF(7, 4095, 0, 0), [(dense, (n_pre,))])
    got = kernel._messages(dense, kernel.parts[0], x, 3)
    assert np.array_equal(got, want)


def test_float_network_reads_current_input_as_pixel_values():
    """The float IR reads a current input as level x unit: a float Dense on encode()'s levels gives
    W @ x for the pixels x (here exactly representable: k / 255)."""
    from neurocomp.ir import LIF, Dense
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (4, N_IN)) / 255.0
    w = rng.normal(size=(3, N_IN))
    enc = CurrentEncoding(8)
    net = Network("f", Input("input", N_IN, enc), [Population("o", LIF(3, du=1.0, dv=0.0, vth=1e9))],
                  [Projection("p", "input", "o", Dense(w))], "o", 5)
    res = simulate(net, encode(pixels, enc, 5), probe=True)
    assert np.allclose(res.states["o"]["u"], (pixels @ w.T)[:, None, :], rtol=0, atol=1e-12)
    assert np.array_equal(encode(pixels, enc, 5)[:, 2], np.rint(pixels * 255).astype(np.uint8))


def test_graded_refusals():
    dense = LoihiDense(np.ones((2, 3), dtype=np.int64), num_message_bits=4)
    with pytest.raises(ValueError, match="outside 0..15"):
        graded.GradedDenseKernel(dense).activation(np.full((1, 1, 3), 16))
    with pytest.raises(ValueError, match="outside 0..15"):
        graded.GradedPopulationKernel(LoihiLIF(2, 0, 0, 1), [(dense, (3,))]).run([np.full((1, 2, 3), -1)])
    with pytest.raises(ValueError, match="num_message_bits"):
        LoihiDense(np.ones((2, 3), dtype=np.int64), num_message_bits=25)
    big = LoihiConv(np.full((1, 1, 3, 3), 254), num_message_bits=24)
    with pytest.raises(ValueError, match="2\\*\\*31"):
        graded.GradedConvKernel(big, (1, 4, 4))
    with pytest.raises(ValueError, match="1..24"):
        CurrentEncoding(bits=0)
