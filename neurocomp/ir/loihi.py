"""What the fixed-point nodes' integers mean: Loihi's number formats as Lava 0.10 applies them.

The IR holds integers as Lava's processes take them; these are the definitions every pass, front
end, exporter and backend shares (the dynamics that use them live in
:mod:`neurocomp.backends.fixed_point`):

* u and v are 24-bit; decays are 12-bit fractions of ``2**12`` (Lava adds Loihi's 1-bit offset to
  the current decay: ``du = 4095`` forgets everything); the threshold is compared as ``vth << 6``
  and Dense activations enter shifted left by 6;
* a Dense weight is clipped to 8 bits for its sign mode, then its low ``8 - num_weight_bits + mixed``
  bits are dropped (:func:`effective_weights`); the bias is ``bias_mant << bias_exp``.
"""
from __future__ import annotations

import numpy as np

UV_BITS = 24
MAX_UV = 2 ** (UV_BITS - 1)
DECAY_SHIFT = 12
DECAY_UNITY = 2 ** DECAY_SHIFT
VTH_SHIFT = 6
ACT_SHIFT = 6
DS_OFFSET = 1  # Loihi's 1-bit current-decay offset: du=4095 means "forget everything"
DM_OFFSET = 0

MIXED, EXCITATORY, INHIBITORY = 1, 2, 3   # Lava's SignMode


def effective_weights(dense) -> np.ndarray:
    """The integer weights Lava's bit-accurate Dense actually multiplies with (int64)."""
    w = dense.weight.astype(np.int64)
    mixed = int(dense.sign_mode == MIXED)
    inhibitory = dense.sign_mode == INHIBITORY
    if inhibitory:
        w = -w
    w = np.clip(w, -(2 ** 8) * mixed, 2 ** 8 - 1)
    drop = 8 - dense.num_weight_bits + mixed
    w = (w >> drop) << drop
    return -w if inhibitory else w


def effective_bias(neuron) -> np.ndarray:
    """``bias_mant << bias_exp`` (int64)."""
    b = neuron.bias_mant.astype(np.int64)
    e = neuron.bias_exp
    return np.left_shift(b, e) if e >= 0 else np.right_shift(b, -e)
