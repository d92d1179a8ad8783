"""An snnTorch convolutional network for 28x28 digits, written as snnTorch's tutorials write one:
a module whose ``forward`` loops over time on a time-major input ``[T, batch, 784]``.

    conv1  nn.Conv2d(1, 8, 5, stride=2)   -> lif1 snn.Leaky  (8, 12, 12)
    conv2  nn.Conv2d(8, 16, 5, stride=2)  -> lif2 snn.Leaky  (16, 4, 4)
    fc     nn.Linear(256, 10)             -> lif3 snn.Leaky  (10,)      class = most output spikes

Strided convolutions instead of max pooling (a max of currents has no Loihi form); every neuron
resets to zero (``reset_mechanism="zero"``, Loihi's reset).
"""
from __future__ import annotations

import snntorch as snn
import torch
from torch import nn

BETA = 0.9


class ConvSNN(nn.Module):
    def __init__(self, beta: float = BETA):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, stride=2, bias=False)
        self.lif1 = snn.Leaky(beta=beta, reset_mechanism="zero")
        self.conv2 = nn.Conv2d(8, 16, 5, stride=2, bias=False)
        self.lif2 = snn.Leaky(beta=beta, reset_mechanism="zero")
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(16 * 4 * 4, 10, bias=False)
        self.lif3 = snn.Leaky(beta=beta, reset_mechanism="zero")

    def forward(self, x):
        """``x`` ``[T, batch, 784]`` spikes -> output spikes ``[T, batch, 10]``."""
        mem1, mem2, mem3 = self.lif1.init_leaky(), self.lif2.init_leaky(), self.lif3.init_leaky()
        out = []
        for step in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.conv1(x[step].view(-1, 1, 28, 28)), mem1)
            spk2, mem2 = self.lif2(self.conv2(spk1), mem2)
            spk3, mem3 = self.lif3(self.fc(self.drop(spk2.flatten(1))), mem3)
            out.append(spk3)
        return torch.stack(out)


def build(beta: float = BETA) -> nn.Module:
    return ConvSNN(beta)
