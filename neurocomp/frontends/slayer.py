"""lava-dl slayer front end: ``slayer.block.cuba`` Dense / Conv / Pool / Flatten blocks -> float IR.

The torch front end (:mod:`neurocomp.frontends.torch`) walks an ``nn.Module`` and hands every lava-dl
slayer module it meets to :func:`block_to_ir`. A ``slayer.block.cuba.Dense`` becomes one Dense
projection into one LIF population, a ``cuba.Conv`` one Conv projection into a ``(C, H, W)`` LIF
population, a ``cuba.Pool`` a pooling projection (a depthwise Conv with slayer's fixed pooling weight,
stride = kernel) into its own LIF population (slayer's pool blocks have neurons, as on Loihi), and a
``cuba.Flatten`` nothing (the next Dense reads the map C-major, as slayer's reshape does). Every other
slayer module is refused with its module path and the option that stops it (recurrence, axonal
delays, graded spikes, transposed convolution, ...).

slayer's conv and pool synapses are ``Conv3d`` layers over ``NCHWT`` with a ``(kH, kW, 1)`` kernel:
per time step exactly torch's ``conv2d``, so weight ``[..., 0]``, the first two entries of stride,
padding and dilation, and ``groups`` are the IR Conv. Its ``Pool`` synapse convolves one shared
kernel over the channel and height axes merged (``C*H``) after zero-padding the bottom/right by
``H % kH`` / ``W % kW`` rows/columns: that is per-channel pooling only with stride = kernel, no
padding, no dilation and sides divisible by the kernel, which is what the front end accepts (netx
cannot read pool layers at all).

What slayer computes (lava-dl 0.6, ``slayer/neuron/cuba.py`` + ``neuron/dynamics/leaky_integrator.py``)
------------------------------------------------------------------------------------------------
slayer keeps a float state ``x`` but integrates it as the integer ``X = x * s_scale`` with
``s_scale = w_scale * 64`` (``w_scale`` is the neuron's ``scale``, 64 by default)::

    a[t] = W_q @ s[t]                                   W_q = synapse.pre_hook_fx(W): multiples of 2/w_scale
    U[t] = (U[t-1] * (4096 - cd)) >>0 12  +  a[t] * s_scale
    V[t] = (V[t-1] * (4096 - vd)) >>0 12  +  U[t] - q(mean) * s_scale       (q(mean): MeanOnlyBatchNorm)
    spike where V[t] >= (threshold + threshold_eps) * s_scale ;  V[t] = 0 there

``>>0`` is a right shift rounding toward zero, ``cd``/``vd`` are ``current_decay``/``voltage_decay``
rounded to integers (they are stored multiplied by ``p_scale = 4096``), ``threshold`` is already
quantised to ``1/w_scale`` steps. ``threshold_eps = 0.01 / s_scale`` turns slayer's ``>=`` into Loihi's
``>``: ``threshold * s_scale`` is an integer, so ``V >= th*s_scale + 0.01`` is exactly ``V > th*s_scale``.

This is Loihi's CUBA neuron in Lava's integers; netx (``netx/hdf5.py``) maps the exported block onto
Lava's ``LIF`` with ``du = iDecay - 1`` (Lava adds the 1 back), ``dv = vDecay``, ``vth = vThMant =
threshold * w_scale``, ``bias_mant = bias`` with ``bias_exp = 6`` and the integer weights
``W_q * w_scale``; Lava then holds ``U``/``V`` as ``64 * (weights, vth, bias units)`` — slayer's
``X`` exactly.

How it maps onto the float IR
-----------------------------
The IR's float units are chosen as netx's chip units (``x_IR = x_slayer * w_scale``, i.e. Lava's
state ``/ 64``), so every number in the float IR equals what netx would put on the chip:

=========================  ===============================================  =====================
IR ``LIF`` / ``Dense``      from the block                                    netx / Lava
=========================  ===============================================  =====================
``Dense.weight``            ``pre_hook_fx(W) * w_scale`` (mask, weight norm)  ``weight`` (integers)
``LIF.vth``                 ``threshold * w_scale``                           ``vThMant``
``LIF.du``                  ``round(current_decay) / 4096``                   ``iDecay / 4096``
``LIF.dv``                  ``round(voltage_decay) / 4096``                   ``vDecay / 4096``
``LIF.bias``                ``-q(norm.running_mean) * w_scale``               ``bias`` (``<< 6``)
=========================  ===============================================  =====================

Where the float IR and slayer can differ (measured in ``tests/test_slayer_frontend.py``):

* **Rounding.** slayer (like Loihi) truncates each decay product toward zero to ``1/s_scale``; the
  float IR decays exactly. A spike flips only when ``v`` ends within a few LSBs of the threshold;
  after the quantiser, the ``cpu``/``loihi-sim`` targets truncate again (at their own scale).
* **delay_shift** (default ``True``): slayer delays each block's output by one step to model the
  one-step axon delay between chip layers. The IR already has that delay (every projection delivers
  at ``t+1``), and neurocomp's targets give every population its own sample window, starting
  ``depth`` steps after the input (``backends/batch_engine.py``). So both settings map to the same IR, whose
  per-window spikes are slayer's with ``delay_shift=False``, or — equivalently — slayer's
  ``delay_shift=True`` output ``depth`` steps later when the input is followed by ``depth`` silent
  steps. A model evaluated by slayer over ``T`` steps with ``delay_shift=True`` only sees its output
  layer's first ``T - depth`` steps; neurocomp counts all ``T``. With a bias (MeanOnlyBatchNorm) the
  two differ a little more: in slayer a block at depth ``d`` integrates its bias for ``d - 1`` silent
  steps before its input arrives; in the IR its window (and its bias) starts with its input.
* **current_decay = 0** (no current leak) is ``du = -1`` in netx; Lava's 12-bit ``du`` cannot hold
  it, so the quantiser clips it to 0: a leak of 1/4096 per step on the chip.
* 24-bit ``u``/``v`` wrap-around/saturation on Loihi has no counterpart in slayer's int64 state.

Options accepted as they are: ``weight_norm`` (the normalised weight is taken), ``mask`` (applied as
slayer applies it: not at all under ``weight_norm``, a lava-dl quirk),
neuron ``dropout`` (identity at inference), ``count_log``, any neuron ``scale``, ``pre_hook_fx=None``
(unquantised float weights; the quantiser then rounds them), ``requires_grad`` (learned) decays.
"""
from __future__ import annotations

import numpy as np

from neurocomp.errors import FrontendError
from neurocomp.ir import LIF, Dense, Population, Projection
from neurocomp.ir.synapses import Conv

_SLAYER = "lava.lib.dl.slayer."
_DECAY_UNITY = 4096  # slayer's p_scale: decays are stored multiplied by it

# why a slayer block cannot be mapped, by class name (neurocomp maps cuba.Dense only)
_UNSUPPORTED_BLOCKS = {
    "ConvT": "transposed convolution",
    "Unpool": "unpooling",
    "Average": "population averaging",
    "Recurrent": "recurrent connections",
    "KWTA": "recurrent k-winner-take-all connections",
    "Affine": "a non-spiking (voltage) output layer",
    "Input": "an input neuron layer (feed spikes straight into the first Dense block)",
    "TimeDecimation": "time decimation",
}


def is_slayer_block(mod) -> bool:
    """True for a module defined by lava-dl slayer: the torch walker hands it to :func:`block_to_ir`
    whole (a block is mapped or refused as one unit, never by its inner neuron/synapse modules)."""
    return type(mod).__module__.startswith(_SLAYER)


def _kind(mod) -> str:
    """``slayer.block.cuba.Conv`` — how slayer's users name the class."""
    return type(mod).__module__[len("lava.lib.dl."):] + "." + type(mod).__name__


def _refuse(path: str, mod, option: str):
    raise FrontendError(f"module {path!r}: {_kind(mod)}: {option} is not supported; "
                        "neurocomp maps slayer.block.cuba Dense, Conv, Pool and Flatten blocks (CUBA LIF)")


def _layer_name(path: str) -> str:
    """The module path names the population; bare ``nn.Sequential`` indices get a prefix."""
    return f"block{path}" if path.isdigit() else path


def _block_weight(block):
    """The block's float weight as its forward uses it (before ``pre_hook_fx``).

    With slayer's ``weight_norm=True`` the ``weight`` attribute is recomputed from ``weight_g`` and
    ``weight_v`` by a forward pre-hook, so after ``load_state_dict`` it is stale until the next
    forward: recompute it from the hook instead of reading it. The block's ``mask`` multiplies that
    attribute in place just before the hook recomputes it, so under weight norm slayer never applies
    the mask (nor does netx's export): it is applied here exactly when slayer applies it.
    """
    from torch.nn.utils.weight_norm import WeightNorm
    synapse = block.synapse
    for hook in synapse._forward_pre_hooks.values():
        if isinstance(hook, WeightNorm) and hook.name == "weight":
            return hook.compute_weight(synapse)
    mask = getattr(block, "mask", None)
    if mask is not None:
        return synapse.weight * mask.to(synapse.weight.dtype)
    return synapse.weight


def _decay(param) -> float:
    """A shared decay parameter as the fraction lost per step: slayer stores it times 4096 and its
    dynamics round it to an integer (the export also clamps it to [0, 4096], as here)."""
    return float(np.rint(np.clip(float(param.detach().cpu().double().ravel()[0]), 0, _DECAY_UNITY))) / _DECAY_UNITY


def _bias(path: str, block, neuron, size: int, channels=None) -> np.ndarray:
    """A neuron's constant input in IR units: slayer's MeanOnlyBatchNorm subtracts its quantised
    running mean from the current fed to the voltage every step — Lava's LIF ``bias``."""
    norm = getattr(neuron, "norm", None)
    if norm is None:
        return np.zeros(size)
    from lava.lib.dl.slayer.neuron.norm import MeanOnlyBatchNorm
    if type(norm) is not MeanOnlyBatchNorm:
        _refuse(path, block, f"neuron norm {type(norm).__name__} (only MeanOnlyBatchNorm maps to a bias)")
    mean = norm.running_mean.detach().cpu()
    bias = -(norm.pre_hook_fx(mean).double().numpy() * neuron.w_scale).ravel()
    if channels is not None and bias.size == channels and size != channels:
        bias = np.repeat(bias, size // channels)         # one mean per conv channel, C-major neurons
    if bias.size not in (1, size):
        raise FrontendError(f"module {path!r}: norm.running_mean has {bias.size} values, block has {size} neurons")
    return np.broadcast_to(bias, (size,)).copy()


def _neuron_checks(path: str, block):
    neuron = block.neuron
    if block.delay is not None:
        _refuse(path, block, "delay=True (learnable axonal delays)")
    if neuron.graded_spike:
        _refuse(path, block, "graded_spike=True (graded spikes)")
    if neuron.persistent_state:
        _refuse(path, block, "persistent_state=True (state carried across forward calls; "
                "neurocomp starts every sample from rest)")
    if not neuron.shared_param:
        # slayer draws per-neuron decays at the first forward; the IR has one du/dv per population
        _refuse(path, block, "shared_param=False (per-neuron decays)")
    if getattr(block.synapse, "complex", False):
        _refuse(path, block, "a complex synapse")


def _lif(path: str, block, size: int, channels=None) -> LIF:
    neuron = block.neuron
    vth = float(neuron.v_th_mant)  # threshold * w_scale; slayer stores threshold in 1/w_scale steps
    if not vth > 0:
        _refuse(path, block, f"threshold {neuron.threshold} (must be at least 1/{neuron.w_scale})")
    bias = _bias(path, block, neuron, size, channels)
    if not np.all(np.isfinite(bias)):
        raise FrontendError(f"module {path!r}: norm.running_mean contains NaN/Inf")
    return LIF(size, du=_decay(neuron.current_decay), dv=_decay(neuron.voltage_decay), vth=vth, bias=bias)


def _weight(path: str, block) -> np.ndarray:
    """The synapse weight as the block's forward applies it (pre_hook_fx), in netx's integer units."""
    w = _block_weight(block)
    if block.synapse.pre_hook_fx is not None:
        w = block.synapse.pre_hook_fx(w)  # slayer's 8-bit quantisation, in units of 1/w_scale
    weight = w.detach().cpu().double().numpy() * block.neuron.w_scale
    if not np.all(np.isfinite(weight)):
        raise FrontendError(f"module {path!r}: weights contain NaN/Inf")
    return weight


def block_to_ir(path: str, block, prev: str, prev_size: int, prev_shape: tuple = None):
    """Map one slayer block at module path ``path``, fed by population ``prev`` of ``prev_size``
    neurons (shape ``prev_shape``, default flat), to ``(Population, Projection)`` in the float IR
    (units: see the module docstring); ``(None, None)`` for a Flatten block."""
    from lava.lib.dl.slayer.block import cuba

    prev_shape = tuple(prev_shape) if prev_shape is not None else (int(prev_size),)
    if not type(block).__module__.startswith(_SLAYER + "block."):
        _refuse(path, block, "a bare slayer neuron/synapse module outside a block "
                "(wrap it in slayer.block.cuba.Dense)")
    if isinstance(block, cuba.Flatten):
        if len(prev_shape) != 3:
            _refuse(path, block, f"a reshaping block on an input that is already flat {prev_shape}")
        return None, None
    if not isinstance(block, (cuba.Dense, cuba.Conv, cuba.Pool)):
        family = type(block).__module__.rsplit(".", 1)[-1]
        if family != "cuba":
            _refuse(path, block, f"the {family!r} neuron model (only CUBA LIF maps onto Loihi's LIF)")
        _refuse(path, block, _UNSUPPORTED_BLOCKS.get(type(block).__name__, "this block type"))
    _neuron_checks(path, block)
    name = _layer_name(path)
    if isinstance(block, cuba.Dense):
        if len(prev_shape) != 1:
            _refuse(path, block, f"a Dense block on a {prev_shape} map (put slayer.block.cuba.Flatten before it)")
        weight = _weight(path, block)
        weight = weight.reshape(int(weight.shape[0]), -1)
        if weight.shape[1] != prev_size:
            raise FrontendError(f"module {path!r}: block takes {weight.shape[1]} inputs, "
                                f"previous layer {prev!r} has {prev_size}")
        pop = Population(name, _lif(path, block, int(weight.shape[0])))
        return pop, Projection(f"{name}.synapse", prev, name, Dense(weight))
    what = "convolution" if isinstance(block, cuba.Conv) else "pooling"
    if len(prev_shape) != 3:
        _refuse(path, block, f"{what} needs a (C, H, W) input; the previous layer is flat {prev_shape}")
    syn = block.synapse
    stride, padding, dilation = (tuple(int(x) for x in getattr(syn, k)[:2]) for k in ("stride", "padding", "dilation"))
    weight = _weight(path, block)[..., 0]
    if isinstance(block, cuba.Conv):
        conv = Conv(weight, stride, padding, dilation, int(syn.groups))
    else:
        kernel = tuple(int(k) for k in weight.shape[2:])
        quirks = [f"{k}={v}" for k, v, ok in (("stride", stride, stride == kernel), ("padding", padding, padding == (0, 0)),
                                                  ("dilation", dilation, dilation == (1, 1))) if not ok]
        quirks += [f"input {axis}={n} not divisible by the kernel {k}" for axis, n, k in
                   zip("HW", prev_shape[1:], kernel) if n % k]
        if quirks:
            _refuse(path, block, f"pooling with {', '.join(quirks)} (slayer's Pool pools over the channel and height "
                    "axes merged and pads only the bottom/right; it equals per-channel pooling only with stride = "
                    "kernel, no padding or dilation, and sides divisible by the kernel)")
        c = prev_shape[0]
        conv = Conv(np.repeat(weight.reshape(1, 1, *kernel), c, axis=0), stride, groups=c)
    try:
        out_shape = conv.output_shape(prev_shape)
    except ValueError as e:
        raise FrontendError(f"module {path!r}: {e}") from None
    size = int(np.prod(out_shape))
    pop = Population(name, _lif(path, block, size, channels=out_shape[0]), shape=out_shape)
    return pop, Projection(f"{name}.synapse", prev, name, conv)
