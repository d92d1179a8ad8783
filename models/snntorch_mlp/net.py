"""An snnTorch 784-128-10 MLP, written as snnTorch's tutorials write one.

``build()`` is the factory model.yaml points at: an ``nn.Sequential`` of ``nn.Linear`` and
``snn.Leaky`` layers with ``init_hidden=True``, stepped once per time step
(``for t: spk = net(x[t])``). ``reset_mechanism="zero"`` is Loihi's reset (snnTorch's default,
"subtract", has no Loihi equivalent). Dropout on the hidden spikes is a no-op at inference.
"""
from __future__ import annotations

import snntorch as snn
import snntorch.utils
import torch
from torch import nn

BETA = 0.9          # membrane decay per step: Loihi dv = 1 - beta
THRESHOLD = 1.0


def build(hidden: int = 128, beta: float = BETA, dropout: float = 0.2) -> nn.Module:
    return nn.Sequential(
        nn.Linear(784, hidden, bias=False),
        snn.Leaky(beta=beta, threshold=THRESHOLD, reset_mechanism="zero", init_hidden=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, 10, bias=False),
        snn.Leaky(beta=beta, threshold=THRESHOLD, reset_mechanism="zero", init_hidden=True),
    )


def run(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """snnTorch's own forward over time: ``x`` ``[T, batch, 784]`` -> output spikes ``[T, batch, 10]``."""
    snntorch.utils.reset(net)
    return torch.stack([net(x[t]) for t in range(x.shape[0])])
