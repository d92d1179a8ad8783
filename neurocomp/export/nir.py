"""A fixed-point network -> a NIR graph (nir 1.0.x) whose float parameters reproduce its dynamics.

Units: one Lava activation LSB = 1.0, so ``v_NIR = v_Lava / 64`` (Lava shifts the activation left by
6 before it enters ``u``). With ``dt`` (default 1e-4 s, snnTorch's export/import convention; written
to ``metadata["dt"]``) and forward Euler — what neurocomp's NIR front end and snnTorch's
``import_from_nir`` use — each population becomes:

========================================  =================================================================
LoihiLIF (du, dv, vth, bias)              NIR node (``k_u = (du + 1) / 4096``, ``k_v = dv / 4096``)
========================================  =================================================================
``du = 4095`` (the current forgets)       ``LIF(tau = dt/k_v, r = tau/dt, v_leak = b/k_v, v_threshold = vth)``
otherwise                                 ``CubaLIF(tau_syn = dt/k_u, tau_mem = dt/k_v, r = tau_mem/dt,``
                                          ``w_in = tau_syn/dt, v_leak = b/k_v, v_threshold = vth)``
========================================  =================================================================

with ``b = (bias_mant << bias_exp) / 64`` and ``v_reset = 0``; every projection becomes a ``Linear``
(``LoihiDense``: weight ``effective_weights * 2**weight_exp``, the per-spike integer activation) or a
``Conv2d`` (``LoihiConv``: its integers). ``r = tau/dt`` and ``w_in = tau_syn/dt`` make every input
gain 1, so tools that assume snnTorch's convention read the same numbers.

What the floats cannot carry — Lava truncates each decay product toward zero and floors a negative
``weight_exp``'s sums, the float model does not — is kept exactly in node metadata
(``neurocomp_*`` keys: the integers, the original names). neurocomp's NIR front end rebuilds the
fixed-point network from them when the float parameters still match them (the file was not edited),
so neurocomp -> NIR -> neurocomp gives the same integers; otherwise it imports the floats.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from neurocomp.errors import NeurocompError
from neurocomp.ir import LoihiDense, LoihiLIF, Network

DEFAULT_DT = 1e-4
ACT_UNITS = 64.0          # Lava's v per float unit (the activation's << 6)
META_VERSION = 1


def _safe(name: str, taken: set) -> str:
    """A node name every NIR consumer accepts (torch module names: no dots or slashes)."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "node"
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


def neuron_floats(neuron: LoihiLIF, dt: float) -> tuple:
    """``(nir class name, {parameter: array})`` for one fixed-point population (module docstring)."""
    from neurocomp.ir import loihi as fxp
    n = neuron.size
    k_u = (neuron.du + fxp.DS_OFFSET) / fxp.DECAY_UNITY
    k_v = neuron.dv / fxp.DECAY_UNITY
    b = fxp.effective_bias(neuron).astype(np.float64) / ACT_UNITS
    if k_v == 0:
        return None, {}
    full = lambda x: np.full(n, float(x))  # noqa: E731
    tau_mem = dt / k_v
    common = {"v_leak": b / k_v, "v_threshold": full(neuron.vth), "v_reset": full(0.0)}
    if k_u >= 1.0:
        return "LIF", {"tau": full(tau_mem), "r": full(tau_mem / dt), **common}
    tau_syn = dt / k_u
    return "CubaLIF", {"tau_syn": full(tau_syn), "tau_mem": full(tau_mem), "r": full(tau_mem / dt),
                       "w_in": full(tau_syn / dt), **common}


def to_nir(fixed: Network, dt: float = DEFAULT_DT):
    """The NIR graph of ``fixed`` (see the module docstring)."""
    import nir

    from neurocomp.ir import loihi as fxp
    from neurocomp.ir.synapses import LoihiConv

    if not dt > 0:
        raise NeurocompError(f"--dt: must be positive, got {dt}")
    taken: set = set()
    names = {fixed.input.name: _safe("input", taken)}
    nodes = {names[fixed.input.name]: nir.Input(input_type=np.array(fixed.input.shape),
                                               metadata={"neurocomp_name": fixed.input.name})}
    for pop in fixed.populations:
        names[pop.name] = _safe(pop.name, taken)
        kind, params = neuron_floats(pop.neuron, dt)
        if kind is None:
            raise NeurocompError(f"population {pop.name!r}: dv = 0 (no voltage leak) has no NIR LIF/CubaLIF form "
                                 "with a finite tau_mem")
        shape = tuple(pop.shape)
        params = {k: v.reshape(shape) for k, v in params.items()}
        meta = {"neurocomp_name": pop.name, "neurocomp_du": pop.neuron.du, "neurocomp_dv": pop.neuron.dv,
                "neurocomp_vth": pop.neuron.vth, "neurocomp_bias_mant": pop.neuron.bias_mant.astype(np.int64),
                "neurocomp_bias_exp": pop.neuron.bias_exp}
        nodes[names[pop.name]] = getattr(nir, kind)(**params, metadata=meta)
    edges = []
    for proj in fixed.projections:
        pname = _safe(proj.name, taken)
        syn = proj.synapse
        meta = {"neurocomp_name": proj.name, "neurocomp_weight": syn.weight.astype(np.int64)}
        if isinstance(syn, LoihiDense):
            meta.update(neurocomp_num_weight_bits=syn.num_weight_bits, neurocomp_weight_exp=syn.weight_exp,
                        neurocomp_sign_mode=syn.sign_mode)
            node = nir.Linear(weight=fxp.effective_weights(syn).astype(np.float64) * 2.0 ** syn.weight_exp,
                              metadata=meta)
        elif isinstance(syn, LoihiConv):
            src_shape = fixed.shape_of(proj.source)
            node = nir.Conv2d(input_shape=tuple(src_shape[1:]), weight=syn.weight.astype(np.float64),
                              stride=syn.stride, padding=syn.padding, dilation=syn.dilation, groups=syn.groups,
                              bias=np.zeros(syn.out_channels), metadata=meta)
        else:
            raise NeurocompError(f"projection {proj.name!r}: a {type(syn).__name__} synapse has no NIR export "
                                 "(export a compiled, fixed-point build)")
        if proj.plasticity is not None:
            raise NeurocompError(f"projection {proj.name!r}: plastic projections have no NIR form (NIR has no "
                                 "learning rules); export a frozen network")
        nodes[pname] = node
        edges += [(names[proj.source], pname), (pname, names[proj.target])]
    out = _safe("output", taken)
    nodes[out] = nir.Output(output_type=np.array(fixed.population(fixed.output).shape))
    edges.append((names[fixed.output], out))
    meta = {"dt": float(dt), "neurocomp_version": META_VERSION, "neurocomp_name": fixed.name,
            "neurocomp_timesteps": int(fixed.timesteps)}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(fixed: Network, out, dt: float = DEFAULT_DT) -> dict:
    """Write ``fixed`` as a NIR file at ``out`` (atomically, checked by reading it back with type checks)."""
    import io
    import tempfile

    import nir

    from neurocomp.io import atomic_write_bytes

    graph = to_nir(fixed, dt)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "graph.nir"
        nir.write(path, graph)
        nir.read(path)     # nir's own type check: every edge's shapes agree
        data = path.read_bytes()
    atomic_write_bytes(Path(out), data)
    del io
    return {"format": "nir", "path": str(out), "dt": float(dt),
            "nodes": {k: type(v).__name__ for k, v in graph.nodes.items()}}
