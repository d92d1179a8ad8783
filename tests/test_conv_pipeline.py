"""Convolutional networks through the one pipeline: a torch conv SNN is imported, quantised (conv
weights on the grid Lava's Conv uses as given — lava issue 803), run on the batched engine (compiled
and numpy reference alike) and on Lava's Conv + LIF processes, spike for spike."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from neurocomp.backends import get_backend

NET_PY = '''
import torch
from torch import nn
from neurocomp import nn as ncnn


def build():
    """1x8x8 digits -> 6x6x6 conv LIF -> sum-pooled 6x3x3 -> 10 LIF."""
    return nn.Sequential(nn.Conv2d(1, 6, 3, bias=False), ncnn.LIF(6 * 6 * 6, du=0.3, dv=0.1),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 3 * 3, 10, bias=False),
                         ncnn.LIF(10, du=0.3, dv=0.1))
'''


@pytest.fixture(scope="module")
def conv_build(tmp_path_factory):
    from neurocomp.pipeline import compile_model

    d = tmp_path_factory.mktemp("conv")
    (d / "net.py").write_text(NET_PY)
    import importlib.util
    spec = importlib.util.spec_from_file_location("conv_net", d / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = mod.build()
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[4].weight.mul_(4.0)
    torch.save(model.state_dict(), d / "weights.pt")
    (d / "model.yaml").write_text(textwrap.dedent("""
        neurocomp: 1
        name: tinyconv
        source: {kind: torch, factory: net.py:build, weights: weights.pt}
        input: {encoding: rate, max_rate: 0.8, timesteps: 12}
        dataset: {name: digits, holdout: 40}
        verify: {samples: 6}
    """))
    report = compile_model(d / "model.yaml", target="loihi-sim", out=d / "build")
    return d / "build", report


@pytest.mark.slow
def test_conv_network_compiles_batched_with_lava_equal_to_cpu(conv_build):
    build_dir, report = conv_build
    assert report["schedule"]["kind"] == "batched"
    assert [row["weight_exp"] for row in report["layers"]] == [0, report["layers"][1]["weight_exp"]]
    ag = report["agreement"]["target_vs_cpu"]
    assert ag["samples"] == 6 and ag["identical_spike_trains"] == 1.0
    assert report["spikes"]["layers"][0]["cpu"] and sum(report["spikes"]["layers"][0]["cpu"]) > 0


@pytest.mark.slow
def test_conv_engines_agree_and_float_tracks_fixed(conv_build):
    from neurocomp.backends.batch_engine import simulate
    from neurocomp.pipeline import load_build

    build_dir, _ = conv_build
    b = load_build(build_dir)
    spikes = b.plan(20).test.spikes
    jit = simulate(b.fixed, spikes, record=True, probe=True, engine="jit")
    ref = simulate(b.fixed, spikes, record=True, probe=True, engine="numpy")
    for p in b.fixed.populations:
        assert np.array_equal(jit.spikes[p.name], ref.spikes[p.name]), p.name
        for var in ("u", "v"):
            assert np.array_equal(jit.states[p.name][var], ref.states[p.name][var]), (p.name, var)
    assert jit.counts["lif1"].sum() > 0 and jit.counts["lif5"].sum() > 0
    flt = get_backend("float").run(b.float_net, spikes, b.schedule)
    corr = np.corrcoef(flt.counts["lif1"].ravel(), jit.counts["lif1"].ravel())[0, 1]
    assert corr > 0.95, corr


def test_conv_dense_matrix_is_the_convolution():
    """The exact matrix energy counts a convolution's synapses on: equal to torch's conv2d on random
    inputs, for strides, padding, dilation and groups; its MACs are the kernel's taps per output."""
    from neurocomp.ir.synapses import Conv
    rng = np.random.default_rng(0)
    for stride, pad, dil, groups in [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2), (3, 1, 1, 4)]:
        w = rng.normal(size=(8, 8 // groups, 3, 3))
        conv = Conv(w, stride=stride, padding=pad, dilation=dil, groups=groups)
        shape = (8, 11, 9)
        x = rng.normal(size=shape)
        want = torch.nn.functional.conv2d(torch.from_numpy(x[None]), torch.from_numpy(w), stride=stride,
                                          padding=pad, dilation=dil, groups=groups)[0].numpy().ravel()
        got = conv.dense_matrix(shape) @ x.ravel()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        assert conv.macs(shape) == int(np.prod(conv.output_shape(shape))) * (8 // groups) * 9


@pytest.mark.slow
def test_conv_energy_counts_the_kernel_synapses(conv_build):
    """Energy of a conv build: effective synops = input spikes x the nonzero kernel taps they reach
    (checked against a hand count on the recorded spikes), the ANN baseline's MACs are conv MACs."""
    from neurocomp.energy import estimate_energy
    from neurocomp.pipeline import load_build

    b = load_build(conv_build[0])
    spikes = b.plan(4).test.spikes
    res = get_backend("cpu").run(b.fixed, spikes, b.schedule, record=True, probe=True)
    rep = estimate_energy(b.fixed, res, float_net=b.float_net, measure=False)
    conv_proj = b.fixed.incoming("lif1")[0]
    nz = conv_proj.synapse.dense_matrix(b.fixed.input.shape) != 0
    hand = (spikes.reshape(-1, spikes.shape[-1]).astype(np.int64) @ nz.T.astype(np.int64)).sum() / len(spikes)
    per_layer = {row["population"]: row for row in rep.data["devices"]["loihi"]["per_layer"]}
    assert per_layer["lif1"]["synops_per_inference"] == pytest.approx(hand)
    kernel = conv_proj.synapse
    assert rep.data["baselines"]["gpu"]["macs"] == (kernel.macs(b.fixed.input.shape)
                                                     + b.fixed.incoming("lif5")[0].synapse.weight.size)


def test_conv_layers_map_onto_cores_with_shared_kernels_and_receptive_fields():
    """A conv layer's core stores its channels' kernels once and receives only the receptive fields
    its outputs reach; a conv whose receptive fields exceed the fan-in limit per core is split until
    they fit, and one neuron's receptive field beyond it is an error naming the layer."""
    from neurocomp.ir import Input, LoihiLIF, Network, Population, Projection
    from neurocomp.ir.synapses import LoihiConv
    from neurocomp.passes.place import DesignRuleError, map_network
    from neurocomp.targets import load_descriptor

    rng = np.random.default_rng(0)
    w = 2 * rng.integers(-60, 60, (16, 4, 5, 5))
    net = Network("c", Input("in", 4 * 40 * 40, shape=(4, 40, 40)),
                  [Population("a", LoihiLIF(16 * 36 * 36, 100, 100, 50), shape=(16, 36, 36))],
                  [Projection("conv", "in", "a", LoihiConv(w))], "a", 5)
    pl = map_network(net, load_descriptor("loihi2"))
    (row,) = pl.layers()
    assert row["fan_in"] <= 4096 and row["memory_bytes"] <= 16 * 4 * 25 * 8 * row["cores"]
    for a in pl.allocations:   # each core: its outputs' receptive fields, its channels' kernels
        k = a.stop - a.start
        assert a.fan_in <= 4 * 40 * 40 and a.synapses <= k * 4 * 25
    # position-major: a core holds every channel of a patch of positions (overlapping receptive fields)
    chip_core = pl.neuron_cores("a")
    first = np.all(chip_core == chip_core[0], axis=1)
    assert np.unique(np.flatnonzero(first) // (36 * 36)).size == 16
    assert row["cores"] <= 40, row
    desc = load_descriptor("loihi2")
    desc["limits"] = {**desc["limits"], "fan_in_per_core": {"value": 50, "source": "test"}}
    with pytest.raises(DesignRuleError, match=r"layer 'a': fan-in 9\d input axons exceeds limits.fan_in_per_core=50"):
        map_network(net, desc)
