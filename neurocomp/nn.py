"""PyTorch building blocks for training networks that neurocomp can deploy.

:class:`LIF` is a current-based leaky integrate-and-fire layer with exactly Lava's float LIF
dynamics (``lava.proc.lif.models.PyLifModelFloat``)::

    u[t] = u[t-1] * (1 - du) + a[t]
    v[t] = v[t-1] * (1 - dv) + u[t] + bias
    s[t] = v[t] > vth ;  v[t] = 0 where s[t]

and a surrogate gradient for the spike. Build ordinary ``nn.Module``s from ``nn.Linear`` and
``LIF`` (``nn.Sequential`` works); tensors are ``[batch, time, features]``. The quantiser maps
``du``/``dv``/``vth`` to Loihi's 12-bit decays and threshold mantissa.

Example::

    net = nn.Sequential(nn.Linear(784, 128, bias=False), LIF(128, du=0.2, dv=0.1),
                        nn.Linear(128, 10, bias=False), LIF(10, du=0.2, dv=0.1))
    spikes = net(x)          # x: [batch, time, 784] spikes
    logits = spikes.sum(1)   # spike counts
"""
from __future__ import annotations

import torch
from torch import nn


class _SpikeFn(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid surrogate backward (Zenke & Ganguli 2018)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (ctx.scale * x.abs() + 1.0) ** 2, None


def spike(x: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    return _SpikeFn.apply(x, scale)


class LIF(nn.Module):
    """Current-based LIF over ``[batch, time, size]`` input currents; returns spikes of the same shape.

    ``du``, ``dv`` in [0, 1] are the per-step decay fractions, ``vth`` > 0 the threshold. They are
    fixed (buffers), as on chip; ``bias`` is a trainable per-neuron constant input when ``bias=True``.
    """

    def __init__(self, size: int, du: float = 0.2, dv: float = 0.1, vth: float = 1.0,
                 bias: bool = False, surrogate_scale: float = 10.0):
        super().__init__()
        if not (0.0 <= du <= 1.0 and 0.0 <= dv <= 1.0):
            raise ValueError(f"LIF: du and dv must lie in [0, 1], got du={du}, dv={dv}")
        if not vth > 0:
            raise ValueError(f"LIF: vth must be > 0, got {vth}")
        self.size = size
        self.register_buffer("du", torch.tensor(float(du)))
        self.register_buffer("dv", torch.tensor(float(dv)))
        self.register_buffer("vth", torch.tensor(float(vth)))
        self.bias = nn.Parameter(torch.zeros(size)) if bias else None
        self.surrogate_scale = surrogate_scale

    def forward(self, a: torch.Tensor, return_state: bool = False):
        batch, steps, _ = a.shape
        u = a.new_zeros(batch, self.size)
        v = a.new_zeros(batch, self.size)
        b = self.bias if self.bias is not None else 0.0
        spikes, us, vs = [], [], []
        for t in range(steps):
            u = u * (1 - self.du) + a[:, t]
            v = v * (1 - self.dv) + u + b
            s = spike(v - self.vth, self.surrogate_scale)
            if return_state:
                us.append(u)
                vs.append(v)
            v = v * (1 - s.detach())  # reset to zero; no gradient through the reset
            spikes.append(s)
        out = torch.stack(spikes, 1)
        if return_state:
            return out, torch.stack(us, 1), torch.stack(vs, 1)
        return out

    def extra_repr(self) -> str:
        return (f"{self.size}, du={self.du.item():.4g}, dv={self.dv.item():.4g}, "
                f"vth={self.vth.item():.4g}, bias={self.bias is not None}")


class RecurrentLIF(LIF):
    """A :class:`LIF` layer whose own spikes feed back through ``recurrent`` (an ``nn.Linear(size,
    size, bias=False)``), one step later — exactly the timing of Lava's one-step synaptic delay::

        u[t] = u[t-1] * (1 - du) + a[t] + W_rec @ s[t-1]

    A network with one runs on the stream schedule (one continuous run, nothing reset between
    samples but silent rest steps)."""

    def __init__(self, size: int, du: float = 0.2, dv: float = 0.1, vth: float = 1.0,
                 bias: bool = False, surrogate_scale: float = 10.0):
        super().__init__(size, du, dv, vth, bias, surrogate_scale)
        self.recurrent = nn.Linear(size, size, bias=False)

    def forward(self, a: torch.Tensor, return_state: bool = False):
        batch, steps, _ = a.shape
        u = a.new_zeros(batch, self.size)
        v = a.new_zeros(batch, self.size)
        s = a.new_zeros(batch, self.size)
        b = self.bias if self.bias is not None else 0.0
        spikes, us, vs = [], [], []
        for t in range(steps):
            u = u * (1 - self.du) + a[:, t] + self.recurrent(s)
            v = v * (1 - self.dv) + u + b
            s = spike(v - self.vth, self.surrogate_scale)
            if return_state:
                us.append(u)
                vs.append(v)
            v = v * (1 - s.detach())
            spikes.append(s)
        out = torch.stack(spikes, 1)
        if return_state:
            return out, torch.stack(us, 1), torch.stack(vs, 1)
        return out

