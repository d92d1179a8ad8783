"""lava-dl slayer front end: real ``slayer.block.cuba.Dense`` networks, run by slayer itself, against
the IR they are mapped to (see the units and timing notes in ``neurocomp/frontends/slayer.py``).

slayer tensors are ``[batch, features, time]``; neurocomp's are ``[batch, time, features]``.
"""
from __future__ import annotations

import copy
import json

import h5py
import numpy as np
import pytest
import torch

slayer = pytest.importorskip("lava.lib.dl.slayer")

from neurocomp.backends import get_backend  # noqa: E402
from neurocomp.ir.schedule import BATCHED, Schedule  # noqa: E402
from neurocomp.backends.batch_engine import simulate  # noqa: E402
from neurocomp.errors import FrontendError  # noqa: E402
from neurocomp.frontends.torch import module_to_ir  # noqa: E402
from neurocomp.ir import LIF, Dense, LoihiDense, LoihiLIF, Population, Projection, RateEncoding  # noqa: E402
from neurocomp.passes import quantize  # noqa: E402
from neurocomp.targets import FixedPointFormat, load_descriptor  # noqa: E402

CUBA = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03}
SIZES = (40, 30, 10)


class SlayerNet(torch.nn.Module):
    """The usual shape of a lava-dl network: blocks in a ModuleList, applied in order."""

    def __init__(self, sizes=SIZES, neuron=None, **block_kwargs):
        super().__init__()
        neuron = dict(CUBA, **(neuron or {}))
        self.blocks = torch.nn.ModuleList(
            slayer.block.cuba.Dense(neuron, n_in, n_out, weight_scale=2, **block_kwargs)
            for n_in, n_out in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def make_net(seed=0, **kw) -> SlayerNet:
    torch.manual_seed(seed)
    return SlayerNet(**kw).eval()


def set_running_means(net: SlayerNet, seed=1):
    """Give each MeanOnlyBatchNorm a trained-looking running mean (-> a per-neuron bias)."""
    g = torch.Generator().manual_seed(seed)
    for block in net.blocks:
        n = block.synapse.out_channels
        block.neuron.norm.running_mean = 0.3 * torch.randn(n, generator=g)


def spike_input(samples=64, steps=50, n=SIZES[0], rate=0.2, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).random((samples, steps, n)) < rate


def slayer_layers(net: SlayerNet, x: np.ndarray) -> list:
    """Every block's output spikes from slayer's own forward, as ``[samples, steps, n]`` bools."""
    out, h = [], torch.tensor(x.transpose(0, 2, 1), dtype=torch.float32)
    with torch.no_grad():
        for block in net.blocks:
            h = block(h)
            out.append(h.numpy().transpose(0, 2, 1) > 0)
    return out


def to_ir(net, steps=50):
    return module_to_ir(net, SIZES[0], "slayer_net", steps, RateEncoding())


def netx_fixed_point(net):
    """The float IR turned into Lava integers the way netx maps a slayer export (``netx/hdf5.py``):
    weights as they are (8-bit mixed, exponent 0), ``vth = vThMant``, ``du = iDecay - 1``,
    ``dv = vDecay``, ``bias_mant = bias`` with ``bias_exp = 6``. Exact only because the float IR's
    units are netx's: any other scale would round."""
    pops = [Population(p.name, LoihiLIF(p.size, int(round(p.neuron.du * 4096)) - 1, int(round(p.neuron.dv * 4096)),
                                        int(p.neuron.vth), np.rint(p.neuron.bias).astype(np.int64), 6))
            for p in net.populations]
    projs = [Projection(p.name, p.source, p.target, LoihiDense(np.rint(p.synapse.weight).astype(np.int64), 8, 0, 1))
             for p in net.projections]
    return net.replace(populations=pops, projections=projs)


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(fraction of equal (sample, step, neuron) entries, fraction of identical per-neuron trains)."""
    same = a == b
    return float(same.mean()), float(same.all(axis=1).mean())


# --------------------------------------------------------------------------------- mapping
def test_ir_holds_the_numbers_netx_exports(tmp_path):
    """Weights, threshold, decays and bias in the float IR equal lava-dl's own ``export_hdf5``."""
    net = make_net(neuron={"norm": slayer.neuron.norm.MeanOnlyBatchNorm}, weight_norm=True)
    set_running_means(net)
    slayer_layers(net, spike_input(samples=2, steps=3))  # slayer sets neuron shapes on the first forward
    ir = to_ir(net)
    assert [p.name for p in ir.populations] == ["blocks.0", "blocks.1"]
    assert [(p.source, p.target) for p in ir.projections] == [("input", "blocks.0"), ("blocks.0", "blocks.1")]
    with h5py.File(tmp_path / "net.h5", "w") as f:
        for i, block in enumerate(net.blocks):
            copy.deepcopy(block).export_hdf5(f.create_group(f"layer/{i}"))  # export removes weight norm
    with h5py.File(tmp_path / "net.h5", "r") as f:
        for i, (pop, proj) in enumerate(zip(ir.populations, ir.projections)):
            layer = f[f"layer/{i}"]
            assert isinstance(pop.neuron, LIF) and isinstance(proj.synapse, Dense)
            np.testing.assert_array_equal(proj.synapse.weight, layer["weight"][()])
            np.testing.assert_array_equal(pop.neuron.bias, layer["bias"][()])
            assert pop.neuron.vth == layer["neuron/vThMant"][()] == 80
            assert pop.neuron.du * 4096 == layer["neuron/iDecay"][()] == 1024
            assert pop.neuron.dv * 4096 == layer["neuron/vDecay"][()] == 123
    assert np.abs(ir.projections[0].synapse.weight).max() > 2  # not a degenerate network


@pytest.mark.parametrize("delay_shift", [False, True])
def test_float_ir_spikes_match_slayer(delay_shift):
    """The float IR run by the batched simulator against slayer's forward, layer by layer.

    ``delay_shift=True`` (slayer's default) delays each block's output one step, as Lava's Dense
    does; the IR keeps each layer in its own window, so slayer's block ``k`` output from step ``k`` on
    (input followed by ``depth`` silent steps) is compared. Differences come only from slayer's
    truncating integer decays (the float IR does not truncate): see the bit-exact test below.
    """
    net = make_net(delay_shift=delay_shift)
    x = spike_input()
    samples, steps, _ = x.shape
    depth = len(net.blocks)
    padded = np.concatenate([x, np.zeros((samples, depth if delay_shift else 0, x.shape[2]), bool)], axis=1)
    ref = slayer_layers(net, padded)
    ir = to_ir(net, steps)
    got = simulate(ir, x, record=True)
    for k, pop in enumerate(ir.populations):
        start = k + 1 if delay_shift else 0
        want = ref[k][:, start:start + steps]
        elements, trains = agreement(want, got.spikes[pop.name])
        print(f"delay_shift={delay_shift} {pop.name}: {want.sum()} slayer spikes, {got.spikes[pop.name].sum()} IR; "
              f"entries equal {elements:.5f}, identical trains {trains:.4f}")
        assert want.mean() > 0.05, "too few spikes for the comparison to mean anything"
        assert elements >= 0.99
        assert trains >= 0.9
    slayer_pred = ref[-1][:, depth if delay_shift else 0:].sum(1).argmax(1)
    assert np.mean(slayer_pred == got.predictions) >= 0.95


@pytest.mark.parametrize("weight_norm", [False, True])
def test_fixed_point_at_netx_scale_is_bit_exact_to_slayer(weight_norm):
    """slayer's dynamics are Loihi's integers: the IR mapped with netx's rule runs spike-identical on
    the bit-accurate cpu target — with a bias (MeanOnlyBatchNorm), neuron dropout (identity in eval),
    a synapse mask, and weight norm (stale ``weight`` attribute after its parameters change; slayer
    then ignores the mask, and so must the front end).
    ``delay_shift=False``: with a bias, slayer's shifted blocks integrate it before their input arrives
    (see the front end's docstring), which the IR's per-layer windows do not."""
    net = make_net(neuron={"norm": slayer.neuron.norm.MeanOnlyBatchNorm, "dropout": slayer.neuron.Dropout(p=0.2)},
                   weight_norm=weight_norm, delay_shift=False)
    mask = torch.rand(SIZES[2], SIZES[1], generator=torch.Generator().manual_seed(3)) > 0.3
    net.blocks[1].mask = mask.reshape(*mask.shape, 1, 1, 1)
    set_running_means(net)
    if weight_norm:
        with torch.no_grad():  # the weight the pre-hook computed at construction is now out of date
            net.blocks[0].synapse.weight_g.mul_(1.3)
    x = spike_input()
    ir = to_ir(net)
    masked_out = ir.projections[1].synapse.weight[~mask.numpy()]
    assert np.all(masked_out == 0) != weight_norm
    assert np.any(ir.populations[0].neuron.bias != 0)
    ref = slayer_layers(net, x)
    got = simulate(netx_fixed_point(ir), x, record=True, target="cpu")
    for k, pop in enumerate(ir.populations):
        assert ref[k].mean() > 0.05
        np.testing.assert_array_equal(got.spikes[pop.name], ref[k], err_msg=pop.name)


@pytest.mark.slow
def test_lava_processes_at_netx_scale_match_slayer_spike_for_spike():
    """The same claim on Lava's own fixed-point process models (loihi-sim target), small and short."""
    net = make_net(seed=4, neuron={"norm": slayer.neuron.norm.MeanOnlyBatchNorm}, delay_shift=False)
    set_running_means(net, seed=5)
    x = spike_input(samples=3, steps=20, seed=6)
    ir = to_ir(net, 20)
    ref = slayer_layers(net, x)
    got = get_backend("loihi-sim").run(netx_fixed_point(ir), x, Schedule(BATCHED, x.shape[1]), record=True)
    for k, pop in enumerate(ir.populations):
        assert ref[k].sum() > 20
        np.testing.assert_array_equal(got.spikes[pop.name], ref[k], err_msg=pop.name)


def test_quantised_network_on_cpu_target_keeps_slayer_predictions():
    """Through neurocomp's own quantiser (its scale, not netx's) onto the bit-accurate cpu target."""
    net = make_net(seed=7, delay_shift=False, neuron={"norm": slayer.neuron.norm.MeanOnlyBatchNorm})
    set_running_means(net, seed=8)
    x = spike_input(samples=200, seed=9)
    ir = to_ir(net)
    fixed = quantize(ir, FixedPointFormat.from_descriptor(load_descriptor("loihi2")), x[:50]).fixed
    ref = slayer_layers(net, x)[-1]
    got = simulate(fixed, x, record=True, target="cpu")
    pred_agree = float(np.mean(ref.sum(1).argmax(1) == got.predictions))
    elements, _ = agreement(ref, got.spikes[ir.output])
    print(f"slayer vs quantised cpu: predictions equal {pred_agree:.3f}, output entries equal {elements:.4f}")
    assert ref.mean() > 0.05
    assert pred_agree >= 0.95
    assert elements >= 0.9


# ---------------------------------------------------------------------------------- errors
# slayer's Recurrent/KWTA blocks write persistent_state=True into the neuron-parameter dict they are
# given (block/base.py), so every block here gets its own copy of CUBA.
def _sequential(*blocks):
    return torch.nn.Sequential(*blocks).eval()


@pytest.mark.parametrize("make, words", [
    (lambda: slayer.block.cuba.Conv(dict(CUBA), 2, 4, 3), ["'0'", "cuba.Conv", "convolution"]),
    (lambda: slayer.block.cuba.Pool(dict(CUBA), 2), ["cuba.Pool", "pooling"]),
    (lambda: slayer.block.cuba.Recurrent(dict(CUBA), 10, 10), ["cuba.Recurrent", "recurrent"]),
    (lambda: slayer.block.cuba.Flatten(), ["cuba.Flatten", "reshaping"]),
    (lambda: slayer.block.cuba.Dense(dict(CUBA), 10, 5, delay=True), ["'0'", "delay=True"]),
    (lambda: slayer.block.cuba.Dense(dict(CUBA, graded_spike=True), 10, 5), ["graded_spike=True"]),
    (lambda: slayer.block.cuba.Dense(dict(CUBA, persistent_state=True), 10, 5), ["persistent_state=True"]),
    (lambda: slayer.block.cuba.Dense(dict(CUBA, shared_param=False), 10, 5), ["shared_param=False"]),
    (lambda: slayer.block.cuba.Dense(dict(CUBA, norm=slayer.neuron.norm.WgtScaleBatchNorm), 10, 5),
     ["WgtScaleBatchNorm"]),
    (lambda: slayer.block.alif.Dense(dict(CUBA, threshold_step=0.1, refractory_decay=0.1, threshold_decay=0.1),
                                     10, 5), ["alif.Dense", "'alif' neuron model"]),
    (lambda: slayer.block.cuba.Dense(dict(CUBA), 12, 5), ["'0'", "12 inputs", "has 10"]),
    (lambda: slayer.synapse.Dense(10, 5), ["synapse", "outside a block"]),
])
def test_unsupported_slayer_modules_are_refused_in_one_line(make, words):
    with pytest.raises(FrontendError) as err:
        module_to_ir(_sequential(make()), 10, "bad", 5, RateEncoding())
    msg = str(err.value)
    assert "\n" not in msg
    for word in words:
        assert word in msg, msg


def test_error_names_the_nested_module_path():
    net = make_net()
    net.blocks[1].neuron.graded_spike = True
    with pytest.raises(FrontendError, match=r"module 'blocks\.1'.*graded_spike=True"):
        to_ir(net)


# ------------------------------------------------------------------------ shipped example
@pytest.mark.slow
def test_slayer_digits_example_compiles_and_keeps_slayer_accuracy(tmp_path):
    """``models/slayer_digits`` (trained by slayer's own loop) through ``neurocomp compile --target
    cpu``: the float IR scores what slayer's forward scores on the same held-out spikes, and the
    bit-accurate fixed point stays within 2 points of it."""
    from click.testing import CliRunner

    from neurocomp.cli.main import cli
    from neurocomp.frontends.torch import build_module
    from neurocomp.pipeline import load_build
    from neurocomp.spec import load_spec

    from conftest import REPO

    spec_path = REPO / "models/slayer_digits/model.yaml"
    out = tmp_path / "slayer_digits"
    res = CliRunner().invoke(cli, ["compile", str(spec_path), "--target", "cpu", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    build = load_build(out)
    spikes, labels = build.held_out()
    spec = load_spec(spec_path)
    module = build_module(spec.source.factory, spec.resolve(spec.source.weights), spec.base_dir)
    with torch.no_grad():
        out_spikes = module(torch.tensor(spikes.transpose(0, 2, 1), dtype=torch.float32)).numpy()
    slayer_pred = out_spikes.sum(-1).argmax(1)  # lowest index wins ties, as in RunResult.predictions
    slayer_acc = float(np.mean(slayer_pred == labels))
    float_run = simulate(build.float_net, spikes, record=True)
    elements, _ = agreement(out_spikes.transpose(0, 2, 1) > 0, float_run.spikes[build.float_net.output])
    acc = json.loads((out / "report.json").read_text())["accuracy"]
    print(f"slayer_digits held-out: slayer {slayer_acc:.4f}, float IR {acc['float']:.4f}, cpu {acc['cpu']:.4f}; "
          f"float IR vs slayer predictions {np.mean(float_run.predictions == slayer_pred):.4f}, "
          f"output entries equal {elements:.5f}")
    assert slayer_acc >= 0.9
    assert abs(acc["float"] - slayer_acc) <= 0.01
    assert abs(acc["cpu"] - slayer_acc) <= 0.02
