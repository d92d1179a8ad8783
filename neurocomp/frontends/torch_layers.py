"""The weighted layers between two spiking layers of a torch model, as one IR synapse.

Between two LIF layers a torch model may apply several linear maps in a row: ``nn.Conv2d``,
``nn.AvgPool2d`` / sum pooling, ``nn.BatchNorm2d``, ``nn.Flatten`` and ``nn.Linear``. On Loihi one
projection carries the whole chain, so the front end composes it (:func:`compose`) into one
:class:`~neurocomp.ir.synapses.Conv` or :class:`~neurocomp.ir.synapses.Dense` and a constant input
current (the biases). Composition is exact — the composed synapse computes the chain's output for
any input — and is refused where it would not be:

* at most one layer with learned weights (``Conv2d`` or ``Linear``) per chain: two of them in a row
  are a modelling mistake more often than not, and the torch front end has always refused
  Linear-after-Linear;
* pooling and batch norm fold into the weighted layer beside them (or stand alone: a pooling
  between two LIF layers is a pooling projection, a depthwise Conv with fixed weights);
* a conv that zero-pads a map which itself came from a conv/pooling folds only when the padded
  border reads nothing but padding in the composite (checked per axis), and only if no bias sits
  in between (the two-stage chain pads the bias with zeros at the border; the composite cannot);
* ``Flatten`` then ``Linear`` after convs: the composite is a Dense whose weight is the chain
  applied to every basis image (float64, exact up to rounding of the products).

Torch layers come in as :class:`ConvOp` / :class:`LinearOp` / ``"flatten"``; their conversion from
``nn.Module``s, with the one-line errors that name the module, lives in
:mod:`neurocomp.frontends.torch`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from neurocomp.ir.synapses import Conv, Dense


class CompositionError(ValueError):
    """The chain has no exact single-synapse form (the message says why)."""


@dataclass
class ConvOp:
    """``y = conv2d(x, weight, stride, padding, dilation, groups) + bias`` on ``(C, H, W)``."""

    path: str
    weight: np.ndarray                 # [C_out, C_in/groups, kH, kW] float64
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    bias: Optional[np.ndarray] = None  # [C_out]
    kind: str = "conv"                 # "conv", "pool", "norm": what the torch layer was

    def out_shape(self, in_shape: tuple) -> tuple:
        return Conv(self.weight, self.stride, self.padding, self.dilation, self.groups).output_shape(in_shape)

    def dense_weight(self) -> np.ndarray:
        """The kernel with groups expanded: ``[C_out, C_in, kH, kW]`` (zeros across groups)."""
        co, cig, kh, kw = self.weight.shape
        g = self.groups
        full = np.zeros((co, cig * g, kh, kw))
        cog = co // g
        for k in range(g):
            full[k * cog:(k + 1) * cog, k * cig:(k + 1) * cig] = self.weight[k * cog:(k + 1) * cog]
        return full


@dataclass
class LinearOp:
    path: str
    weight: np.ndarray                 # [out, in]
    bias: Optional[np.ndarray] = None


def _regroup(weight: np.ndarray) -> tuple:
    """The largest ``g`` for which ``weight [C_out, C_in, ...]`` is block diagonal in ``g`` groups, and
    the grouped kernel ``[C_out, C_in/g, ...]``."""
    co, ci = weight.shape[:2]
    for g in sorted({d for d in range(1, min(co, ci) + 1) if co % d == 0 and ci % d == 0}, reverse=True):
        cog, cig = co // g, ci // g
        mask = np.zeros((co, ci), dtype=bool)
        for k in range(g):
            mask[k * cog:(k + 1) * cog, k * cig:(k + 1) * cig] = True
        if not np.any(weight[~mask]):
            grouped = np.concatenate([weight[k * cog:(k + 1) * cog, k * cig:(k + 1) * cig] for k in range(g)])
            return g, grouped
    return 1, weight


def compose_convs(first: ConvOp, second: ConvOp, in_shape: tuple) -> ConvOp:
    """``second(first(x))`` as one conv on ``x`` of shape ``in_shape``; raises CompositionError.

    Per axis, with ``first`` = (k1, s1, p1, d1) and ``second`` = (k2, s2, p2, d2): the composite has
    stride ``s1*s2``, padding ``p1 + s1*p2``, dilation 1 and kernel offsets ``s1*d2*j + d1*m``
    (``K[o, i, e] = sum_{c, j, m} K2[o, c, j] K1[c, i, m]``). ``second``'s zero padding of the
    intermediate map becomes zero padding of the input, which is the same only when every input
    position a padded intermediate position would read lies in the padding:
    ``d1*(k1-1) < s1 + p1`` on the left and ``s1*H1 - p1 >= H`` on the right.
    """
    mid_shape = first.out_shape(in_shape)
    out_shape = second.out_shape(mid_shape)
    k1, k2 = first.dense_weight(), second.dense_weight()
    pads = []
    for axis, n, n1, kk1, kk2, s1, s2, p1, p2, d1, d2 in zip(
            "HW", in_shape[1:], mid_shape[1:], k1.shape[2:], k2.shape[2:], first.stride, second.stride,
            first.padding, second.padding, first.dilation, second.dilation):
        if p2 and not (d1 * (kk1 - 1) < s1 + p1 and s1 * n1 - p1 >= n):
            raise CompositionError(
                f"{second.path!r} zero-pads the output of {first.path!r} along {axis}, and that padding covers "
                f"real input pixels of {first.path!r} (input {axis}={n}); no single convolution computes both "
                "(Lava pads symmetrically) — put a LIF between them or drop the padding")
        pads.append(p1 + s1 * p2)
    if first.bias is not None and np.any(first.bias) and any(second.padding):
        raise CompositionError(f"{second.path!r} zero-pads the biased output of {first.path!r}: the bias would "
                               "vary at the border; use bias=False there")
    (s1h, s1w), (d2h, d2w), (d1h, d1w) = first.stride, second.dilation, first.dilation
    eh = s1h * d2h * (k2.shape[2] - 1) + d1h * (k1.shape[2] - 1) + 1
    ew = s1w * d2w * (k2.shape[3] - 1) + d1w * (k1.shape[3] - 1) + 1
    weight = np.zeros((k2.shape[0], k1.shape[1], eh, ew))
    for jy in range(k2.shape[2]):
        for jx in range(k2.shape[3]):
            for my in range(k1.shape[2]):
                for mx in range(k1.shape[3]):
                    weight[:, :, s1h * d2h * jy + d1h * my, s1w * d2w * jx + d1w * mx] += \
                        k2[:, :, jy, jx] @ k1[:, :, my, mx]
    stride = (first.stride[0] * second.stride[0], first.stride[1] * second.stride[1])
    bias = second.bias.copy() if second.bias is not None else None
    if first.bias is not None and np.any(first.bias):
        extra = np.einsum("ocyx,c->o", k2, first.bias)
        bias = extra if bias is None else bias + extra
    groups, grouped = _regroup(weight)
    kinds = {first.kind, second.kind}
    out = ConvOp(second.path if second.kind == "conv" or first.kind != "conv" else first.path, grouped, stride,
                 tuple(pads), (1, 1), groups, bias,
                 "conv" if "conv" in kinds else "pool" if "pool" in kinds else "norm")
    if out.out_shape(in_shape) != out_shape:
        raise CompositionError(f"{first.path!r} followed by {second.path!r} has no single-convolution form "
                               f"with the same output size {out_shape}")
    return out


def conv_matrix(op: ConvOp, in_shape: tuple) -> np.ndarray:
    """The conv as a dense matrix ``[n_out, n_in]`` (C-major flat order on both sides), float64."""
    import torch
    n_in = int(np.prod(in_shape))
    cols = []
    w = torch.from_numpy(op.weight)
    for lo in range(0, n_in, 4096):
        hi = min(lo + 4096, n_in)
        basis = torch.zeros((hi - lo, n_in), dtype=torch.float64)
        basis[torch.arange(hi - lo), torch.arange(lo, hi)] = 1.0
        y = torch.nn.functional.conv2d(basis.reshape((hi - lo,) + tuple(in_shape)), w, stride=op.stride,
                                       padding=op.padding, dilation=op.dilation, groups=op.groups)
        cols.append(y.reshape(hi - lo, -1).numpy())
    return np.concatenate(cols).T


def compose(ops: list, in_shape: tuple) -> tuple:
    """A chain of :class:`ConvOp`, ``"flatten"`` and :class:`LinearOp` on a ``in_shape`` input ->
    ``(synapse, bias, out_shape, kind)``: a float Conv or Dense, the constant current it adds per
    output neuron (``None`` when zero), the output shape, and ``"conv"``, ``"pool"`` or ``"dense"``."""
    convs, rest = [], []
    for op in ops:
        (rest if rest or not isinstance(op, ConvOp) else convs).append(op)
    if any(isinstance(op, ConvOp) for op in rest):
        raise CompositionError("a Conv2d/pooling after Flatten or Linear")
    conv = None
    shape = tuple(in_shape)
    for op in convs:
        conv = op if conv is None else compose_convs(conv, op, in_shape)
    if conv is not None:
        shape = conv.out_shape(in_shape)
    linears = [op for op in rest if isinstance(op, LinearOp)]
    if not linears:
        if conv is None:
            raise CompositionError("no synapse in the chain")
        bias = None if conv.bias is None or not np.any(conv.bias) else np.repeat(conv.bias, shape[1] * shape[2])
        return Conv(conv.weight, conv.stride, conv.padding, conv.dilation, conv.groups), bias, shape, conv.kind
    lin = linears[0]
    n = int(np.prod(shape))
    if lin.weight.shape[1] != n:
        raise CompositionError(f"in_features={lin.weight.shape[1]}, previous layer has {n}")
    weight, bias = lin.weight, lin.bias
    if conv is not None:
        weight = lin.weight @ conv_matrix(conv, in_shape)
        if conv.bias is not None and np.any(conv.bias):
            extra = lin.weight @ np.repeat(conv.bias, shape[1] * shape[2])
            bias = extra if bias is None else bias + extra
    bias = None if bias is None or not np.any(bias) else np.asarray(bias, dtype=np.float64)
    return Dense(weight), bias, (lin.weight.shape[0],), "dense"
