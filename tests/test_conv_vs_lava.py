"""Convolution: our mapping onto Lava's ``Conv`` and both cpu engines against Lava's own process models.

* **The mapping** (no runtime): Lava's convolution function (``lava.proc.conv.utils.conv``, what
  ``PyConvModelFixed.run_spk`` calls) fed :func:`neurocomp.backends.conv.lava_conv_kwargs` and our
  layout permutations equals ``torch.nn.functional.conv2d`` on integer inputs, for random geometry;
  each plausible wrong orientation (kernel not flipped, flipped in one axis only, H and W swapped,
  spatial tuples not reversed) does not.
* **Lava's runtime** (``@slow``): hypothesis draws random conv networks — stride 1-3, padding,
  dilation, groups, odd image sizes, one and several channels, 8-bit edge weights — packed into one
  process graph per example (RingBuffer -> Conv -> LIFReset, a second Conv on a conv population, a
  Dense after it; ``Monitor``s on every u, v and s_out) and run by Lava with
  ``Loihi2SimCfg(select_tag="fixed_pt")``, two samples back to back as the loihi-sim target runs them.
  The numpy reference (:func:`~neurocomp.backends.conv.reference_run`) and the compiled engine
  (:class:`~neurocomp.backends.conv.ConvPopulationKernel`) must equal Lava in every spike and every
  u/v. Roles make the integer edges happen (u wraps both ways, v hits its clip); whether they
  happened is recomputed from Lava's own traces with torch and Lava's utilities and asserted, so the
  test cannot pass vacuously. A separate run drives a conv past 2**23 (Lava's 24-bit wrap of the
  sum), and a mutated kernel orientation is shown to make the comparison fail.
* **Engines against each other** (no runtime): many more random layers, populations fed by several
  projections, samples on the thread pool.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from neurocomp.backends import conv as cv
from neurocomp.backends import fixed_point as fxp
from neurocomp.ir import LoihiDense, LoihiLIF
from neurocomp.ir.synapses import LoihiConv

M23 = 2 ** 23
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)   # a Lava run per example: report, do not shrink


# ------------------------------------------------------------------------------------ strategies
@st.composite
def geometry(draw, c_in, h, w, max_kernel=4):
    """Random conv geometry on a (c_in, h, w) input whose output is at least 1x1."""
    divisors = [g for g in range(1, c_in + 1) if c_in % g == 0]
    groups = draw(st.sampled_from(divisors))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = tuple(d if n + 2 * p >= d * (k - 1) + 1 else 1
                     for d, n, p, k in zip(dilation, (h, w), padding, (kh, kw)))
    kh, kw = (min(k, n + 2 * p) for k, n, p in zip((kh, kw), (h, w), padding))
    return dict(c_out=c_out, c_in_per_group=c_in // groups, kernel=(kh, kw),
                geom=dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


def grid_weights(rng, shape, kind):
    """Integer kernels on Loihi's 8-bit grid, a fifth of them at the edges of their sign mode."""
    if kind == "mixed":
        w = 2 * rng.integers(-128, 128, shape)
        edge = rng.choice([-256, 254], shape)
    elif kind == "excitatory":
        w, edge = rng.integers(0, 256, shape), np.full(shape, 255)
    else:
        w, edge = -rng.integers(0, 256, shape), np.full(shape, -255)
    w = np.where(rng.random(shape) < 0.2, edge, w)
    if kind == "mixed" and not w.min() < 0 < w.max():
        w = np.clip(w, -255, 255)        # drawn with one sign only: that sign mode's range
    return w


def decay():
    return st.one_of(st.sampled_from([0, 1, 4094, 4095]), st.integers(0, 4095))


@st.composite
def lif(draw, n, du=None, dv=None, vth=None):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    bias = draw(st.sampled_from([np.zeros(n, dtype=np.int64), rng.integers(-20, 21, n), rng.integers(-4096, 4096, n)]))
    vth = vth if vth is not None else st.one_of(st.sampled_from([0, 1, 2 ** 17 - 1]), st.integers(0, 3000))
    return LoihiLIF(n, du=draw(du if du is not None else decay()), dv=draw(dv if dv is not None else decay()),
                    vth=draw(vth), bias_mant=bias, bias_exp=draw(st.integers(-2, 7)))


DRIVEN = 2      # input channels 0 and 1 spike at every step


@st.composite
def cases(draw):
    """One example: the input, five populations with roles, their synapses and the input spikes.

    ``wrap``: same-sign big weights on the always-on channels, slow current decay -> u wraps;
    ``clip``: big inhibition, fast current / slow voltage decay -> v reaches -(2**23 - 1);
    ``free``: everything random; ``deep``: a random conv on ``free``; ``out``: a Dense on ``deep``.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    c, h, w = draw(st.integers(DRIVEN, 4)), draw(st.integers(5, 11)), draw(st.integers(5, 11))
    T, samples = draw(st.integers(22, 28)), 2
    spikes = rng.random((samples, T, c, h, w)) < draw(st.sampled_from([0.1, 0.4, 0.8]))
    spikes[:, :, :DRIVEN] = True
    if draw(st.booleans()):              # a silent start: nothing may leak from the previous sample
        spikes[1, : T // 2] = False
    spikes = spikes.reshape(samples, T, -1)
    layers = {}
    sign = draw(st.sampled_from([1, -1]))
    for role, kernel_sign in (("wrap", sign), ("clip", -1)):
        k = draw(st.integers(4, 5))
        k = (min(k, h), min(k, w))
        wt = kernel_sign * rng.integers(200, 256, (draw(st.integers(1, 3)), c, *k))
        layers[role] = LoihiConv(wt, stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))))
    g = draw(geometry(c, h, w))
    kind = draw(st.sampled_from(["mixed", "mixed", "excitatory", "inhibitory"]))
    layers["free"] = LoihiConv(grid_weights(rng, (g["c_out"], g["c_in_per_group"], *g["kernel"]), kind), **g["geom"])
    free_shape = layers["free"].output_shape((c, h, w))
    g2 = draw(geometry(*free_shape, max_kernel=3))
    layers["deep"] = LoihiConv(grid_weights(rng, (g2["c_out"], g2["c_in_per_group"], *g2["kernel"]), "mixed"),
                               **g2["geom"])
    deep_shape = layers["deep"].output_shape(free_shape)
    layers["out"] = LoihiDense(rng.integers(-300, 301, (5, int(np.prod(deep_shape)))), 8, draw(st.integers(0, 3)),
                               fxp.MIXED)
    shapes = {"input": (c, h, w)}
    sources = {"wrap": "input", "clip": "input", "free": "input", "deep": "free", "out": "deep"}
    for name in ("wrap", "clip", "free", "deep"):
        shapes[name] = layers[name].output_shape(shapes[sources[name]])
    shapes["out"] = (5,)
    size = {k: int(np.prod(s)) for k, s in shapes.items()}
    neurons = {
        "wrap": draw(lif(size["wrap"], du=st.integers(0, 20), vth=st.just(2 ** 17 - 1))),
        "clip": draw(lif(size["clip"], du=st.integers(2000, 4095), dv=st.integers(0, 40))),
        "free": draw(lif(size["free"], vth=st.integers(0, 1500))),
        "deep": draw(lif(size["deep"])),
        "out": draw(lif(5)),
    }
    layout = draw(st.sampled_from(["permuted", "virtual"]))
    return dict(layers=layers, neurons=neurons, shapes=shapes, sources=sources, spikes=spikes, T=T,
                layout=layout, order=("wrap", "clip", "free", "deep", "out"),
                depth={"wrap": 1, "clip": 1, "free": 1, "deep": 2, "out": 3})


# ------------------------------------------------------------------------------- Lava's runtime
def run_lava(case, lava_weight=cv.lava_weight):
    """The case as Lava processes, all samples back to back; per population ``{"s", "u", "v"}`` as
    ``[samples, T, n]`` in our C-major order, each window aligned by its depth (loihi-sim's timing).

    ``layout="permuted"``: conv populations are LIFs of shape ``(W, H, C)`` (Lava's layout), the input
    is played in that layout, the Dense after ``deep`` gets its columns permuted
    (:func:`~neurocomp.backends.conv.lava_dense_weight`). ``layout="virtual"``: every LIF is flat in
    our order, and the Conv ports are reached through Lava's reshape/transpose virtual ports.
    ``lava_weight``: the kernel mapping under test (mutations pass their own).
    """
    from neurocomp.backends.lava import ensure_lava_runtime
    ensure_lava_runtime()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIFReset
    from lava.proc.monitor.process import Monitor
    from lava.utils.weightutils import SignMode

    spikes, T, shapes, permuted = case["spikes"], case["T"], case["shapes"], case["layout"] == "permuted"
    order, depth = case["order"], case["depth"]
    samples = spikes.shape[0]
    total = samples * T + max(depth.values())
    played = spikes.reshape(samples * T, -1).astype(np.int32)
    if permuted:
        data = np.zeros(cv.lava_shape(shapes["input"]) + (total,), dtype=np.int32)
        data[..., : samples * T] = np.moveaxis(cv.to_lava_layout(played, shapes["input"]), 0, -1)
    else:
        data = np.zeros((played.shape[1], total), dtype=np.int32)
        data[:, : samples * T] = played.T
    src = RingBuffer(data=data)
    lifs, ports = {}, {"input": src.s_out}
    for name in order:
        nrn, shape = case["neurons"][name], shapes[name]
        lava_shape = cv.lava_shape(shape) if permuted and len(shape) == 3 else (nrn.size,)
        bias = nrn.bias_mant.astype(np.int32)
        if permuted and len(shape) == 3:
            bias = cv.to_lava_layout(bias, shape)
        lifs[name] = LIFReset(shape=lava_shape, du=nrn.du, dv=nrn.dv, vth=nrn.vth, bias_mant=bias,
                              bias_exp=nrn.bias_exp, reset_interval=T, reset_offset=(1 + depth[name]) % T,
                              name=name)
        ports[name] = lifs[name].s_out
    for name in order:
        syn, pre = case["layers"][name], case["sources"][name]
        if isinstance(syn, LoihiConv):
            kwargs = cv.lava_conv_kwargs(syn, shapes[pre])
            kwargs["weight"] = lava_weight(syn)
            conv = Conv(**kwargs)
            if permuted:
                ports[pre].connect(conv.s_in)
                conv.a_out.connect(lifs[name].a_in)
            else:
                cv.connect_into_conv(ports[pre], conv, shapes[pre])
                cv.connect_out_of_conv(conv, lifs[name].a_in, shapes[name])
        else:
            weight = cv.lava_dense_weight(syn.weight, pre_shape=shapes[pre]) if permuted else syn.weight
            dense = Dense(weights=weight.astype(np.int32), num_weight_bits=syn.num_weight_bits,
                          weight_exp=syn.weight_exp, sign_mode=SignMode(syn.sign_mode))
            (ports[pre].flatten() if permuted else ports[pre]).connect(dense.s_in)
            dense.a_out.connect(lifs[name].a_in)
    monitors = {}
    for name in order:
        for var in ("u", "v", "s_out"):
            monitors[name, var] = Monitor()
            monitors[name, var].probe(getattr(lifs[name], var), total)
    try:
        src.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        raw = {key: np.asarray(m.get_data()[key[0]][key[1]]) for key, m in monitors.items()}
    finally:
        src.stop()
    out = {}
    for name in order:
        d = depth[name]
        for var, key in (("u", "u"), ("v", "v"), ("s_out", "s")):
            x = raw[name, var][d: d + samples * T]                     # [samples*T, ...lava shape]
            x = cv.from_lava_layout(x, shapes[name]) if permuted and len(shapes[name]) == 3 else x
            x = x.reshape(samples, T, -1).astype(np.int64)
            out.setdefault(name, {})[key] = x.astype(bool) if key == "s" else x
    return out


# ----------------------------------------------------------------------------------- our engines
def run_ours(case, engine):
    """Every population of the case, layer by layer, on our own spikes: ``{"s", "u", "v"}`` each."""
    emitted = {"input": case["spikes"]}
    out = {}
    for name in case["order"]:
        syn, pre, nrn = case["layers"][name], case["sources"][name], case["neurons"][name]
        projections = [(syn, case["shapes"][pre])]
        if engine == "reference":
            s, _, (u, v) = cv.reference_run(nrn, projections, [emitted[pre]], probe=True)
        elif isinstance(syn, LoihiConv):
            mode = "auto" if engine == "jit" else engine
            s, _, (u, v) = cv.ConvPopulationKernel(nrn, projections, mode=mode).run([emitted[pre]], probe=True)
        else:
            s, _, (u, v) = fxp.LifPopulationKernel(nrn, [syn]).run([emitted[pre]], probe=True)
        emitted[name] = s
        out[name] = {"s": s, "u": u, "v": v}
    return out


def assert_same(ours, lava, label):
    for name in lava:
        for key in ("s", "u", "v"):
            a, b = ours[name][key], lava[name][key]
            if not np.array_equal(a, b):
                k, t, i = np.argwhere(a != b)[0]
                raise AssertionError(f"{label}: {name}.{key} differs first at sample {k} step {t} neuron {i}: "
                                     f"{a[k, t, i]} vs Lava {b[k, t, i]}")


# ----------------------------------------------------- which edges happened, from Lava's own traces
def _torch_conv(spikes, conv: LoihiConv, in_shape):
    """The conv sum by torch (float64, exact here), wrapped by Lava's own signed_clamp."""
    from lava.proc.conv.utils import signed_clamp
    x = torch.tensor(spikes.reshape((-1,) + tuple(in_shape)).astype(np.float64))
    y = torch.nn.functional.conv2d(x, torch.tensor(conv.weight.astype(np.float64)), stride=conv.stride,
                                   padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
    acc = np.rint(y.numpy()).astype(np.int64).reshape(spikes.shape[:2] + (-1,))
    return signed_clamp(acc, bits=24), int(np.sum(np.abs(acc) >= M23))


def _decayed(x, keep):
    p = x.astype(np.int64) * keep
    return np.sign(p) * (np.abs(p) >> 12)


def edge_events(case, lava) -> Counter:
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights
    ev = Counter()
    emitted = {"input": case["spikes"], **{k: v["s"] for k, v in lava.items()}}
    for name in case["order"]:
        syn, pre, nrn = case["layers"][name], case["sources"][name], case["neurons"][name]
        if isinstance(syn, LoihiConv):
            a, wrapped = _torch_conv(emitted[pre], syn, case["shapes"][pre])
            ev["conv_24bit_wrap"] += wrapped
        else:
            w = truncate_weights(clip_weights(syn.weight, SignMode(syn.sign_mode), 8), SignMode(syn.sign_mode),
                                 syn.num_weight_bits).astype(np.int64)
            a = np.einsum("kti,ji->ktj", emitted[pre].astype(np.int64), w) << syn.weight_exp
        u, v = lava[name]["u"], lava[name]["v"]
        u_prev = np.concatenate([np.zeros_like(u[:, :1]), u[:, :-1]], axis=1)
        v_prev = np.concatenate([np.zeros_like(v[:, :1]), v[:, :-1]], axis=1)
        pre_u = _decayed(u_prev, 4096 - nrn.du - 1) + (a << 6)
        ev["u_wrap_up"] += int(np.sum(pre_u > M23))
        ev["u_wrap_down"] += int(np.sum(pre_u <= -M23))
        bias = (nrn.bias_mant << nrn.bias_exp) if nrn.bias_exp >= 0 else (nrn.bias_mant >> -nrn.bias_exp)
        ev["v_clip_low"] += int(np.sum(_decayed(v_prev, 4096 - nrn.dv) + u + bias < -(M23 - 1)))
        ev[f"spikes_{name}"] += int(lava[name]["s"].sum())
    return ev


def drawn(case) -> Counter:
    seen = Counter()
    seen[f"layout={case['layout']}"] += 1
    seen["input C=" + ("1" if case["shapes"]["input"][0] == 1 else ">1")] += 1
    for name in ("wrap", "clip", "free", "deep"):
        c = case["layers"][name]
        in_shape = case["shapes"][case["sources"][name]]
        for s in c.stride:
            seen[f"stride={s}"] += 1
        seen["padding>0"] += any(c.padding)
        seen["dilation>1"] += any(d > 1 for d in c.dilation)
        seen["groups>1"] += c.groups > 1
        seen["non-square kernel"] += c.kernel_size[0] != c.kernel_size[1]
        seen["odd image side"] += any(n % 2 for n in in_shape[1:])
        seen["C_in=1"] += in_shape[0] == 1
        seen[f"sign={c.sign_mode_name}"] += 1
        for edge in (-256, 254, 255, -255):
            seen[f"weight={edge}"] += int(np.sum(c.weight == edge))
    return seen


# ------------------------------------------------------------------------------------ the tests
@pytest.mark.slow
def test_both_engines_equal_lava_conv_and_lif_in_every_spike_and_state():
    events, params, examples = Counter(), Counter(), []

    @settings(max_examples=10, deadline=None, derandomize=True, database=None, phases=NO_SHRINK,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=cases())
    def check(case):
        lava = run_lava(case)
        assert_same(run_ours(case, "scatter"), lava, "compiled engine (scatter) vs Lava")
        assert_same(run_ours(case, "gemm"), lava, "compiled engine (GEMM) vs Lava")
        assert_same(run_ours(case, "reference"), lava, "numpy reference vs Lava")
        events.update(edge_events(case, lava))
        params.update(drawn(case))
        examples.append(1)

    check()
    print("edges in Lava's runs:", dict(events), "\ndrawn:", dict(params))
    assert len(examples) == 10
    for edge in ("u_wrap_up", "u_wrap_down", "v_clip_low", *(f"spikes_{n}" for n in ("wrap", "clip", "free",
                                                                                       "deep", "out"))):
        assert events[edge] > 0, f"{edge!r} never happened in Lava's runs: {dict(events)}"
    for p in ("stride=1", "stride=2", "stride=3", "padding>0", "dilation>1", "groups>1", "non-square kernel",
              "odd image side", "C_in=1", "sign=mixed", "sign=excitatory", "sign=inhibitory",
              "weight=-256", "weight=254", "weight=255", "weight=-255", "layout=permuted", "layout=virtual"):
        assert params[p] > 0, f"{p} never drawn: {dict(params)}"


def _wrap_case():
    """A conv whose sum passes 2**23: 150 channels x 15x15 taps of 255 on a 16x16 input (2x2 out)."""
    rng = np.random.default_rng(3)
    c, h, w, T = 150, 16, 16, 6
    spikes = rng.random((2, T, c, h, w)) < 0.97
    spikes[0, 0] = True                                  # 150 * 225 * 255 = 8,606,250 > 2**23
    weight = np.full((2, c, 15, 15), 255)
    weight[1, :, :, :7] = 200                            # a second channel at another level
    conv = LoihiConv(weight)
    shapes = {"input": (c, h, w), "wrap": (2, 2, 2)}
    nrn = LoihiLIF(8, du=0, dv=4095, vth=2 ** 17 - 1)
    return conv, nrn, shapes, spikes.reshape(2, T, -1)


@pytest.mark.slow
def test_conv_sum_past_24_bits_wraps_like_lava():
    """Lava's ``signed_clamp`` wraps the conv sum to 24 bits (it does not clip); the wrapped value
    then drives ``a << 6`` near 2**29, so u leaves 24 bits — both engines follow Lava through it."""
    conv, nrn, shapes, spikes = _wrap_case()
    kernel = cv.ConvKernel(conv, shapes["input"])
    assert kernel.can_wrap
    case = dict(layers={"wrap": conv}, neurons={"wrap": nrn}, shapes=shapes, sources={"wrap": "input"},
                spikes=spikes, T=spikes.shape[1], layout="virtual", order=("wrap",), depth={"wrap": 1})
    lava = run_lava(case)
    for engine in ("scatter", "gemm", "reference"):
        assert_same(run_ours(case, engine), lava, f"{engine} vs Lava")
    ev = edge_events(case, lava)
    assert ev["conv_24bit_wrap"] > 0
    assert np.any(np.abs(lava["wrap"]["u"]) > M23), "u should leave 24 bits after a wrapped conv sum"


def _mutations():
    return {
        "kernel not flipped": lambda c: c.weight.transpose(0, 3, 2, 1).astype(np.int32),
        "flipped in H only": lambda c: c.weight[:, :, ::-1, :].transpose(0, 3, 2, 1).astype(np.int32),
        "kernel H and W swapped": lambda c: np.ascontiguousarray(
            c.weight[:, :, ::-1, ::-1].transpose(0, 2, 3, 1)).astype(np.int32),
    }


@pytest.mark.slow
def test_a_mutated_kernel_orientation_makes_the_lava_comparison_fail():
    """The same comparison with each wrong orientation of the kernel fails (it is not blind to it)."""
    rng = np.random.default_rng(11)
    c, h, w, T = 2, 9, 7, 8
    spikes = (rng.random((2, T, c * h * w)) < 0.5)
    conv = LoihiConv(2 * rng.integers(-128, 128, (3, c, 3, 3)), padding=1)   # square: H/W swap is a real test
    shape = conv.output_shape((c, h, w))
    nrn = LoihiLIF(int(np.prod(shape)), du=3000, dv=3000, vth=20)
    case = dict(layers={"free": conv}, neurons={"free": nrn}, shapes={"input": (c, h, w), "free": shape},
                sources={"free": "input"}, spikes=spikes, T=T, layout="permuted", order=("free",),
                depth={"free": 1})
    ours = run_ours(case, "jit")
    assert_same(ours, run_lava(case), "the right orientation")
    for label, mutation in _mutations().items():
        with pytest.raises(AssertionError, match="differs"):
            assert_same(ours, run_lava(case, lava_weight=mutation), label)


# --------------------------------------------------------------- the mapping, no runtime needed
@st.composite
def mapping_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(3, 11)), draw(st.integers(3, 11))
    g = draw(geometry(c, h, w))
    conv = LoihiConv(grid_weights(rng, (g["c_out"], g["c_in_per_group"], *g["kernel"]), "mixed"), **g["geom"])
    x = rng.integers(-3, 4, (c, h, w))                   # integers, not only spikes
    return conv, (c, h, w), x


def _lava_conv(conv, in_shape, x, weight=None, reverse_tuples=True):
    """Lava's own convolution function on ``x`` ``(C, H, W)`` through our mapping -> ``(C_out, H', W')``."""
    from lava.proc.conv import utils
    kw = cv.lava_conv_kwargs(conv, in_shape)
    weight = kw["weight"] if weight is None else weight
    tuples = [kw[k] if reverse_tuples else kw[k][::-1] for k in ("stride", "padding", "dilation")]
    y = utils.conv(cv.to_lava_layout(x.reshape(-1), in_shape).astype(np.int32), weight, weight.shape[1:3],
                   *tuples, kw["groups"])
    return y


def _torch(conv, x):
    return torch.nn.functional.conv2d(torch.tensor(x[None].astype(np.float64)),
                                      torch.tensor(conv.weight.astype(np.float64)), stride=conv.stride,
                                      padding=conv.padding, dilation=conv.dilation,
                                      groups=conv.groups)[0].numpy().astype(np.int64)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(case=mapping_cases())
def test_lava_conv_function_with_our_mapping_equals_torch_conv2d(case):
    conv, in_shape, x = case
    y = _lava_conv(conv, in_shape, x)
    out_shape = conv.output_shape(in_shape)
    assert y.shape == cv.lava_output_shape(conv, in_shape)
    assert np.array_equal(cv.from_lava_layout(y, out_shape).reshape(out_shape), _torch(conv, x))


def test_wrong_orientations_do_not_equal_torch():
    rng = np.random.default_rng(5)
    conv = LoihiConv(2 * rng.integers(-128, 128, (3, 2, 3, 4)), stride=(1, 2), padding=(1, 2), dilation=(2, 1))
    in_shape = (2, 9, 8)
    x = rng.integers(0, 2, in_shape)
    expected = _torch(conv, x)
    out_shape = conv.output_shape(in_shape)
    assert np.array_equal(cv.from_lava_layout(_lava_conv(conv, in_shape, x), out_shape).reshape(out_shape), expected)
    for label, mutation in _mutations().items():
        try:
            y = _lava_conv(conv, in_shape, x, weight=mutation(conv))
        except Exception:        # e.g. a non-square kernel with H and W swapped may not even fit
            continue
        assert y.shape != cv.lava_output_shape(conv, in_shape) or \
            not np.array_equal(cv.from_lava_layout(y, out_shape).reshape(out_shape), expected), label
    # spatial tuples left in (h, w) order (they all differ between h and w here): another shape
    y = _lava_conv(conv, in_shape, x, reverse_tuples=False)
    assert y.shape != cv.lava_output_shape(conv, in_shape)


def test_layout_permutations_are_inverse_and_match_lava_flatten():
    shape = (3, 4, 5)
    x = np.arange(2 * 60).reshape(2, 60)
    lava = cv.to_lava_layout(x, shape)
    assert lava.shape == (2, 5, 4, 3)
    assert np.array_equal(cv.from_lava_layout(lava, shape), x)
    perm = cv.lava_permutation(shape)
    assert np.array_equal(lava.reshape(2, -1), x[:, perm])
    c, h, w = 1, 2, 3          # our entry (c, h, w) sits at Lava (w, h, c)
    assert lava[0, w, h, c] == x[0, (c * 4 + h) * 5 + w]
    weight = np.random.default_rng(0).integers(-5, 6, (7, 60))
    assert np.array_equal(cv.lava_dense_weight(weight, pre_shape=shape) @ lava[0].reshape(-1), weight @ x[0])


# --------------------------------------------------------- the two engines against each other
@st.composite
def engine_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    c, h, w = draw(st.integers(1, 5)), draw(st.integers(1, 13)), draw(st.integers(1, 13))
    g = draw(geometry(c, h, w, max_kernel=5))
    kind = draw(st.sampled_from(["mixed", "excitatory", "inhibitory"]))
    conv = LoihiConv(grid_weights(rng, (g["c_out"], g["c_in_per_group"], *g["kernel"]), kind), **g["geom"])
    out_shape = conv.output_shape((c, h, w))
    n = int(np.prod(out_shape))
    samples, T = draw(st.integers(1, 11)), draw(st.integers(1, 20))
    spikes = rng.random((samples, T, c * h * w)) < draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    extra = []
    for _ in range(draw(st.integers(0, 2))):      # further projections into the same population
        if draw(st.booleans()):
            extra.append((LoihiDense(rng.integers(-300, 301, (n, 6)), draw(st.integers(1, 8)),
                                     draw(st.sampled_from([-3, 0, 5, 24])), fxp.MIXED), (6,),
                          rng.random((samples, T, 6)) < 0.5))
        else:
            extra.append((LoihiConv(grid_weights(rng, conv.weight.shape, "mixed"), **conv.geometry()), (c, h, w),
                          rng.random((samples, T, c * h * w)) < 0.3))
    neuron = draw(lif(n))
    return neuron, [(conv, (c, h, w), spikes)] + extra


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=engine_cases())
def test_compiled_engine_equals_numpy_reference(case):
    """Both paths of the compiled engine (event-driven scatter, im2col GEMM) equal the numpy reference."""
    neuron, projections = case
    proj = [(s, shape) for s, shape, _ in projections]
    sources = [x for _, _, x in projections]
    ref = cv.reference_run(neuron, proj, sources, probe=True)
    for mode in ("scatter", "gemm"):
        ours = cv.ConvPopulationKernel(neuron, proj, mode=mode).run(sources, probe=True)
        for a, b, what in ((ours[0], ref[0], "spikes"), (ours[1], ref[1], "counts"), (ours[2][0], ref[2][0], "u"),
                           (ours[2][1], ref[2][1], "v")):
            assert np.array_equal(a, b), f"{mode}: {what}"


@st.composite
def pooled_cases(draw):
    """Kernels that are a sum pooling folded into a conv (constant on bh x bw blocks, stride and padding
    multiples of the block), on inputs whose sides may or may not be multiples of the block."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    bh, bw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([g for g in (1, c) if c % g == 0]))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    small = grid_weights(rng, (groups * draw(st.integers(1, 3)), c // groups, kh, kw), "mixed")
    weight = np.repeat(np.repeat(small, bh, axis=2), bw, axis=3)
    stride = (bh * draw(st.integers(1, 2)), bw * draw(st.integers(1, 2)))
    padding = (bh * draw(st.integers(0, 1)), bw * draw(st.integers(0, 1)))
    h = draw(st.integers(kh * bh, kh * bh + 7))
    w = draw(st.integers(kw * bw, kw * bw + 7))
    conv = LoihiConv(weight, stride=stride, padding=padding, groups=groups)
    spikes = rng.random((draw(st.integers(1, 9)), draw(st.integers(1, 12)), c * h * w)) < draw(
        st.sampled_from([0.05, 0.3, 1.0]))
    nrn = draw(lif(int(np.prod(conv.output_shape((c, h, w))))))
    return conv, (c, h, w), spikes, nrn


def test_pooled_factorisation_is_exact():
    """The engine's shortcut for folded poolings (count spikes per block, scatter the smaller kernel)
    equals the full kernel, on grid-aligned and ragged inputs; it is really taken."""
    taken = Counter()

    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(case=pooled_cases())
    def check(case):
        conv, shape, spikes, nrn = case
        block = cv.pooled_factor(conv, shape)
        taken["factored" if block else "plain"] += 1
        taken["ragged" if block and (shape[1] % block[0] or shape[2] % block[1]) else "aligned"] += 1
        assert np.array_equal(cv._Scatter(conv, shape).activation(spikes), cv.ConvKernel(conv, shape).activation(spikes))
        ref = cv.reference_run(nrn, [(conv, shape)], [spikes], probe=True)
        for mode in ("scatter", "gemm"):
            ours = cv.ConvPopulationKernel(nrn, [(conv, shape)], mode=mode).run([spikes], probe=True)
            assert np.array_equal(ours[0], ref[0]) and np.array_equal(ours[2][0], ref[2][0]), mode
            assert np.array_equal(ours[2][1], ref[2][1]), mode

    check()
    assert taken["factored"] >= 20 and taken["ragged"] >= 3, dict(taken)


def test_numpy_reference_equals_torch_and_lava_timeline():
    """ConvKernel = torch conv2d wrapped to 24 bits; ``delayed=True`` is what Lava's port sends."""
    conv, nrn, shapes, spikes = _wrap_case()
    k = cv.ConvKernel(conv, shapes["input"])
    a = k.activation(spikes)
    expected, wrapped = _torch_conv(spikes, conv, shapes["input"])
    assert wrapped > 0 and np.array_equal(a, expected)
    d = k.activation(spikes, delayed=True)
    assert np.all(d[:, 0] == 0) and np.array_equal(d[:, 1:], a[:, :-1])
    assert np.array_equal(cv._Scatter(conv, shapes["input"]).activation(spikes), a)


# ------------------------------------------------------------------- issue 803: the weight grid
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 2 ** 32 - 1), sign=st.sampled_from([-1, 0, 1]), bits=st.integers(1, 8),
       shrink=st.sampled_from([1.0, 0.5, 1e-3]))
def test_quantised_conv_weights_are_what_loihi_stores_unchanged(seed, sign, bits, shrink):
    """Lava's Conv model ignores weight_exp/num_weight_bits (lava issue 803), so quantize_conv puts the
    integers where a chip that does apply them (Lava's Dense rules: clip to 8 bits for the sign mode,
    truncate to num_weight_bits, weight_exp=0) maps every one onto itself — checked with Lava's own
    weight utilities — at the largest scale max_conv_scale allows, with the largest weight at the top."""
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights
    from neurocomp.ir.synapses import Conv
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (4, 3, 3, 3)) * shrink
    w = np.abs(w) * sign if sign else w
    if not sign and bits == 1:
        with pytest.raises(ValueError, match="weight_bits >= 2"):
            cv.weight_grid(w, bits)
        return
    conv = Conv(w, stride=2, padding=1)
    scale = cv.max_conv_scale(w, bits)
    q = cv.quantize_conv(conv, scale, bits)
    assert q.geometry() == conv.geometry()
    mode = determine_sign_mode(q.weight)
    chip = truncate_weights(clip_weights(q.weight, mode, num_bits=8), mode, 8).astype(np.int64)
    assert np.array_equal(chip, q.weight)
    lo, hi, step = cv.weight_grid(w, bits)
    assert np.all(q.weight % step == 0) and q.weight.min() >= lo and q.weight.max() <= hi
    assert max(q.weight.max(), -q.weight.min()) >= min(hi, -lo) - step      # the range is used
    err = np.abs(cv.conv_float_equivalent(q, scale) - w).max()
    assert err <= step / 2 / scale + 1e-12                                    # round to nearest grid point
