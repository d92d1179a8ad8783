"""A LeNet-style ReLU CNN for 28x28 digits — an ordinary ANN (no spiking layers), converted to an SNN by
``source.kind: ann`` (:mod:`neurocomp.frontends.ann`).

    conv1  nn.Conv2d(1, 6, 5) + ReLU         (6, 24, 24)
    pool1  nn.AvgPool2d(2)                   (6, 12, 12)   folded into conv2 (no neurons)
    conv2  nn.Conv2d(6, 16, 5) + ReLU        (16, 8, 8)
    pool2  nn.AvgPool2d(2), flatten          (256,)        folded into fc1
    fc1    nn.Linear(256, 120) + ReLU, dropout
    fc2    nn.Linear(120, 84) + ReLU
    fc3    nn.Linear(84, 10)                 class = the output neuron with most spikes

Average pooling, not max pooling: a spiking network sums its inputs (max pooling has no synaptic form
and is refused by the converter).
"""
from __future__ import annotations

from torch import nn


def build(dropout: float = 0.2) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))
