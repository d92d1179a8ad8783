"""Synapses: how a source population's spikes become a target population's input.

A projection's synapse maps the source's flattened state (C-major for shaped populations, as
``torch.flatten`` orders it) to the target's. Lava's ``Dense`` (and every synapse that follows its
model) delivers at step ``t+1`` what the source emitted at step ``t``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from neurocomp.ir._common import frozen_array


@dataclass(frozen=True)
class Dense:
    """Float all-to-all weights, shape ``[n_post, n_pre]`` (torch ``nn.Linear`` layout)."""

    weight: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "weight", frozen_array(self.weight, np.float64))

    @property
    def shape(self):
        return self.weight.shape

    @property
    def n_post(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_pre(self) -> int:
        return int(self.weight.shape[1])


@dataclass(frozen=True)
class LoihiDense:
    """Fixed-point weights as Lava's ``Dense`` takes them.

    ``weight`` holds 8-bit integer mantissas ``[n_post, n_pre]``; Lava keeps the top
    ``num_weight_bits`` of them and scales the accumulated activation by ``2**weight_exp``.
    ``sign_mode``: 1 mixed, 2 excitatory, 3 inhibitory (Lava's ``SignMode``).
    """

    weight: np.ndarray
    num_weight_bits: int = 8
    weight_exp: int = 0
    sign_mode: int = 1

    def __post_init__(self):
        object.__setattr__(self, "weight", frozen_array(self.weight, np.int64))
        for name in ("num_weight_bits", "weight_exp", "sign_mode"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @property
    def shape(self):
        return self.weight.shape

    @property
    def n_post(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_pre(self) -> int:
        return int(self.weight.shape[1])


Synapse = Union[Dense, LoihiDense]
FLOAT_SYNAPSES = (Dense,)
FIXED_SYNAPSES = (LoihiDense,)
