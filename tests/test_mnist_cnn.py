"""models/mnist_cnn: its fast LIF is neurocomp.nn.LIF, and the committed weights do what the README claims."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neurocomp.nn import LIF

HERE = Path(__file__).resolve().parents[1] / "models" / "mnist_cnn"


def _net_module():
    from neurocomp.frontends.user_code import import_user_file
    return import_user_file(HERE / "net.py")       # by path: other examples have a net.py too


@pytest.mark.parametrize("bias", [False, True])
def test_lif_sequence_equals_lif_forward_and_its_gradient(bias):
    """``net.lif_sequence`` (time-major, hand-written BPTT) against ``neurocomp.nn.LIF.forward``
    (autograd through its own loop): identical spikes, the same input and bias gradients."""
    net = _net_module()
    torch.manual_seed(0)
    lif = LIF(50, du=0.3, dv=0.2, vth=1.0, bias=bias)
    if bias:
        torch.nn.init.normal_(lif.bias, 0, 0.1)
    a = torch.randn(4, 30, 50, dtype=torch.float64, requires_grad=True)
    lif = lif.double()
    weight = torch.randn(4, 30, 50, dtype=torch.float64)
    grads = []
    for fn in (lif, lambda x: net.lif_sequence(lif, x)):
        a.grad = None
        if bias:
            lif.bias.grad = None
        s = fn(a)
        (s * weight).sum().backward()
        grads.append((s.detach(), a.grad.clone(), lif.bias.grad.clone() if bias else None))
    (s1, g1, b1), (s2, g2, b2) = grads
    assert s1.sum() > 0 and torch.equal(s1, s2)
    assert torch.allclose(g1, g2, rtol=1e-12, atol=1e-12)
    if bias:
        assert torch.allclose(b1, b2, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_committed_weights_reach_97_percent_in_the_float_ir():
    """The held-out split, encoded as compile encodes it, through the float IR the front end makes."""
    from neurocomp.backends import conv as cv
    from neurocomp.data import load_split
    from neurocomp.frontends.torch import build_module, module_to_ir
    from neurocomp.ir import RateEncoding
    from neurocomp.ir.encodings import encode

    model = build_module("net.py:build", HERE / "weights.pt", HERE)
    net = module_to_ir(model, 784, "mnist_cnn", 25, RateEncoding(1.0), input_shape=(1, 28, 28))
    split = load_split("mnist5k", holdout=1000, seed=0)
    x = encode(split.x_test, RateEncoding(1.0), 25, seed=0)
    counts = cv.simulate_layered(net, x, engine="float")[net.output][1]
    accuracy = float(np.mean(counts.argmax(1) == split.y_test))
    with torch.no_grad():
        torch_counts = model(torch.tensor(x, dtype=torch.float32)).sum(1).numpy()
    print(f"float IR {accuracy:.4f}, torch float32 {np.mean(torch_counts.argmax(1) == split.y_test):.4f}")
    assert accuracy >= 0.97
