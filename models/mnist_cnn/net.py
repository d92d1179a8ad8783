"""A convolutional spiking network for 28x28 digits: seed 002's 15C5-P2-40C5-P2-300 shape, in plain torch.

    conv1  nn.Conv2d(1, 15, 5)        -> lif1 (15, 24, 24)
    pool1  nn.AvgPool2d(2)                               (15, 12, 12)   pooled spikes, no neurons
    conv2  nn.Conv2d(15, 40, 5)       -> lif2 (40, 8, 8)
    pool2  nn.AvgPool2d(2), flatten                      (640,)
    fc1    nn.Linear(640, 300)        -> lif3 (300,)
    fc2    nn.Linear(300, 10)         -> lif4 (10,)      class = the output neuron with most spikes

The layers are registered in data-flow order, which is all the neurocomp torch front end reads; the
``forward`` below adds the reshapes between the LIF layers (``[batch, time, features]``) and the conv
layers (``[batch * time, C, H, W]``), and runs each ``neurocomp.nn.LIF`` through :func:`lif_sequence`:
the same arithmetic as ``LIF.forward`` in the same order (so the same spikes, and the same surrogate
gradient), time-major and with a hand-written backward pass — about 20x faster on a CPU, which is
what makes training a conv SNN take minutes rather than hours. ``tests/test_mnist_cnn.py`` checks the
two agree. The front end folds each average pooling into the layer after it (a pooled spike map
feeding a conv is one conv with a 2x2-spread kernel and stride 2, exactly), so the deployed network
has four spiking populations, as this module does.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from neurocomp.nn import LIF

DU, DV, VTH = 1.0, 0.1, 1.0


class _LifSequence(torch.autograd.Function):
    """``LIF.forward`` over a whole ``[time, batch, n]`` current, with BPTT written out.

    Forward, per step (exactly ``neurocomp.nn.LIF``): ``u = u * keep_u + a``, ``v = v * keep_v + u +
    bias``, ``s = (v - vth > 0)``, ``v = v * (1 - s)``. Backward: ``LIF``'s surrogate
    ``ds/dv = 1 / (scale * |v - vth| + 1)**2`` and no gradient through the reset, as there."""

    @staticmethod
    def forward(ctx, a, bias, keep_u, keep_v, vth, scale):
        u = torch.zeros_like(a[0])
        v = torch.zeros_like(a[0])
        vs, ss = torch.empty_like(a), torch.empty_like(a)
        for t in range(a.shape[0]):
            u = u * keep_u + a[t]
            v = v * keep_v + u + bias
            s = (v - vth > 0).to(a.dtype)
            vs[t], ss[t] = v, s
            v = v * (1 - s)
        ctx.save_for_backward(vs, ss, keep_u, keep_v, vth)
        ctx.scale = scale
        return ss

    @staticmethod
    def backward(ctx, grad):
        vs, ss, keep_u, keep_v, vth = ctx.saved_tensors
        ga = torch.empty_like(vs)
        gv = torch.zeros_like(vs[0])
        gu = torch.zeros_like(vs[0])
        gb = torch.zeros_like(vs[0])
        for t in range(vs.shape[0] - 1, -1, -1):
            gv = grad[t] / (ctx.scale * (vs[t] - vth).abs() + 1.0) ** 2 + (1 - ss[t]) * keep_v * gv
            gu = gv + keep_u * gu
            ga[t] = gu
            gb = gb + gv
        return ga, (gb.sum(0) if ctx.needs_input_grad[1] else None), None, None, None, None


def lif_sequence(lif: LIF, a: torch.Tensor) -> torch.Tensor:
    """Spikes ``[batch, time, n]`` of ``lif`` for input currents ``a [batch, time, n]`` (= ``lif(a)``)."""
    bias = lif.bias if lif.bias is not None else a.new_zeros(())
    s = _LifSequence.apply(a.transpose(0, 1).contiguous(), bias, 1 - lif.du, 1 - lif.dv, lif.vth,
                           lif.surrogate_scale)
    return s.transpose(0, 1)


class ConvSNN(nn.Module):
    def __init__(self, c1: int = 15, c2: int = 40, hidden: int = 300, du: float = DU, dv: float = DV,
                 vth: float = VTH, dropout: float = 0.0):
        super().__init__()
        self.shapes = [(c1, 24, 24), (c2, 8, 8)]
        self.layers = nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(1, c1, 5, bias=False), lif1=LIF(c1 * 24 * 24, du=du, dv=dv, vth=vth),
            pool1=nn.AvgPool2d(2),
            conv2=nn.Conv2d(c1, c2, 5, bias=False), lif2=LIF(c2 * 8 * 8, du=du, dv=dv, vth=vth),
            pool2=nn.AvgPool2d(2),
            flatten=nn.Flatten(),
            drop=nn.Dropout(dropout),
            fc1=nn.Linear(c2 * 4 * 4, hidden, bias=False), lif3=LIF(hidden, du=du, dv=dv, vth=vth),
            fc2=nn.Linear(hidden, 10, bias=False), lif4=LIF(10, du=du, dv=dv, vth=vth),
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input spikes ``[batch, time, 784]`` -> output spikes ``[batch, time, 10]``."""
        L = self.layers
        b, t = x.shape[:2]
        h = L.conv1(x.reshape(b * t, 1, 28, 28))
        s = lif_sequence(L.lif1, h.reshape(b, t, -1))
        h = L.conv2(L.pool1(s.reshape(b * t, *self.shapes[0])))
        s = lif_sequence(L.lif2, h.reshape(b, t, -1))
        h = L.drop(L.flatten(L.pool2(s.reshape(b * t, *self.shapes[1]))))
        s = lif_sequence(L.lif3, L.fc1(h).reshape(b, t, -1))
        return lif_sequence(L.lif4, L.fc2(s))


def build(**kwargs) -> nn.Module:
    """The factory model.yaml points at."""
    return ConvSNN(**kwargs)
