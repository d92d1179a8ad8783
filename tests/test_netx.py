"""lava-dl netx files in and out, checked against lava-dl's own ``netx.hdf5.Network`` run by Lava.

* slayer ``export_hdf5`` -> neurocomp's netx import -> the cpu target == netx's own Lava run (slow);
* neurocomp -> netx export -> ``netx.hdf5.Network`` on Lava == the cpu target, spike for spike in every
  layer (slow);
* export -> import gives back the same per-spike integers (fast); refusals name the layer (fast).
"""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from neurocomp.backends import fixed_point as fxp
from neurocomp.backends.batch_engine import simulate
from neurocomp.errors import FrontendError, NeurocompError
from neurocomp.export.netx import write_netx
from neurocomp.backends.netx_reference import run_netx
from neurocomp.frontends.netx import float_twin, layers_to_ir, read_layers
from neurocomp.ir import LIF, Dense, Input, Network, Population, Projection, RateEncoding


def _fmt(weight_exp0=True):
    from neurocomp.targets import FixedPointFormat, load_descriptor
    fmt = FixedPointFormat.from_descriptor(load_descriptor("cpu"))
    return dataclasses.replace(fmt, weight_exp_min=0, weight_exp_max=0) if weight_exp0 else fmt


def _float_net(seed=0, bias=0.0, sizes=(30, 24, 8)):
    rng = np.random.default_rng(seed)
    pops, projs, prev = [], [], "input"
    for i, (n_in, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        pops.append(Population(f"l{i}", LIF(n, du=[0.3, 1.0][i % 2], dv=0.1, vth=1.0, bias=np.full(n, bias))))
        projs.append(Projection(f"w{i}", prev, f"l{i}", Dense(rng.normal(0.05, 0.5, (n, n_in)))))
        prev = f"l{i}"
    return Network("netx_test", Input("input", sizes[0], RateEncoding()), pops, projs, prev, 25)


def _quantised(net, weight_exp0=True, seed=0):
    """The quantiser's network, with weight_exp fixed to 0 and each bias moved onto netx's grid
    (``bias_mant << 6``): what a netx-compatible quantisation produces."""
    from neurocomp.ir import LoihiLIF
    from neurocomp.passes import quantize
    cal = np.random.default_rng(seed + 1).random((30, net.timesteps, net.input.size)) < 0.3
    fixed = quantize(net, _fmt(weight_exp0), cal).fixed
    pops = []
    for p in fixed.populations:
        n = p.neuron
        mant = np.rint(fxp.effective_bias(n) / 64).astype(np.int64)
        pops.append(dataclasses.replace(p, neuron=LoihiLIF(n.size, n.du, n.dv, n.vth, mant, 6)))
    return fixed.replace(populations=pops)


def _per_spike(proj):
    return fxp.effective_weights(proj.synapse) * 2.0 ** proj.synapse.weight_exp


def test_export_then_import_gives_back_the_same_integers(tmp_path):
    fixed = _quantised(_float_net(bias=0.25))
    assert any(np.any(p.neuron.bias_mant) for p in fixed.populations)
    write_netx(fixed, tmp_path / "x.net")
    back, details = layers_to_ir(read_layers(tmp_path / "x.net"), "x", fixed.timesteps, fixed.input.encoding)
    assert back.is_fixed_point and details["fixed_point"]
    for a, b in zip(fixed.projections, back.projections):
        assert np.array_equal(_per_spike(a), _per_spike(b))
    for a, b in zip(fixed.populations, back.populations):
        assert (a.neuron.du, a.neuron.dv, a.neuron.vth) == (b.neuron.du, b.neuron.dv, b.neuron.vth)
        assert np.array_equal(fxp.effective_bias(a.neuron), fxp.effective_bias(b.neuron))
    x = np.random.default_rng(5).random((16, 25, 30)) < 0.3
    ra, rb = simulate(fixed, x, record=True), simulate(back.replace(output=back.populations[-1].name), x, record=True)
    for pa, pb in zip(fixed.populations, back.populations):
        assert np.array_equal(ra.spikes[pa.name], rb.spikes[pb.name])
    # the float twin stands for the same numbers in float units (v / 64)
    twin = float_twin(back)
    assert np.allclose(twin.projections[0].synapse.weight, _per_spike(back.projections[0]))


def test_export_refuses_what_netx_cannot_rebuild(tmp_path):
    big = _float_net(seed=3)
    big = big.replace(projections=[dataclasses.replace(p, synapse=Dense(p.synapse.weight * (1 + 4 * (i == 1))))
                                   for i, p in enumerate(big.projections)])
    fixed = _quantised(big, weight_exp0=False)
    if all(p.synapse.weight_exp == 0 for p in fixed.projections):
        pytest.skip("the quantiser chose weight_exp 0 everywhere")
    with pytest.raises(NeurocompError, match=r"projection '\w+': .*netx .*quantise with weight_exp 0"):
        write_netx(fixed, tmp_path / "x.net")
    off_grid = _quantised(_float_net())
    from neurocomp.ir import LoihiLIF
    n = off_grid.populations[0].neuron
    off_grid = off_grid.replace(populations=[dataclasses.replace(off_grid.populations[0], neuron=LoihiLIF(
        n.size, n.du, n.dv, n.vth, np.full(n.size, 5), 0))] + list(off_grid.populations[1:]))
    with pytest.raises(NeurocompError, match=r"population 'l0': bias 5..5 is not a 13-bit mantissa times 2\*\*6"):
        write_netx(off_grid, tmp_path / "z.net")
    rec = _quantised(_float_net())
    rec = rec.replace(projections=list(rec.projections) + [Projection("back", "l1", "l0", rec.projections[1].synapse
                                                                      .__class__(np.zeros((24, 8), int)))])
    with pytest.raises(NeurocompError, match="netx files are layer chains"):
        write_netx(rec, tmp_path / "y.net")
    assert not (tmp_path / "x.net").exists() and not (tmp_path / "y.net").exists()


def _write(path, layers):
    with h5py.File(path, "w") as f:
        for i, layer in enumerate(layers):
            g = f.create_group(f"layer/{i}")
            g.create_dataset("type", (1,), "S10", [layer.pop("type").encode()])
            for k, v in layer.items():
                if isinstance(v, dict):
                    for kk, vv in v.items():
                        g.create_dataset(f"{k}/{kk}", data=vv)
                else:
                    g.create_dataset(k, data=v)


def _dense(n_in=4, n=3, **extra):
    neuron = {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80, "refDelay": 1, "gradedSpike": False}
    neuron.update(extra.pop("neuron", {}))
    return {"type": "dense", "shape": np.array([n]), "inFeatures": n_in, "outFeatures": n,
            "weight": np.ones((n, n_in), np.float32) * 10, "neuron": neuron, **extra}


@pytest.mark.parametrize("layers, expect", [
    ([{"type": "input", "shape": np.array([4])}, {"type": "conv"}], r"layer/1: layer type 'conv'"),
    ([{"type": "input", "shape": np.array([4])}, {"type": "pool"}], r"layer/1: layer type 'pool'.*NotImplementedError"),
    ([_dense(delay=np.ones(3))], r"layer/0: axonal delays"),
    ([_dense(neuron={"gradedSpike": True})], r"layer/0: gradedSpike=True"),
    ([_dense(neuron={"type": "SDNN"})], r"layer/0: neuron type SDNN"),
    ([_dense(neuron={"iDecay": 0})], r"layer/0: iDecay=0"),
    ([{"type": "input", "shape": np.array([4]), "neuron": {"type": "CUBA"}}, _dense()], r"layer/0: an input layer with a neuron"),
    ([_dense(), {**_dense(3, 2), "type": "dense_rec"}], r"layer/1: layer type 'dense_rec'"),
])
def test_import_refuses_naming_the_layer(tmp_path, layers, expect):
    _write(tmp_path / "x.net", layers)
    with pytest.raises(FrontendError, match=expect) as e:
        layers_to_ir(read_layers(tmp_path / "x.net"), "x", 5, RateEncoding(), tmp_path / "x.net")
    assert "\n" not in str(e.value)


@pytest.mark.slow
def test_neurocomp_to_netx_runs_on_lava_like_the_cpu_target(tmp_path):
    """Our export, loaded by lava-dl's netx.hdf5.Network and run by Lava, spike for spike = the cpu target,
    in every layer, with a bias and both a current-based and a current-free layer."""
    fixed = _quantised(_float_net(seed=2, bias=0.25, sizes=(30, 40, 24, 8)))
    write_netx(fixed, tmp_path / "x.net")
    x = np.random.default_rng(9).random((12, fixed.timesteps, 30)) < 0.3
    ours = simulate(fixed, x, record=True)
    theirs = run_netx(tmp_path / "x.net", x, fixed.timesteps)
    for i, pop in enumerate(fixed.execution_order(), start=1):
        assert ours.spikes[pop.name].sum() > 20, f"{pop.name} nearly silent: the comparison would prove little"
        assert np.array_equal(ours.spikes[pop.name], theirs[i]), \
            f"{pop.name}: {np.sum(ours.spikes[pop.name] != theirs[i])} spikes differ"


@pytest.mark.slow
def test_slayer_export_imports_equal_to_netx_own_lava_run(tmp_path):
    """slayer blocks -> their own export_hdf5 -> neurocomp's import -> the cpu target == netx's Lava run."""
    import lava.lib.dl.slayer as slayer
    torch.manual_seed(0)
    neuron = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03, "scale_grad": 3}
    blocks = torch.nn.ModuleList([slayer.block.cuba.Dense(neuron, 30, 40, weight_scale=3, delay_shift=False),
                                  slayer.block.cuba.Dense(neuron, 40, 10, weight_scale=3, delay_shift=False)])
    with torch.no_grad():   # one forward pass settles slayer's lazily created neuron state
        x0 = torch.zeros(1, 30, 4)
        for b in blocks:
            x0 = b(x0)
    path = tmp_path / "slayer.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, b in enumerate(blocks):
            b.export_hdf5(layer.create_group(f"{i}"))
    net, _ = layers_to_ir(read_layers(path), "slayer", 20, RateEncoding(), path)
    x = np.random.default_rng(3).random((10, 20, 30)) < 0.4
    ours = simulate(net, x, record=True)
    theirs = run_netx(path, x, 20)
    for i, pop in enumerate(net.execution_order(), start=1):
        assert ours.spikes[pop.name].sum() > 20
        assert np.array_equal(ours.spikes[pop.name], theirs[i]), \
            f"{pop.name}: {np.sum(ours.spikes[pop.name] != theirs[i])} spikes differ"
