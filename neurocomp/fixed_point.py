"""Lava 0.10's Loihi fixed-point arithmetic, vectorised over a batch — the one home of these semantics.

Read against ``lava/proc/lif/models.py`` (``AbstractPyLifModelFixed``) and
``lava/proc/dense/models.py`` (``AbstractPyDenseModelBitAcc``):

Dense
    weights are clipped to 8 bits for their sign mode, then the low ``8 - num_weight_bits + mixed``
    bits are dropped (``lava.utils.weightutils``); per step ``a = sum_j w_ij s_j`` and
    ``a = a << weight_exp`` (or ``a >> -weight_exp``, an arithmetic/floor shift).
LIF
    ``u' = sign(u*(4096-(du+1))) * (|u*(4096-(du+1))| >> 12) + (a << 6)`` then wrapped into 24 bits
    (``u' > 2**23`` -> ``u' - 2**24``; ``u' <= -2**23`` -> ``u' + 2**24``);
    ``v' = sign(..)*(|v*(4096-dv)| >> 12) + u' + (bias_mant << bias_exp)`` clipped to ``±(2**23-1)``;
    spike where ``v' > vth << 6``; ``v' = 0`` there.

Lava holds ``u``, ``v`` in int32 numpy arrays and the shifted activation in int32, so the int32
wrap-around of ``a << 6`` (for ``|a| >= 2**25``) and of ``decayed + (a << 6)`` is reproduced too.
"""
from __future__ import annotations

import numpy as np

from neurocomp.ir import LoihiDense, LoihiLIF

UV_BITS = 24
MAX_UV = 2 ** (UV_BITS - 1)
DECAY_SHIFT = 12
DECAY_UNITY = 2 ** DECAY_SHIFT
VTH_SHIFT = 6
ACT_SHIFT = 6
DS_OFFSET = 1  # Loihi's 1-bit current-decay offset: du=4095 means "forget everything"
DM_OFFSET = 0

MIXED, EXCITATORY, INHIBITORY = 1, 2, 3


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    return ((x + 2 ** 31) % 2 ** 32) - 2 ** 31


def effective_weights(dense: LoihiDense) -> np.ndarray:
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


def shift_activation(a: np.ndarray, weight_exp: int) -> np.ndarray:
    return np.left_shift(a, weight_exp) if weight_exp > 0 else np.right_shift(a, -weight_exp)


def _decay(x: np.ndarray, keep: int) -> np.ndarray:
    prod = x.astype(np.int64) * keep
    return np.sign(prod) * np.right_shift(np.abs(prod), DECAY_SHIFT)


def effective_bias(neuron: LoihiLIF) -> np.ndarray:
    b = neuron.bias_mant.astype(np.int64)
    e = neuron.bias_exp
    return np.left_shift(b, e) if e >= 0 else np.right_shift(b, -e)


def lif_step(u: np.ndarray, v: np.ndarray, a_in: np.ndarray, neuron: LoihiLIF):
    """One Lava bit-accurate LIF step on int64 arrays ``[batch, n]``; returns ``(u, v, spikes)``."""
    decayed_u = _wrap_int32(_decay(u, DECAY_UNITY - (neuron.du + DS_OFFSET)))
    act = _wrap_int32(np.left_shift(a_in.astype(np.int64), ACT_SHIFT))
    u_new = _wrap_int32(decayed_u + act)
    u_new = np.where(u_new > MAX_UV, u_new - 2 * MAX_UV, u_new)
    u_new = np.where(u_new <= -MAX_UV, u_new + 2 * MAX_UV, u_new)
    decayed_v = _wrap_int32(_decay(v, DECAY_UNITY - (neuron.dv + DM_OFFSET)))
    v_new = np.clip(decayed_v + u_new + effective_bias(neuron), -MAX_UV + 1, MAX_UV - 1)
    spikes = v_new > (neuron.vth << VTH_SHIFT)
    v_new = np.where(spikes, 0, v_new)
    return u_new, v_new, spikes
