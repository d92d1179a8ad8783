"""The lava-dl slayer network that model.yaml points at (``source: {kind: slayer, factory: net.py:build}``).

Two ``slayer.block.cuba.Dense`` blocks, 64 -> 64 -> 10, in a ``blocks`` ModuleList: the usual shape
of a lava-dl network. Tensors are slayer's ``[batch, features, time]``.
"""
from __future__ import annotations

import torch
import lava.lib.dl.slayer as slayer

# Loihi CUBA parameters in slayer's units (lava-dl's NMNIST tutorial values; threshold in 1/64 steps)
NEURON = {
    "threshold": 1.25,
    "current_decay": 0.25,
    "voltage_decay": 0.03,
    "tau_grad": 0.03,
    "scale_grad": 3,
    "requires_grad": True,  # decays are learned too; the front end reads the trained values
}


class DigitsNet(torch.nn.Module):
    def __init__(self, hidden: int = 64, dropout: float = 0.05):
        super().__init__()
        hidden_neuron = {**NEURON, "dropout": slayer.neuron.Dropout(p=dropout)}
        # delay_shift=False: each block sees its input in the same step. neurocomp's targets give
        # each layer its own sample window (Lava's one-step Dense delay is absorbed by a staggered
        # reset), which is exactly this timing; slayer's default delay_shift=True maps too, but then
        # slayer evaluates the output layer on 2 fewer steps than the chip does.
        self.blocks = torch.nn.ModuleList([
            slayer.block.cuba.Dense(hidden_neuron, 64, hidden, weight_norm=True, delay_shift=False),
            slayer.block.cuba.Dense(dict(NEURON), hidden, 10, weight_norm=True, delay_shift=False),
        ])

    def forward(self, spikes):
        for block in self.blocks:
            spikes = block(spikes)
        return spikes


def build(hidden: int = 64) -> torch.nn.Module:
    return DigitsNet(hidden)
