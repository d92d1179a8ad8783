"""The torch front end: a real nn.Module and the float IR it becomes run the same dynamics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurocomp.backends.batch_engine import simulate
from neurocomp.errors import FrontendError
from neurocomp.frontends.torch import module_to_ir
from neurocomp.ir import RateEncoding
from neurocomp.nn import LIF


def _model():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Flatten(), nn.Linear(40, 24, bias=False), LIF(24, du=0.3, dv=0.05, vth=0.8, bias=True),
                      nn.Dropout(0.5), nn.Linear(24, 7, bias=True), LIF(7, du=1.0, dv=0.2, vth=1.2, bias=True))
    with torch.no_grad():
        m[2].bias.normal_(0, 0.05)
        m[4].bias.normal_(0, 0.05)
        m[5].bias.normal_(0, 0.05)
        m[1].weight.mul_(2.0)
    return m.double().eval()


def test_module_and_ir_spike_identically():
    m = _model()
    net = module_to_ir(m, 40, "t", 30, RateEncoding())
    assert [p.name for p in net.populations] == ["lif2", "lif5"]
    assert [(p.name, p.source, p.target) for p in net.projections] == [("fc1", "input", "lif2"), ("fc4", "lif2", "lif5")]
    assert np.allclose(net.population("lif2").neuron.bias, m[2].bias.detach().numpy())
    # with du = 1 the current has no memory: a Linear bias is then the same as a voltage bias
    assert np.allclose(net.population("lif5").neuron.bias, (m[4].bias + m[5].bias).detach().numpy())
    x = (np.random.default_rng(0).random((16, 30, 40)) < 0.3)
    with torch.no_grad():
        hidden = m[2](m[1](torch.tensor(x, dtype=torch.float64)))
        out = m[5](m[4](hidden))
    res = simulate(net, x, record=True)
    assert hidden.sum() > 0 and out.sum() > 0
    assert np.array_equal(res.spikes["lif2"], hidden.numpy().astype(bool))
    assert np.array_equal(res.spikes["lif5"], out.numpy().astype(bool))


@pytest.mark.parametrize("layers,message", [
    (lambda: [nn.Linear(4, 3, bias=False), nn.ReLU(), LIF(3)], "module '1': layer type ReLU cannot be mapped"),
    (lambda: [nn.Linear(4, 3, bias=False), nn.Linear(3, 3), LIF(3)], "module '1': Linear after Linear '0'"),
    (lambda: [LIF(4)], "module '0': LIF without a preceding nn.Linear"),
    (lambda: [nn.Linear(4, 3, bias=False), LIF(3), nn.Linear(3, 2)], "module '2': trailing nn.Linear"),
    (lambda: [nn.Linear(5, 3, bias=False), LIF(3)], "module '0': in_features=5, previous layer has 4"),
    (lambda: [nn.Conv2d(1, 2, 3)], "module '0': layer type Conv2d"),
    (lambda: [nn.Linear(4, 3, bias=True), LIF(3, du=0.5)], "module '0': nn.Linear bias feeds the LIF current u"),
])
def test_unmappable_layers_are_named(layers, message):
    with pytest.raises(FrontendError, match=message.replace("(", r"\(")):
        module_to_ir(nn.Sequential(*layers()), 4, "t", 5, RateEncoding())


def test_nested_module_paths_name_layers():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(6, 5, bias=False), LIF(5))
            self.head = nn.ModuleDict({"fc": nn.Linear(5, 2, bias=False), "spk": LIF(2)})

    net = module_to_ir(Net(), 6, "t", 5, RateEncoding())
    assert [p.name for p in net.populations] == ["encoder.1", "head.spk"]
    assert net.output == "head.spk"
