"""Synapses: how a source population's spikes become a target population's input.

A projection's synapse maps the source's flattened state (C-major for shaped populations, as
``torch.flatten`` orders it) to the target's. Lava's ``Dense`` (and every synapse that follows its
model) delivers at step ``t+1`` what the source emitted at step ``t``.

* :class:`Dense` / :class:`LoihiDense` — all-to-all weights ``[n_post, n_pre]``; a Dense after a
  ``(C, H, W)`` population reads it flattened C-major (torch's ``nn.Flatten`` order), so flatten
  needs no node;
* :class:`Conv` / :class:`LoihiConv` — 2-D convolution between ``(C, H, W)`` populations, torch's
  ``nn.Conv2d`` geometry and orientation (stride, zero padding, dilation, groups); pooling is a
  depthwise Conv with fixed weights (:func:`pooling`). The fixed-point semantics and the mapping onto
  Lava's ``Conv`` process (kernel flipped and laid out ``(C_out, W, H, C_in)``, ``(X, Y, C)`` ports)
  are in :mod:`neurocomp.backends.conv`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

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

    ``num_message_bits`` (Lava's parameter of the same name): 0 — the source sends binary spikes (Lava
    casts them to bool); ``k > 0`` — graded messages, integers ``0 .. 2**k - 1`` that Lava multiplies the
    weights with (``W @ x``, in int32: see :mod:`neurocomp.backends.graded`). Projections from a
    :class:`~neurocomp.ir.encodings.CurrentEncoding` input carry ``k = bits``.
    """

    weight: np.ndarray
    num_weight_bits: int = 8
    weight_exp: int = 0
    sign_mode: int = 1
    num_message_bits: int = 0

    def __post_init__(self):
        object.__setattr__(self, "weight", frozen_array(self.weight, np.int64))
        for name in ("num_weight_bits", "weight_exp", "sign_mode"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "num_message_bits", _message_bits(self.num_message_bits, "LoihiDense"))

    @property
    def shape(self):
        return self.weight.shape

    @property
    def n_post(self) -> int:
        return int(self.weight.shape[0])

    @property
    def n_pre(self) -> int:
        return int(self.weight.shape[1])


MAX_MESSAGE_BITS = 24   # graded messages up to Loihi's 24-bit state (CurrentEncoding.bits)


def _message_bits(value, kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= MAX_MESSAGE_BITS:
        raise ValueError(f"{kind}.num_message_bits: expected an int in 0..{MAX_MESSAGE_BITS} (0 = binary spikes), "
                         f"got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------ convolution
def _pair(value, what: str, minimum: int) -> tuple:
    """An int or a pair of ints -> ``(h, w)``, each ``>= minimum``."""
    if isinstance(value, (int, np.integer)):
        out = (int(value), int(value))
    else:
        try:
            out = tuple(int(v) for v in value)
        except TypeError:
            raise ValueError(f"{what}: expected an int or a pair of ints, got {value!r}") from None
        if len(out) == 1:
            out = out * 2
    if len(out) != 2 or any(v < minimum for v in out):
        raise ValueError(f"{what}: expected an int or (h, w) pair of ints >= {minimum}, got {value!r}")
    return out


class _ConvGeometry:
    """Shape rules shared by :class:`Conv` and :class:`LoihiConv` (torch ``nn.Conv2d`` semantics)."""

    weight: np.ndarray
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int

    def _check_geometry(self):
        kind = type(self).__name__
        if self.weight.ndim != 4 or 0 in self.weight.shape:
            raise ValueError(f"{kind}: weight must be [C_out, C_in/groups, kH, kW], got shape {self.weight.shape}")
        object.__setattr__(self, "stride", _pair(self.stride, f"{kind}.stride", 1))
        object.__setattr__(self, "padding", _pair(self.padding, f"{kind}.padding", 0))
        object.__setattr__(self, "dilation", _pair(self.dilation, f"{kind}.dilation", 1))
        if isinstance(self.groups, bool) or not isinstance(self.groups, (int, np.integer)) or self.groups < 1:
            raise ValueError(f"{kind}.groups: expected a positive int, got {self.groups!r}")
        object.__setattr__(self, "groups", int(self.groups))
        if self.out_channels % self.groups:
            raise ValueError(f"{kind}: {self.out_channels} output channels are not divisible by groups={self.groups}")

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1]) * self.groups

    @property
    def kernel_size(self) -> tuple:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))

    @property
    def fan_in(self) -> int:
        """Synapses into one output neuron (``C_in/groups * kH * kW``, padding ignored)."""
        return int(np.prod(self.weight.shape[1:]))

    def output_shape(self, in_shape: tuple) -> tuple:
        """``(C_out, H_out, W_out)`` for an input ``(C_in, H, W)`` (torch's formula); raises ValueError."""
        in_shape = tuple(int(d) for d in in_shape)
        if len(in_shape) != 3:
            raise ValueError(f"a convolution reads a (C, H, W) population, got shape {in_shape}")
        c, *hw = in_shape
        if c != self.in_channels:
            raise ValueError(f"input has {c} channels, the kernel takes {self.in_channels} "
                             f"({self.weight.shape[1]} per group x groups={self.groups})")
        out = []
        for n, k, s, p, d, axis in zip(hw, self.kernel_size, self.stride, self.padding, self.dilation, "HW"):
            span = d * (k - 1) + 1
            if n + 2 * p < span:
                raise ValueError(f"input {axis}={n} with padding {p} is smaller than the dilated kernel ({span})")
            out.append((n + 2 * p - span) // s + 1)
        return (self.out_channels, *out)

    def shape_error(self, pre_shape: tuple, post_shape: tuple) -> Optional[str]:
        """Why a projection from ``pre_shape`` to ``post_shape`` cannot carry this convolution (or None)."""
        try:
            want = self.output_shape(pre_shape)
        except ValueError as e:
            return str(e)
        if tuple(post_shape) != want:
            return (f"{type(self).__name__} (kernel {self.kernel_size}, stride {self.stride}, padding "
                    f"{self.padding}, dilation {self.dilation}, groups {self.groups}) makes {want}, "
                    f"target shape is {tuple(post_shape)}")
        return None

    def geometry(self) -> dict:
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def macs(self, in_shape: tuple) -> int:
        """Multiply-accumulates of one pass: every output times its kernel's taps (padding included,
        as a conv layer computes them)."""
        return int(np.prod(self.output_shape(in_shape))) * self.fan_in

    def dense_matrix(self, in_shape: tuple) -> np.ndarray:
        """The same map as a matrix ``[C_out*H_out*W_out, C_in*H*W]`` over flat C-major states (torch's
        cross-correlation; zero padding contributes nothing): exact, for counting and baselines."""
        c_in, h, w = (int(d) for d in in_shape)
        c_out, ho, wo = self.output_shape(in_shape)
        kh, kw = self.kernel_size
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        cpg_in, cpg_out = c_in // self.groups, c_out // self.groups
        oc, oy, ox, ic, ky, kx = np.meshgrid(np.arange(c_out), np.arange(ho), np.arange(wo), np.arange(cpg_in),
                                             np.arange(kh), np.arange(kw), indexing="ij")
        y, x = oy * sh - ph + ky * dh, ox * sw - pw + kx * dw
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        src_c = (oc // cpg_out) * cpg_in + ic
        rows = ((oc * ho + oy) * wo + ox)[ok]
        cols = ((src_c * h + y) * w + x)[ok]
        m = np.zeros((c_out * ho * wo, c_in * h * w), dtype=np.asarray(self.weight).dtype)
        np.add.at(m, (rows, cols), np.asarray(self.weight)[oc, ic, ky, kx][ok])
        return m


@dataclass(frozen=True)
class Conv(_ConvGeometry):
    """Float 2-D convolution, exactly torch's ``nn.Conv2d`` (cross-correlation, zero padding, no bias).

    ``weight`` ``[C_out, C_in/groups, kH, kW]``; ``stride``, ``padding``, ``dilation`` ints or
    ``(h, w)`` pairs (stored as pairs); ``groups`` divides both channel counts. The source and target
    populations are ``(C, H, W)``; their flat (C-major) states are what the projection reads and writes.
    A bias of the torch layer is not part of the synapse: the front end moves it into the target LIF.

    Pooling is a Conv too: :func:`pooling` builds sum/average pooling as a depthwise Conv with fixed
    weights and stride = kernel (see its docstring for why there is no separate node).
    """

    weight: np.ndarray
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1

    def __post_init__(self):
        object.__setattr__(self, "weight", frozen_array(self.weight, np.float64))
        self._check_geometry()
        if not np.all(np.isfinite(self.weight)):
            raise ValueError("Conv: weight contains NaN/Inf")


# the weights Loihi's synapse stores unchanged at num_weight_bits=8, weight_exp=0 (Lava's Dense rules):
# mixed sign: 8-bit mantissa m in [-128, 127] stored as 2*m; one sign only: 0..255 in magnitude
LOIHI_CONV_WEIGHT_RANGE = {"mixed": (-256, 254, 2), "excitatory": (0, 255, 1), "inhibitory": (-255, 0, 1)}


@dataclass(frozen=True)
class LoihiConv(_ConvGeometry):
    """Fixed-point convolution as Lava 0.10's ``Conv`` process with ``PyConvModelFixed`` computes it.

    ``weight`` holds integers in torch's layout and orientation (``[C_out, C_in/groups, kH, kW]``,
    cross-correlation); the geometry is :class:`Conv`'s. Per step the source's spikes are cast to
    bool (``num_message_bits=0``), ``acc = sum w * s`` is formed exactly and wrapped to signed 24 bits
    (Lava's ``signed_clamp``: ``(acc + 2**23) mod 2**24 - 2**23``), and delivered one step later, like
    Dense. There is no weight exponent and no ``num_weight_bits``: Lava's Conv model ignores both
    (lava issue 803), so the integers here are the effective weights, on every target.

    To make the chip compute the same numbers, the weights must be what Loihi's 8-bit synapse holds
    unchanged at ``weight_exp=0, num_weight_bits=8`` (Lava's Dense clip/truncate rules, which drop the
    lowest bit in the mixed-sign mode): even numbers in ``[-256, 254]`` when the kernel mixes signs,
    ``0..255`` when it is excitatory, ``-255..0`` when inhibitory (:data:`LOIHI_CONV_WEIGHT_RANGE`).
    Anything else is refused here.

    ``num_message_bits`` as :class:`LoihiDense`'s: ``k > 0`` makes Lava's Conv convolve the source's
    integer values ``0 .. 2**k - 1`` instead of their bool cast (graded input).
    """

    weight: np.ndarray
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    num_message_bits: int = 0

    def __post_init__(self):
        object.__setattr__(self, "num_message_bits", _message_bits(self.num_message_bits, "LoihiConv"))
        w = np.asarray(self.weight)
        if w.size and not (np.issubdtype(w.dtype, np.integer) or np.array_equal(w, np.rint(w))):
            raise ValueError("LoihiConv: weights must be integers")
        object.__setattr__(self, "weight", frozen_array(w, np.int64))
        self._check_geometry()
        lo, hi, step = LOIHI_CONV_WEIGHT_RANGE[self.sign_mode_name]
        bad = (self.weight < lo) | (self.weight > hi) | (self.weight % step != 0)
        if np.any(bad):
            value = int(self.weight[bad][0])
            raise ValueError(
                f"LoihiConv: weight {value} is not an 8-bit Loihi weight for a {self.sign_mode_name} kernel "
                f"(allowed: {'even numbers in ' if step == 2 else ''}[{lo}, {hi}])")

    @property
    def sign_mode_name(self) -> str:
        if self.weight.size == 0 or self.weight.min() >= 0:
            return "excitatory"
        if self.weight.max() <= 0:
            return "inhibitory"
        return "mixed"

    @property
    def sign_mode(self) -> int:
        """Lava's ``SignMode`` value the chip would store the kernel in: 1 mixed, 2 excitatory, 3 inhibitory."""
        return {"mixed": 1, "excitatory": 2, "inhibitory": 3}[self.sign_mode_name]

    @property
    def accumulation_bound(self) -> int:
        """``max over output channels of sum |w|``: bounds ``|acc|`` for binary input."""
        return int(np.abs(self.weight).reshape(self.out_channels, -1).sum(axis=1).max())


def pooling(channels: int, kernel_size, stride=None, padding=0, mode: str = "avg", scale: float = 1.0) -> Conv:
    """Sum or average pooling as the depthwise :class:`Conv` it is: ``groups = channels``, one
    ``kH x kW`` kernel of ``scale`` (``mode="sum"``) or ``scale / (kH*kW)`` (``mode="avg"``) per channel,
    ``stride`` defaulting to the kernel size (torch ``AvgPool2d`` with ``count_include_pad=True``).

    Why a Conv and not a node of its own: Lava 0.10 has no pooling process, and on Loihi a pooling
    layer *is* a convolution with shared fixed weights — the same synapse memory, the same spike
    fan-out, the same one-step delay. One synapse type means the quantiser, both cpu engines, the Lava
    builder (a ``Conv`` process), the core mapping and the energy model treat pooling with no code of
    their own, and a pooling layer is exact wherever a convolution is. What a separate node would add
    — knowing the weights are all equal — is readable from the weights when a report wants it.
    """
    kh, kw = _pair(kernel_size, "pooling.kernel_size", 1)
    if mode not in ("sum", "avg"):
        raise ValueError(f"pooling.mode: expected 'sum' or 'avg', got {mode!r}")
    value = float(scale) / (kh * kw) if mode == "avg" else float(scale)
    weight = np.full((int(channels), 1, kh, kw), value)
    return Conv(weight, stride=(kh, kw) if stride is None else stride, padding=padding, groups=int(channels))


Synapse = Union[Dense, LoihiDense, Conv, LoihiConv]
FLOAT_SYNAPSES = (Dense, Conv)
FIXED_SYNAPSES = (LoihiDense, LoihiConv)
