"""Conv front ends against the source libraries' own forward passes: torch ``nn.Conv2d`` /
``AvgPool2d`` / sum pooling / ``BatchNorm2d`` / ``Flatten`` / ``Linear`` with ``neurocomp.nn.LIF``,
and lava-dl slayer ``cuba.Conv`` / ``Pool`` / ``Flatten`` / ``Dense`` blocks (float IR, and at netx's
integer scale bit-exact on the cpu conv engine); every refusal is one line naming the module; the IR
nodes round-trip through ``save_network``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurocomp.backends import conv as cv
from neurocomp.errors import FrontendError
from neurocomp.frontends.torch import convert_module, module_to_ir
from neurocomp.ir import Input, LIF, LoihiLIF, Network, Population, Projection, RateEncoding, load_network, save_network
from neurocomp.ir.synapses import Conv, Dense, LoihiConv, pooling
from neurocomp.nn import LIF as TorchLIF


def torch_forward(model: nn.Sequential, x: np.ndarray, in_shape) -> dict:
    """Every LIF layer's spikes from the modules' own forward: spikes ``[B, T, n]`` in, each
    non-LIF module applied per time step (``[B*T, ...]``), each LIF on ``[B, T, n]``."""
    b, t = x.shape[:2]
    h = torch.tensor(x, dtype=torch.float64).reshape(b * t, *in_shape)
    out = {}
    with torch.no_grad():
        for name, mod in model.named_children():
            if isinstance(mod, TorchLIF):
                s = mod(h.reshape(b, t, -1))
                out[f"lif{name}" if name.isdigit() else name] = s.numpy().astype(bool)
                h = s.reshape(h.shape)
            else:
                h = mod(h)
    return out


def spikes(samples, steps, shape, rate=0.3, seed=0):
    return np.random.default_rng(seed).random((samples, steps, int(np.prod(shape)))) < rate


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.2, generator=g)
                mod.running_var.uniform_(0.5, 2.0, generator=g)
                mod.weight.normal_(1, 0.3, generator=g)
                mod.bias.normal_(0, 0.2, generator=g)
            if isinstance(mod, TorchLIF) and mod.bias is not None:
                mod.bias.normal_(0, 0.05, generator=g)
    return model.double().eval()


def lif(n, **kw):
    return TorchLIF(n, **{"du": 0.3, "dv": 0.1, "vth": 0.6, **kw})


def assert_ir_spikes_like_torch(model, in_shape, steps=20, samples=8, rate=0.3, min_rate=0.01):
    net = module_to_ir(model, int(np.prod(in_shape)), "t", steps, RateEncoding(), input_shape=in_shape)
    x = spikes(samples, steps, in_shape, rate)
    want = torch_forward(model, x, in_shape)
    got = cv.simulate_layered(net, x, engine="float")
    assert [p.name for p in net.populations] == list(want)
    for name, s in want.items():
        assert s.mean() > min_rate, f"{name}: too few spikes for the comparison to mean anything"
        assert np.array_equal(got[name][0], s), f"{name}: IR spikes differ from torch's"
    return net


# --------------------------------------------------------------------------------- torch
def test_conv_pool_conv_linear_network_spikes_like_torch():
    """Conv2d -> LIF -> AvgPool2d (folded into the next conv, which pads) -> Conv2d(stride 2) -> LIF
    -> AvgPool2d -> Flatten -> Linear (the pooling folded into the Dense) -> LIF."""
    torch.manual_seed(0)
    model = randomise(nn.Sequential(
        nn.Conv2d(2, 4, 3, bias=False), lif(4 * 10 * 8),
        nn.AvgPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), lif(6 * 3 * 2),
        nn.AvgPool2d((1, 2)), nn.Flatten(),
        nn.Linear(6 * 3 * 1, 5, bias=False), lif(5, vth=0.3)), 1)
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[3].weight.mul_(3.0)
        model[7].weight.mul_(4.0)
    net = assert_ir_spikes_like_torch(model, (2, 12, 10))
    syn = {p.name: p.synapse for p in net.projections}
    assert isinstance(syn["conv0"], Conv) and isinstance(syn["conv3"], Conv) and isinstance(syn["fc7"], Dense)
    assert syn["conv3"].stride == (4, 4) and syn["conv3"].kernel_size == (6, 6) and syn["conv3"].padding == (2, 2)
    assert net.population("lif4").shape == (6, 3, 2)
    _, details = convert_module(model, 240, "t", 20, RateEncoding(), input_shape=(2, 12, 10))
    assert {"layer": "2", "into": "conv3"} in details["folded"] and {"layer": "5", "into": "fc7"} in details["folded"]


def test_conv_bias_and_batchnorm_fold_into_the_lif_bias_when_du_is_1():
    torch.manual_seed(1)
    model = randomise(nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, bias=True), nn.BatchNorm2d(3), lif(3 * 7 * 9, du=1.0, bias=True),
        nn.AvgPool2d(2, stride=1), nn.BatchNorm2d(3), nn.Conv2d(3, 4, (2, 3), dilation=(2, 1), groups=1),
        lif(4 * 4 * 6, du=1.0), nn.Flatten(), nn.Linear(96, 6), lif(6, du=1.0)), 2)
    with torch.no_grad():
        model[0].weight.mul_(3.0)
    net = assert_ir_spikes_like_torch(model, (1, 7, 9))
    assert np.any(net.population("lif2").neuron.bias != 0)


def test_groups_dilation_same_padding_and_sum_pooling_with_its_own_neurons():
    """A pooling between two LIF layers is its own projection (depthwise, stride = kernel)."""
    torch.manual_seed(2)
    model = randomise(nn.Sequential(
        nn.Conv2d(4, 6, 3, padding="same", dilation=1, groups=2, bias=False), lif(6 * 8 * 8),
        nn.LPPool2d(1, 2), lif(6 * 4 * 4, vth=1.5),
        nn.AvgPool2d(2, divisor_override=1), lif(6 * 2 * 2, vth=1.5),
        nn.Conv2d(6, 3, 1, groups=3, bias=False), lif(3 * 2 * 2, vth=0.3)), 3)
    with torch.no_grad():
        model[0].weight.mul_(3.0)
        model[6].weight.abs_().mul_(3.0)
    net = assert_ir_spikes_like_torch(model, (4, 8, 8), rate=0.5)
    pool = net.projection("pool2").synapse
    assert pool.groups == 6 and pool.stride == (2, 2) and np.all(pool.weight == 1.0)
    assert net.projection("conv0").synapse.groups == 2 and net.projection("conv0").synapse.padding == (1, 1)


BAD = [
    (lambda: [nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), lif(2 * 3 * 3)], "module '1': layer type MaxPool2d", "max pooling"),
    (lambda: [nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), lif(2 * 8 * 8)], "module '0'", "reflect"),
    (lambda: [nn.Conv2d(1, 2, 4, padding="same"), lif(2 * 8 * 8)], "module '0'", "symmetrically"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=True), lif(2 * 6 * 6, du=0.5)], "module '0'", "du != 1"),
    (lambda: [nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), lif(72, du=0.5)], "module '0'", "du != 1"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=False), lif(72), nn.AvgPool2d(4, ceil_mode=True), lif(8)], "module '2'",
     "ceil_mode"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=False), lif(72), nn.AvgPool2d(3, padding=1, count_include_pad=False),
              lif(2 * 2 * 2)], "module '2'", "count_include_pad"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=False), lif(2 * 6 * 6), nn.AvgPool2d(4), nn.Conv2d(2, 2, 1, padding=1),
              lif(2 * 3 * 3)], "module '4'", "padding"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=False), nn.Conv2d(2, 2, 3), lif(2 * 4 * 4)], "module '1'",
     "Conv2d after Conv2d '0'"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=False), lif(72), nn.Linear(6, 3), lif(3)], "module '2'", "Flatten"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=False), lif(72), nn.Flatten(), nn.Linear(72, 3), nn.Conv2d(2, 2, 1)],
     "module '4'", "needs a (C, H, W) input"),
    (lambda: [nn.Conv2d(1, 2, 3), lif(50)], "module '1'", "size 50"),
    (lambda: [nn.Conv2d(3, 2, 3), lif(72)], "module '0'", "in_channels=3"),
    (lambda: [nn.Conv2d(1, 2, 9), lif(2)], "module '0'", "smaller than"),
    (lambda: [nn.BatchNorm2d(1, track_running_stats=False), nn.Conv2d(1, 2, 3), lif(72)], "module '0'",
     "track_running_stats"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=False), lif(72), nn.AvgPool2d(2)], "module '2'", "trailing nn.AvgPool2d"),
    (lambda: [nn.Conv2d(1, 2, 3, bias=False), lif(72), nn.AdaptiveAvgPool2d(1), lif(2)], "module '2'", "adaptive"),
]


@pytest.mark.parametrize("layers,where,why", BAD)
def test_unmappable_conv_layers_are_refused_in_one_line(layers, where, why):
    with pytest.raises(FrontendError) as err:
        module_to_ir(nn.Sequential(*layers()).eval(), 64, "t", 5, RateEncoding(), input_shape=(1, 8, 8))
    msg = str(err.value)
    assert "\n" not in msg and where in msg and why in msg, msg


def test_mnist_cnn_example_maps_to_four_populations():
    from pathlib import Path

    from neurocomp.frontends.user_code import import_user_file
    build = import_user_file(Path(__file__).resolve().parents[1] / "models" / "mnist_cnn" / "net.py").build
    model = build().double().eval()
    net = module_to_ir(model, 784, "mnist_cnn", 25, RateEncoding(), input_shape=(1, 28, 28))
    assert [p.shape for p in net.populations] == [(15, 24, 24), (40, 8, 8), (300,), (10,)]
    conv2 = net.projection("layers.conv2").synapse
    assert conv2.kernel_size == (10, 10) and conv2.stride == (2, 2)
    x = spikes(3, 25, (1, 28, 28), 0.2)
    with torch.no_grad():
        want = model(torch.tensor(x, dtype=torch.float64)).numpy().astype(bool)
    got = cv.simulate_layered(net, x, engine="float")
    assert np.array_equal(got[net.output][0], want)


# -------------------------------------------------------------------------------- slayer
slayer = pytest.importorskip("lava.lib.dl.slayer")
CUBA = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03}


class SlayerConvNet(nn.Module):
    def __init__(self, neuron=None, delay_shift=False):
        super().__init__()
        p = dict(CUBA, **(neuron or {}))
        kw = dict(weight_scale=2, delay_shift=delay_shift)
        self.blocks = nn.ModuleList([
            slayer.block.cuba.Conv(dict(p), 2, 4, 3, padding=1, **kw),
            slayer.block.cuba.Pool(dict(p), 2, delay_shift=delay_shift),
            slayer.block.cuba.Conv(dict(p), 4, 6, 3, stride=(1, 2), dilation=(2, 1), groups=2, **kw),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(dict(p), 6 * 1 * 2, 5, **kw),
        ])

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


def slayer_outputs(net, x, in_shape):
    """Each spiking block's output from slayer's forward, ``[samples, steps, n]`` (C-major)."""
    b, t = x.shape[:2]
    h = torch.tensor(x.reshape(b, t, *in_shape).transpose(0, 2, 3, 4, 1), dtype=torch.float32)   # NCHWT
    out = []
    with torch.no_grad():
        for block in net.blocks:
            h = block(h)
            if not isinstance(block, slayer.block.cuba.Flatten):
                out.append(h.reshape(b, -1, t).numpy().transpose(0, 2, 1) > 0)
    return out


def slayer_net(seed=0, **kw):
    torch.manual_seed(seed)
    net = SlayerConvNet(**kw).eval()
    return net


IN_SHAPE = (2, 10, 12)


def test_slayer_conv_blocks_map_and_spike_like_slayer():
    net = slayer_net()
    x = spikes(16, 30, IN_SHAPE, 0.3, seed=1)
    ref = slayer_outputs(net, x, IN_SHAPE)
    ir = module_to_ir(net, 240, "s", 30, RateEncoding(), input_shape=IN_SHAPE)
    assert [p.shape for p in ir.populations] == [(4, 10, 12), (4, 5, 6), (6, 1, 2), (5,)]
    pool = ir.projection("blocks.1.synapse").synapse
    assert pool.groups == 4 and pool.stride == (2, 2)
    got = cv.simulate_layered(ir, x, engine="float")
    for k, pop in enumerate(ir.populations):
        same = float(np.mean(got[pop.name][0] == ref[k]))
        assert ref[k].mean() > 0.02, pop.name
        assert same >= 0.99, f"{pop.name}: {same:.4f} of entries equal"


def netx_fixed_point(net):
    """The float IR at netx's integer scale (weights as they are, vth = vThMant, du = iDecay - 1, ...)."""
    from neurocomp.ir import LoihiDense
    pops = [Population(p.name, LoihiLIF(p.size, int(round(p.neuron.du * 4096)) - 1, int(round(p.neuron.dv * 4096)),
                                        int(p.neuron.vth), np.rint(p.neuron.bias).astype(np.int64), 6), shape=p.shape)
            for p in net.populations]
    projs = []
    for p in net.projections:
        w = np.rint(p.synapse.weight).astype(np.int64)
        syn = (LoihiConv(w, **p.synapse.geometry()) if isinstance(p.synapse, Conv) else LoihiDense(w, 8, 0, 1))
        projs.append(Projection(p.name, p.source, p.target, syn))
    return net.replace(populations=pops, projections=projs)


@pytest.mark.parametrize("engine", ["jit", "reference"])
def test_slayer_conv_network_at_netx_scale_is_bit_exact_on_the_conv_engines(engine):
    """slayer's integer dynamics are Loihi's: conv, pool and dense blocks with a per-channel bias
    (MeanOnlyBatchNorm) run spike-identical on the cpu conv engine and the numpy reference."""
    net = slayer_net(seed=3, neuron={"norm": slayer.neuron.norm.MeanOnlyBatchNorm})
    g = torch.Generator().manual_seed(4)
    for block in net.blocks:
        norm = getattr(getattr(block, "neuron", None), "norm", None)
        if norm is not None:
            norm.running_mean = 0.2 * torch.randn(norm.running_mean.shape, generator=g)
    x = spikes(12, 30, IN_SHAPE, 0.3, seed=5)
    ref = slayer_outputs(net, x, IN_SHAPE)
    ir = module_to_ir(net, 240, "s", 30, RateEncoding(), input_shape=IN_SHAPE)
    assert np.any(ir.populations[0].neuron.bias != 0)
    got = cv.simulate_layered(netx_fixed_point(ir), x, engine=engine)
    for k, pop in enumerate(ir.populations):
        assert ref[k].mean() > 0.02, pop.name
        np.testing.assert_array_equal(got[pop.name][0], ref[k], err_msg=pop.name)


@pytest.mark.parametrize("make,words", [
    (lambda: slayer.block.cuba.Pool(dict(CUBA), 3), ["'0'", "cuba.Pool", "divisible"]),
    (lambda: slayer.block.cuba.Pool(dict(CUBA), 2, stride=1), ["'0'", "stride=(1, 1)"]),
    (lambda: [slayer.block.cuba.Pool(dict(CUBA), 2), slayer.block.cuba.Dense(dict(CUBA), 60, 5)], ["'1'", "Flatten"]),
    (lambda: slayer.block.cuba.ConvT(dict(CUBA), 2, 2, 3), ["'0'", "transposed convolution"]),
])
def test_slayer_conv_refusals_are_one_line(make, words):
    with pytest.raises(FrontendError) as err:
        blocks = make()   # (a first Dense block reads the sample flat, as every training script feeds it)
        module_to_ir(nn.Sequential(*(blocks if isinstance(blocks, list) else [blocks])), 240, "s", 5, RateEncoding(),
                     input_shape=IN_SHAPE)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


# ----------------------------------------------------------------------------------- the IR
def test_conv_nodes_round_trip_and_validate(tmp_path):
    rng = np.random.default_rng(0)
    fixed = LoihiConv(2 * rng.integers(-128, 128, (4, 1, 3, 2)), stride=(2, 1), padding=1, dilation=(1, 2), groups=2)
    net = Network("n", Input("input", 2 * 9 * 7, shape=(2, 9, 7)),
                  [Population("a", LoihiLIF(4 * 5 * 7, 10, 20, 30), shape=(4, 5, 7))],
                  [Projection("c", "input", "a", fixed)], "a", 5)
    save_network(net, tmp_path / "n.npz")
    back = load_network(tmp_path / "n.npz").projection("c").synapse
    assert type(back) is LoihiConv and np.array_equal(back.weight, fixed.weight)
    assert (back.stride, back.padding, back.dilation, back.groups) == ((2, 1), (1, 1), (1, 2), 2)
    pool = pooling(3, 2, mode="sum")
    net2 = Network("p", Input("input", 3 * 4 * 4, shape=(3, 4, 4)), [Population("b", LIF(12, 0.1, 0.1, 1.0),
                   shape=(3, 2, 2))], [Projection("p", "input", "b", pool)], "b", 5)
    save_network(net2, tmp_path / "p.npz")
    back2 = load_network(tmp_path / "p.npz").projection("p").synapse
    assert type(back2) is Conv and back2.groups == 3 and np.array_equal(back2.weight, pool.weight)
    with pytest.raises(ValueError, match=r"projection 'c' \(input \(2, 9, 7\) -> a \(4, 4, 7\)\).*makes \(4, 5, 7\)"):
        Network("n", net.input, [Population("a", LoihiLIF(112, 1, 1, 1), shape=(4, 4, 7))],
                [Projection("c", "input", "a", fixed)], "a", 5)
    with pytest.raises(ValueError, match="not an 8-bit Loihi weight"):
        LoihiConv(np.array([[[[3, -2]]]]))
    with pytest.raises(ValueError, match="not divisible by groups"):
        Conv(np.ones((3, 1, 1, 1)), groups=2)
    with pytest.raises(ValueError, match="kernel takes 2"):
        Conv(np.ones((2, 1, 1, 1)), groups=2).output_shape((3, 4, 4))
