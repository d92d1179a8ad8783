"""The torch engine (``simulate(..., engine="torch")``) against the numba engine, bit for bit.

The networks are the property tests' (tests/test_fixed_point_vs_lava.py: the numba engine equals
Lava's own process models on them): the 24-bit wrap of u, the v clip, every sign mode and weight
width, both signs of ``weight_exp``, exponents that wrap the int32 channel and ``a << 6``. Every
spike, count and u/v value must be equal. Which edges really happened is recounted from the runs
with that file's independent :func:`edge_events`, and each must have happened, so the comparison
cannot pass vacuously.

Every test runs on the CPU and, where ``torch.cuda.is_available()``, again on CUDA (the engine's
device is chosen by ``$NEUROCOMP_TORCH_DEVICE``, else CUDA when present).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from neurocomp.backends import fixed_point as fxp
from neurocomp.backends import torch_engine as te
from neurocomp.backends.batch_engine import simulate
from neurocomp.ir import Input, LoihiDense, LoihiLIF, Network, Population, Projection
from test_fixed_point_vs_lava import _params, assert_same_run, cases, edge_events, wide_cases

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    monkeypatch.setenv(te.DEVICE_ENV, request.param)
    return request.param


def _torch_equals_jit(net, spikes, label):
    jit = simulate(net, spikes, record=True, probe=True, engine="jit")
    tor = simulate(net, spikes, record=True, probe=True, engine="torch")
    assert_same_run(tor, jit, net, label)
    for pop in net.populations:      # ints, as the other engines return them
        assert tor.states[pop.name]["u"].dtype == np.int64 and tor.spikes[pop.name].dtype == np.bool_
    return jit


def test_torch_engine_equals_jit_engine_at_the_edges(device):
    events, params, examples = Counter(), Counter(), []

    @settings(max_examples=40, **SETTINGS)
    @given(case=cases())
    def check(case):
        net, spikes = case
        jit = _torch_equals_jit(net, spikes, f"torch ({device}) vs jit")
        events.update(edge_events(net, spikes, jit))     # jit == Lava on these (the Lava property test)
        params.update(_params(net))
        examples.append(1)

    check()
    assert len(examples) >= 30
    for edge in ("u_wrap_up", "u_wrap_down", "u_beyond_24_bits", "v_clip_low", "act_int32_wrap",
                 "channel_int32_wrap", "spikes"):
        assert events[edge] > 0, f"edge {edge!r} never happened: {dict(events)}"
    for p in ["sign_mode=1", "sign_mode=2", "sign_mode=3", "weight_exp<0", "weight_exp>0", "du=0", "du=4095",
              "dv=0", "dv=4095", "vth=0", f"vth={2 ** 17 - 1}", "bias_exp<0"] + [f"nwb={b}" for b in range(1, 9)]:
        assert params[p] > 0, f"parameter {p} never drawn: {dict(params)}"


@pytest.mark.slow
def test_torch_engine_equals_jit_engine_on_wide_networks(device):
    """Wider, deeper, more samples (several of simulate's batch chunks with a small batch_size)."""

    @settings(max_examples=30, **SETTINGS)
    @given(case=wide_cases())
    def check(case):
        net, spikes = case
        jit = simulate(net, spikes, record=True, probe=True, engine="jit")
        tor = simulate(net, spikes, record=True, probe=True, engine="torch", batch_size=7)
        assert_same_run(tor, jit, net, f"torch ({device}) vs jit, wide")

    check()


@pytest.mark.parametrize("weight_exp", [-70, -64, -63, -33, -32, -31, 24, 25, 31, 32, 33, 63, 64, 70])
def test_extreme_weight_exponents_shift_like_lava(device, weight_exp):
    """Shifts by 32 or more (the int32 channel keeps nothing of ``acc << e``) and 64 or more (numpy's
    defined results), both signs of the sum: as the jit engine."""
    rng = np.random.default_rng(abs(weight_exp))
    w = rng.integers(-256, 256, (5, 40))
    net = Network("exp", Input("input", 40), [Population("out", LoihiLIF(5, 100, 100, 1000))],
                  [Projection("p", "input", "out", LoihiDense(w, 8, weight_exp, fxp.MIXED))], "out", 12)
    spikes = rng.random((3, 12, 40)) < 0.5
    u = _torch_equals_jit(net, spikes, f"weight_exp={weight_exp}").states["out"]["u"]
    if -63 < weight_exp < 0:
        assert np.any(u != 0)


@settings(max_examples=15, **SETTINGS)
@given(case=cases())
def test_gemm_blocks_summed_in_int64_change_nothing(device, case):
    """Fan-ins are cut into GEMM blocks whose weights cannot sum past float32's exact range; with
    blocks of a few sources forced, every population equals the jit engine's."""
    net, spikes = case
    ref = simulate(net, spikes, record=True, probe=True, engine="jit")
    emitted = {"input": spikes, **ref.spikes}
    for pop in net.populations:
        incoming = net.incoming(pop.name)
        kernel = te.TorchPopulationKernel(pop.neuron, [pr.synapse for pr in incoming], block_limit=600)
        if pop.name == "wrap":                                        # big weights on 10 sources
            assert len(kernel.projections[0][0]) > 1                 # really split
        out, counts, (u, v) = kernel.run([emitted[pr.source] for pr in incoming], probe=True)
        assert np.array_equal(out, ref.spikes[pop.name]) and np.array_equal(counts, ref.counts[pop.name])
        assert np.array_equal(u, ref.states[pop.name]["u"]) and np.array_equal(v, ref.states[pop.name]["v"])


def test_fan_in_past_float32_exact_range_is_split_and_exact(device):
    """70001 sources x weight 255, all spiking: the sum (17850255, odd) is past 2**24, where a single
    float32 GEMM would round; the engine splits the fan-in and gets the exact integers."""
    n = 70001
    w = np.full((2, n), 255, dtype=np.int64)
    w[1, ::2] = 7
    dense = LoihiDense(w, 8, -6, fxp.EXCITATORY)
    kernel = te.TorchPopulationKernel(LoihiLIF(2, 4095, 4095, 2 ** 17 - 1), [dense])
    assert len(kernel.projections[0][0]) == 2
    spikes = np.ones((1, 2, n), dtype=bool)
    spikes[0, 1, 1::3] = False
    _, _, (u, _) = kernel.run([spikes], probe=True)
    acc = spikes[0].astype(np.int64) @ fxp.effective_weights(dense).T          # exact int64
    expected = fxp.wrap_int32((acc >> 6) << 6)                                # du = 4095: u = a << 6 each step
    expected = np.where(expected > fxp.MAX_UV, expected - 2 * fxp.MAX_UV, expected)
    expected = np.where(expected <= -fxp.MAX_UV, expected + 2 * fxp.MAX_UV, expected)
    assert np.array_equal(u[0], expected)
    assert float(np.float32(acc[0, 0])) != acc[0, 0]                          # why the split is needed


def test_reduced_precision_float32_matmul_falls_back_to_float64(device):
    """With torch allowed to cut float32 matmul precision (TF32/bf16), the GEMMs run in float64."""
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        kernel = te.TorchPopulationKernel(LoihiLIF(3, 0, 0, 10), [LoihiDense(np.ones((3, 4)), 8, 0, 1)])
        assert kernel.gemm_dtype == torch.float64
        rng = np.random.default_rng(5)
        net = Network("prec", Input("input", 30), [Population("out", LoihiLIF(4, 200, 300, 900))],
                      [Projection("p", "input", "out", LoihiDense(rng.integers(-256, 256, (4, 30)), 8, 3, 1))],
                      "out", 20)
        _torch_equals_jit(net, rng.random((5, 20, 30)) < 0.4, "float64 GEMMs")
    finally:
        torch.set_float32_matmul_precision(before)
    assert te.TorchPopulationKernel(LoihiLIF(3, 0, 0, 10), [LoihiDense(np.ones((3, 4)), 8, 0, 1)]).gemm_dtype \
        == torch.float32


def test_device_follows_cuda_availability_and_the_environment(monkeypatch):
    monkeypatch.delenv(te.DEVICE_ENV, raising=False)
    assert te.default_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv(te.DEVICE_ENV, "cpu")
    kernel = te.TorchPopulationKernel(LoihiLIF(2, 0, 0, 1), [LoihiDense(np.ones((2, 3)), 8, 0, 1)])
    assert kernel.device.type == "cpu"


@settings(max_examples=200, deadline=None, database=None)
@given(x=st.integers(-2 ** 62, 2 ** 62))
def test_wrap32_is_numpys_int32_cast(x):
    assert int(te.wrap32(torch.tensor([x], dtype=torch.int64))[0]) == int(np.array(x, dtype=np.int64).astype(np.int32))


def test_engine_is_selectable_and_rejects_what_the_others_reject():
    rng = np.random.default_rng(2)
    net = Network("sel", Input("input", 6), [Population("out", LoihiLIF(3, 100, 100, 10))],
                  [Projection("p", "input", "out", LoihiDense(rng.integers(-50, 50, (3, 6)), 8, 0, 1))], "out", 5)
    res = simulate(net, rng.random((2, 5, 6)) < 0.5, engine="torch")
    assert res.counts["out"].shape == (2, 3)
    with pytest.raises(ValueError, match="torch"):
        simulate(net, rng.random((2, 5, 6)) < 0.5, engine="tensorflow")
    kernel = te.TorchPopulationKernel(LoihiLIF(3, 100, 100, 10), [LoihiDense(np.ones((3, 6)), 8, 0, 1)])
    with pytest.raises(ValueError):
        kernel.run([np.ones((1, 2, 5), bool)])
