"""NIR front end: a NIR graph file (package ``nir`` 1.0.x) -> float IR (LIF + Dense/Conv).

NIR is continuous time. One time step is ``dt`` seconds, taken from (first that exists) model.yaml's
``source.dt``, the graph's ``metadata["dt"]`` (neurocomp's exporter writes it), or the exporters'
convention ``r = tau / dt`` (snnTorch, and neurocomp's exporter, set ``r = tau_mem / dt``) when every
LIF/CubaLIF node gives the same ``tau / r`` and it is below every ``tau``; otherwise a one-line error
asks for ``source.dt``.

Discretisation: forward Euler, in the order snnTorch and Lava step (the current first, then the
voltage with the *new* current). Why not the exact exponential ``exp(-dt/tau)``: the graphs come from
frameworks that trained them with Euler steps (snnTorch's ``beta = 1 - dt/tau`` is exactly what its
exporter inverts; Lava's and Loihi's decays are Euler factors), so Euler reproduces the network that
was trained; the exponential would change every decay (``exp(-0.1) = 0.905`` against ``beta = 0.9``)
and with it the spikes. Per node, with ``k = dt / tau``:

=============================  ==========================================================================
NIR node                       IR population (``u = u (1-du) + a;  v = v (1-dv) + u + bias``)
=============================  ==========================================================================
``LIF(tau, r, v_leak, thr)``   ``du = 1``, ``dv = dt/tau``, input gain ``r dt/tau``, ``bias = dt/tau * v_leak``
``CubaLIF(tau_syn, tau_mem,    ``du = dt/tau_syn``, ``dv = dt/tau_mem``, input gain
r, v_leak, thr, w_in)``        ``(w_in dt/tau_syn)(r dt/tau_mem)``, ``bias = dt/tau_mem * v_leak``
``IF(r, thr)``                 ``du = 1``, ``dv = 0``, input gain ``r dt``
``Threshold(thr)``             ``du = dv = 1`` (no memory: spike where the input exceeds ``thr``)
=============================  ==========================================================================

The gain multiplies the rows of the incoming weights (and an Affine/Conv bias, which enters v as the
LIF bias when ``du = 1``; a bias into a CubaLIF's decaying current has no Loihi form and is refused).
Per-neuron thresholds are folded into each neuron's incoming weights and bias (v is linear in them)
so the population keeps one ``vth``; per-neuron time constants must agree (one decay per population).
Spikes are ``v > v_threshold`` (NIR's and Loihi's comparison); the reset is to 0 — ``v_reset``
must be 0 (files without it, from nir < 1.0.6, default to 0), since Loihi resets to and starts at 0.

Between spiking nodes (and the Input) any DAG of ``Affine``, ``Linear``, ``Scale``, ``Flatten``,
``Conv2d``, ``SumPool2d``, ``AvgPool2d`` is one linear map per source: a single Conv2d or pooling
node becomes an IR :class:`~neurocomp.ir.Conv` (pooling as its depthwise Conv), anything else is
evaluated into a Dense matrix. Edges into a spiking node from itself or from a node at the same
depth are recurrent: they carry the previous step's spikes (Lava's one-step delay), as in snnTorch's
RLeaky/RSynaptic whose exported subgraphs are flattened here. Feed-forward edges carry the same step's
spikes (the batched schedule's staggered windows), so they must go from depth ``d`` to ``d + 1``;
skip connections and edges back to shallower layers would arrive at other steps than in the source
framework and are refused.

Refused, each naming the node: ``LI``, ``CubaLI``, ``I`` (non-spiking membrane readouts: the IR's
populations spike and neurocomp's targets read out spike counts; use LIF/CubaLIF outputs), ``Delay``,
``Conv1d``, any other node type, a linear readout between the last spiking node and the Output,
more than one Input or Output.

Why one module of ~580 lines: one importer — the graph walk, the discretisation of each NIR node family
and the refusals share the node bookkeeping; the exporter, its mirror, is apart (neurocomp.export.nir).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from neurocomp.errors import FrontendError
from neurocomp.ir import LIF, Dense, Input, LoihiDense, LoihiLIF, Network, Population, Projection

SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")
LINEAR = ("Affine", "Linear", "Scale", "Flatten", "Conv2d", "SumPool2d", "AvgPool2d")
READOUTS = ("LI", "CubaLI", "I")
SUPPORTED = "Input, Output, " + ", ".join(LINEAR + SPIKING)
DENSE_LIMIT = 2 ** 25   # weights a dense expansion of a composed linear map may hold


def _nir():
    try:
        import nir
    except ImportError:
        raise FrontendError("source.kind 'nir' needs the nir package (pip install nir==1.0.8)") from None
    return nir


def read_graph(path):
    """``nir.read`` -> the graph with nested subgraphs flattened (names ``outer.inner``)."""
    nir = _nir()
    path = Path(path)
    try:
        graph = nir.read(path, type_check=False)
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise FrontendError(f"{path}: not a NIR graph nir {nir.version} can read ({type(e).__name__}: {first})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise FrontendError(f"{path}: holds a single {type(graph).__name__} node, not a NIRGraph")
    return graph


def _flatten(graph) -> tuple:
    """Nodes and edges of ``graph`` with every nested NIRGraph inlined (its Input/Output removed)."""
    nir = _nir()
    nodes, edges = {}, []
    entry, exit_ = {}, {}   # subgraph name -> its inner nodes fed by its Input / feeding its Output
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node)
            ins = [k for k, n in sub_nodes.items() if type(n).__name__ == "Input"]
            outs = [k for k, n in sub_nodes.items() if type(n).__name__ == "Output"]
            if len(ins) != 1 or len(outs) != 1:
                raise FrontendError(f"NIR subgraph {name!r}: needs exactly one Input and one Output, has "
                                    f"{len(ins)} and {len(outs)}")
            entry[name] = [f"{name}.{b}" for a, b in sub_edges if a == ins[0]]
            exit_[name] = [f"{name}.{a}" for a, b in sub_edges if b == outs[0]]
            for k, n in sub_nodes.items():
                if k not in (ins[0], outs[0]):
                    nodes[f"{name}.{k}"] = n
            edges += [(f"{name}.{a}", f"{name}.{b}") for a, b in sub_edges if a != ins[0] and b != outs[0]]
        else:
            nodes[name] = node
    for a, b in graph.edges:
        for src in exit_.get(a, [a]):
            for dst in entry.get(b, [b]):
                edges.append((src, dst))
    return nodes, list(dict.fromkeys(edges))


def _arr(node, name, attr) -> np.ndarray:
    a = np.asarray(getattr(node, attr), dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise FrontendError(f"NIR node {name!r} ({type(node).__name__}): {attr} contains NaN/Inf")
    return a


def _one(node, name, attr, size) -> float:
    a = np.broadcast_to(_arr(node, name, attr).reshape(-1), (size,)) if size else _arr(node, name, attr).ravel()
    if a.size and not np.all(a == a.flat[0]):
        raise FrontendError(f"NIR node {name!r} ({type(node).__name__}): per-neuron {attr} values differ; a Loihi "
                            f"population has one {attr} (split the node)")
    return float(a.flat[0])


def graph_dt(nodes: dict, spec_dt: Optional[float], metadata: dict, path) -> tuple:
    """``(dt, where it came from)`` (module docstring)."""
    if spec_dt:
        return float(spec_dt), "model.yaml source.dt"
    meta = (metadata or {}).get("dt")
    if meta is not None:
        try:
            dt = float(np.asarray(meta).ravel()[0])
        except (TypeError, ValueError, IndexError):
            raise FrontendError(f"{path}: metadata dt={meta!r} is not a number; set source.dt in model.yaml") from None
        if dt > 0:
            return dt, "graph metadata dt"
    cands = {}
    for name, node in nodes.items():
        kind = type(node).__name__
        if kind in ("LIF", "CubaLIF"):
            tau = _arr(node, name, "tau" if kind == "LIF" else "tau_mem")
            r = _arr(node, name, "r")
            with np.errstate(divide="ignore", invalid="ignore"):
                cands[name] = (np.broadcast_to(tau / r, np.broadcast(tau, r).shape), tau)
    if not cands:
        raise FrontendError(f"{path}: no dt: the graph has no LIF/CubaLIF node to read the r = tau/dt convention "
                            "from; set source.dt (seconds per step) in model.yaml")
    values = np.concatenate([c.ravel() for c, _ in cands.values()])
    dt = float(values.flat[0])
    if not (np.all(np.isfinite(values)) and dt > 0 and np.allclose(values, dt, rtol=1e-5, atol=0)):
        show = ", ".join(f"{k}: {float(np.ravel(c)[0]):.3g}" for k, (c, _) in list(cands.items())[:3])
        raise FrontendError(f"{path}: no dt: nodes disagree on tau/r ({show}); set source.dt (seconds per step) "
                            "in model.yaml")
    if not all(np.all(dt < tau) for _, tau in cands.values()):
        raise FrontendError(f"{path}: no dt: tau/r = {dt:g} is not below every tau (r <= 1 is not the r = tau/dt "
                            "convention); set source.dt (seconds per step) in model.yaml")
    return dt, "exporters' convention r = tau/dt"


# -- linear sub-graphs -------------------------------------------------------------------------------
def _pair(v) -> tuple:
    a = np.atleast_1d(np.asarray(v)).astype(int).ravel()
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def _apply(name: str, node, x):
    """One linear node on a batch ``x`` ``[b, *shape]`` (torch float64), bias included."""
    import torch
    import torch.nn.functional as F

    kind = type(node).__name__
    b = x.shape[0]
    if kind in ("Affine", "Linear"):
        w = torch.from_numpy(_arr(node, name, "weight"))
        if w.ndim != 2:
            raise FrontendError(f"NIR node {name!r} ({kind}): weight must be 2-D [out, in], got {tuple(w.shape)}")
        flat = x.reshape(b, -1)
        if flat.shape[1] != w.shape[1]:
            raise FrontendError(f"NIR node {name!r} ({kind}): takes {w.shape[1]} inputs, receives {flat.shape[1]}")
        y = flat @ w.T
        if kind == "Affine":
            y = y + torch.from_numpy(_arr(node, name, "bias")).reshape(-1)
        return y
    if kind == "Scale":
        s = torch.from_numpy(_arr(node, name, "scale"))
        try:
            return x * s if s.numel() != x[0].numel() else x * s.reshape(x.shape[1:])
        except RuntimeError:
            raise FrontendError(f"NIR node {name!r} (Scale): scale shape {tuple(s.shape)} does not fit "
                                f"{tuple(x.shape[1:])}") from None
    if kind == "Flatten":
        return x.reshape(b, -1)
    if kind in ("Conv2d", "SumPool2d", "AvgPool2d"):
        if x.ndim != 4:
            raise FrontendError(f"NIR node {name!r} ({kind}): needs a (C, H, W) input, receives {tuple(x.shape[1:])}")
        if kind == "Conv2d":
            w = torch.from_numpy(_arr(node, name, "weight"))
            pad = node.padding
            pad = pad if isinstance(pad, str) else _pair(pad)
            y = F.conv2d(x, w, stride=_pair(node.stride), padding=pad, dilation=_pair(node.dilation),
                         groups=int(node.groups))
            bias = getattr(node, "bias", None)
            if bias is not None:
                y = y + torch.from_numpy(np.asarray(bias, dtype=np.float64)).reshape(1, -1, 1, 1)
            return y
        k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
        y = F.avg_pool2d(x, k, stride=s, padding=p, count_include_pad=True)
        return y * (k[0] * k[1]) if kind == "SumPool2d" else y
    raise AssertionError(kind)


def _conv_synapse(name: str, node, gain: float):
    """A single Conv2d / pooling node as the IR's Conv (without bias)."""
    from neurocomp.ir.synapses import Conv, pooling

    kind = type(node).__name__
    if kind == "Conv2d":
        pad = node.padding
        if isinstance(pad, str):
            return None   # 'same'/'valid': leave it to the dense expansion
        return Conv(_arr(node, name, "weight") * gain, stride=_pair(node.stride), padding=_pair(pad),
                    dilation=_pair(node.dilation), groups=int(node.groups))
    return None


# -- the importer ---------------------------------------------------------------------------------
def _neuron(name: str, node, size: int, dt: float) -> dict:
    kind = type(node).__name__
    thr = np.broadcast_to(_arr(node, name, "threshold" if kind == "Threshold" else "v_threshold").reshape(-1),
                          (size,)).copy()
    if not np.all(thr > 0):
        raise FrontendError(f"NIR node {name!r} ({kind}): v_threshold must be positive, got min {thr.min():g}")
    if kind != "Threshold":
        v_reset = getattr(node, "v_reset", None)
        if v_reset is not None and np.any(np.asarray(v_reset) != 0):
            raise FrontendError(f"NIR node {name!r} ({kind}): v_reset={float(np.ravel(v_reset)[0]):g}; Loihi resets v "
                                "to 0 (and starts there): only v_reset = 0 maps")
    gain = np.ones(size)
    bias = np.zeros(size)
    if kind == "LIF":
        tau = _one(node, name, "tau", size)
        dv, du = dt / tau, 1.0
        gain = np.broadcast_to(_arr(node, name, "r").reshape(-1), (size,)) * dt / tau
        bias = np.broadcast_to(_arr(node, name, "v_leak").reshape(-1), (size,)) * dv
    elif kind == "CubaLIF":
        tau_syn, tau_mem = _one(node, name, "tau_syn", size), _one(node, name, "tau_mem", size)
        du, dv = dt / tau_syn, dt / tau_mem
        gain = (np.broadcast_to(_arr(node, name, "r").reshape(-1), (size,)) * dv
                * np.broadcast_to(_arr(node, name, "w_in").reshape(-1), (size,)) * du)
        bias = np.broadcast_to(_arr(node, name, "v_leak").reshape(-1), (size,)) * dv
    elif kind == "IF":
        du, dv = 1.0, 0.0
        gain = np.broadcast_to(_arr(node, name, "r").reshape(-1), (size,)) * dt
    else:  # Threshold
        du = dv = 1.0
    for what, x in (("dt/tau_syn", du), ("dt/tau", dv)):
        if not 0.0 <= x <= 1.0:
            raise FrontendError(f"NIR node {name!r} ({kind}): {what} = {x:.4g} > 1 at dt = {dt:g}: forward Euler "
                                "would overshoot; use a smaller dt")
    return {"kind": kind, "du": float(du), "dv": float(dv), "threshold": thr, "gain": np.asarray(gain, float),
            "bias": np.asarray(bias, float)}


def graph_to_ir(graph, name: str, timesteps: int, encoding, dt: Optional[float] = None, path="graph",
                input_shape: Optional[tuple] = None) -> tuple:
    """A NIR graph -> ``(Network, details)`` (see the module docstring)."""
    import torch

    nodes, edges = _flatten(graph)
    kinds = {k: type(n).__name__ for k, n in nodes.items()}
    for k, kind in kinds.items():
        if kind in READOUTS:
            raise FrontendError(f"NIR node {k!r} ({kind}) is a non-spiking membrane readout; neurocomp's populations "
                                "spike and its targets read out spike counts: use a LIF/CubaLIF output")
        if kind not in SPIKING + LINEAR + ("Input", "Output"):
            raise FrontendError(f"NIR node {k!r}: type {kind} cannot be mapped to Loihi; supported: {SUPPORTED}")
    ins = [k for k, kind in kinds.items() if kind == "Input"]
    outs = [k for k, kind in kinds.items() if kind == "Output"]
    if len(ins) != 1 or len(outs) != 1:
        raise FrontendError(f"{path}: needs exactly one Input and one Output node, has {len(ins)} and {len(outs)}")
    preds: Dict[str, List[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise FrontendError(f"{path}: edge ({a!r}, {b!r}) names a node the graph does not have")
        preds[b].append(a)
    dt_value, dt_from = graph_dt(nodes, dt, getattr(graph, "metadata", {}), path)
    fixed, why_not = _fixed_from_metadata(graph, nodes, edges, preds, kinds, dt_value, name, timesteps, encoding)
    if fixed is not None:
        return fixed, {"dt": dt_value, "dt_from": dt_from, "fixed_point": True,
                       "from": "neurocomp export: the integers in the node metadata (the float parameters match them)"}

    in_name = ins[0]
    shape = nodes[in_name].input_type.get("input") if isinstance(nodes[in_name].input_type, dict) else None
    shape = tuple(int(d) for d in np.atleast_1d(shape)) if shape is not None else None
    if input_shape is not None and (shape is None or int(np.prod(shape)) != int(np.prod(input_shape))):
        if shape is not None:
            raise FrontendError(f"{path}: Input {in_name!r} has shape {list(shape)}, the dataset's samples "
                                f"{list(input_shape)}")
        shape = tuple(input_shape)
    if shape is None:
        raise FrontendError(f"{path}: Input {in_name!r} declares no shape")
    shapes = {in_name: shape}
    spiking = [k for k, kind in kinds.items() if kind in SPIKING]
    if not spiking:
        raise FrontendError(f"{path}: the graph has no spiking node ({', '.join(SPIKING)})")

    def sources_of(target) -> tuple:
        """The linear sub-DAG feeding ``target``: (its nodes in evaluation order, the sources it reads)."""
        order, srcs, seen, active = [], [], set(), set()

        def visit(k):
            if k in active:
                raise FrontendError(f"NIR node {k!r}: a loop through linear nodes only (no spiking node to delay it)")
            if k in seen:
                return
            active.add(k)
            for p in preds[k]:
                if kinds[p] in LINEAR:
                    visit(p)
                elif kinds[p] in SPIKING or p == in_name:
                    if p not in srcs:
                        srcs.append(p)
                else:
                    raise FrontendError(f"NIR node {k!r}: fed by the {kinds[p]} node {p!r}")
            active.discard(k)
            seen.add(k)
            order.append(k)

        for p in preds[target]:
            if kinds[p] in LINEAR:
                visit(p)
            elif p not in srcs:
                srcs.append(p)
        return order, srcs

    def evaluate(target, order, values: dict):
        """Run the linear sub-DAG on ``values`` (source -> batch); a source given as None (shape not known
        yet) contributes nothing, and a node reached by such sources only yields None."""
        cache = {}

        def total(k):
            xs = [values.get(p) if p in values else cache.get(p) for p in preds[k]]
            xs = [x for x in xs if x is not None]
            if not xs:
                return None
            out = xs[0]
            for other in xs[1:]:
                out = out + other
            return out

        for k in order:
            x = total(k)
            cache[k] = None if x is None else _apply(k, nodes[k], x)
        return total(target)

    # shapes of every spiking node, in an order where the sources of its feed-forward inputs come first
    plans = {k: sources_of(k) for k in spiking}
    pending = list(spiking)
    while pending:
        progress = False
        for k in list(pending):
            order, srcs = plans[k]
            known = [s for s in srcs if s in shapes]
            if not known:
                continue
            values = {s: torch.zeros((1,) + shapes[s], dtype=torch.float64) if s in shapes else None for s in srcs}
            out = evaluate(k, order, values)
            if out is None:
                continue
            node = nodes[k]
            size = int(np.prod(out.shape[1:]))
            param = np.asarray(getattr(node, "threshold" if kinds[k] == "Threshold" else "v_threshold"))
            if param.size not in (1, size):
                raise FrontendError(f"NIR node {k!r} ({kinds[k]}): has {param.size} neurons, its input has {size} values")
            shapes[k] = tuple(out.shape[1:])
            pending.remove(k)
            progress = True
        if not progress:
            raise FrontendError(f"{path}: spiking nodes {', '.join(pending)} are not reachable from the Input")

    out_preds = preds[outs[0]]
    if len(out_preds) != 1 or kinds[out_preds[0]] not in SPIKING:
        what = ", ".join(f"{p} ({kinds[p]})" for p in out_preds) or "nothing"
        raise FrontendError(f"{path}: Output {outs[0]!r} is fed by {what}; neurocomp reads out one spiking node "
                            "(a linear readout of spikes is not a population)")
    output = out_preds[0]

    params = {k: _neuron(k, nodes[k], int(np.prod(shapes[k])), dt_value) for k in spiking}
    pops, projs, details = [], [], {"dt": dt_value, "dt_from": dt_from, "discretisation": "forward Euler",
                                    "populations": []}
    if why_not:
        details["neurocomp_metadata_ignored"] = why_not
    for k in spiking:
        prm, size = params[k], int(np.prod(shapes[k]))
        order, srcs = plans[k]
        zeros = {s: torch.zeros((1,) + shapes[s], dtype=torch.float64) for s in srcs}
        bias_in = evaluate(k, order, zeros).reshape(-1).numpy()
        vth = float(prm["threshold"].max())
        row = prm["gain"] * vth / prm["threshold"]       # per-neuron gain and threshold folded into the rows
        if np.any(bias_in != 0) and prm["du"] != 1.0:
            raise FrontendError(f"NIR node {k!r} ({prm['kind']}): an Affine/Conv bias feeds its synaptic current "
                                "(tau_syn != dt), which Loihi cannot represent; move it to v_leak or drop it")
        bias = (prm["bias"] * vth / prm["threshold"]) + bias_in * row
        for s in srcs:
            between = _reached_from(s, order, preds)     # the linear nodes on the paths s -> k
            node0 = between[0] if len(between) == 1 else None
            single = (node0 is not None and preds[node0] == [s] and node0 in preds[k]
                      and kinds[node0] in ("Conv2d", "SumPool2d", "AvgPool2d") and np.all(row == row[0])
                      and sum(node0 in preds[x] for x in preds) == 1)
            syn = _conv_synapse(node0, nodes[node0], float(row[0])) if single else None
            if syn is None and single and kinds[node0] in ("SumPool2d", "AvgPool2d"):
                from neurocomp.ir.synapses import pooling
                nd = nodes[node0]
                syn = pooling(shapes[s][0], _pair(nd.kernel_size), _pair(nd.stride), _pair(nd.padding),
                              mode="sum" if kinds[node0] == "SumPool2d" else "avg", scale=float(row[0]))
            if syn is None:
                n_src = int(np.prod(shapes[s]))
                if n_src * size > DENSE_LIMIT:
                    raise FrontendError(f"NIR node {k!r}: the linear map from {s!r} ({n_src} -> {size}) is too large to "
                                        "expand into a dense matrix; feed it through a single Conv2d or pooling node")
                values = {p: torch.zeros((n_src,) + shapes[p], dtype=torch.float64) for p in srcs}
                values[s] = torch.eye(n_src, dtype=torch.float64).reshape((n_src,) + shapes[s])
                m = evaluate(k, order, values).reshape(n_src, -1).numpy() - bias_in[None, :]
                syn = Dense(m.T * row[:, None])
            only_path = node0 is not None and all(node0 not in _reached_from(o, order, preds) for o in srcs if o != s)
            pname = node0 if only_path else f"{s}->{k}"
            projs.append(Projection(pname, s, k, syn))
        pops.append(Population(k, LIF(size, du=prm["du"], dv=prm["dv"], vth=vth, bias=bias), shape=shapes[k]))
        details["populations"].append({"node": k, "type": prm["kind"], "du": prm["du"], "dv": prm["dv"], "vth": vth,
                                       "gain": float(prm["gain"].mean())})
    net = Network(name=name, input=Input(in_name, int(np.prod(shape)), encoding, shape=shape), populations=pops,
                  projections=projs, output=output, timesteps=timesteps)
    _check_timing(net, path)
    return _ordered(net), details


def _meta(node) -> dict:
    return getattr(node, "metadata", None) or {}


def _fixed_from_metadata(graph, nodes, edges, preds, kinds, dt, name, timesteps, encoding):
    """A graph written by :mod:`neurocomp.export.nir` -> ``(its fixed-point network, None)``, when every
    node still carries neurocomp's integers and its float parameters are exactly what those integers
    give at ``dt``; else ``(None, why not)`` (``why`` None for graphs that never had them)."""
    from neurocomp.export.nir import META_VERSION, neuron_floats
    from neurocomp.ir import loihi as fxp
    from neurocomp.ir.synapses import LoihiConv

    gmeta = getattr(graph, "metadata", None) or {}
    if "neurocomp_version" not in gmeta:
        return None, None
    if int(np.asarray(gmeta["neurocomp_version"]).ravel()[0]) != META_VERSION:
        return None, f"neurocomp metadata version {gmeta['neurocomp_version']} (this neurocomp reads {META_VERSION})"
    succ = {k: [b for a, b in edges if a == k] for k in nodes}

    def label(k):
        v = _meta(nodes[k]).get("neurocomp_name", k)
        return v.decode() if isinstance(v, bytes) else str(v)

    def i(meta, key):
        return int(np.asarray(meta[key]).ravel()[0])

    in_name = next(k for k, kind in kinds.items() if kind == "Input")
    try:
        pops, projs = [], []
        for k, kind in kinds.items():
            m = _meta(nodes[k])
            if kind in SPIKING:
                arr = np.asarray(nodes[k].v_threshold)
                size = int(arr.size)
                neuron = LoihiLIF(size, du=i(m, "neurocomp_du"), dv=i(m, "neurocomp_dv"), vth=i(m, "neurocomp_vth"),
                                  bias_mant=np.asarray(m["neurocomp_bias_mant"]).reshape(-1),
                                  bias_exp=i(m, "neurocomp_bias_exp"))
                want_kind, want = neuron_floats(neuron, dt)
                if want_kind != kind or any(not np.array_equal(np.asarray(getattr(nodes[k], a), float).reshape(-1),
                                                               v.reshape(-1)) for a, v in want.items()):
                    return None, f"node {k!r}: its float parameters no longer match its neurocomp integers at dt={dt:g}"
                pops.append(Population(label(k), neuron, shape=arr.shape if arr.ndim > 1 else None))
            elif kind in LINEAR:
                if len(preds[k]) != 1 or len(succ[k]) != 1:
                    return None, f"node {k!r}: not a single projection"
                w = np.asarray(m["neurocomp_weight"])
                if kind == "Linear":
                    syn = LoihiDense(w, i(m, "neurocomp_num_weight_bits"), i(m, "neurocomp_weight_exp"),
                                     i(m, "neurocomp_sign_mode"))
                    floats = fxp.effective_weights(syn).astype(np.float64) * 2.0 ** syn.weight_exp
                elif kind == "Conv2d":
                    nd = nodes[k]
                    syn = LoihiConv(w, stride=_pair(nd.stride), padding=_pair(nd.padding),
                                    dilation=_pair(nd.dilation), groups=int(nd.groups))
                    floats = w.astype(np.float64)
                else:
                    return None, f"node {k!r}: a {kind} node"
                if not np.array_equal(np.asarray(nodes[k].weight, float), floats):
                    return None, f"node {k!r}: its weights no longer match its neurocomp integers"
                projs.append(Projection(label(k), label(preds[k][0]) if preds[k][0] != in_name else label(in_name),
                                        label(succ[k][0]), syn))
    except (KeyError, ValueError, TypeError) as e:
        return None, f"incomplete neurocomp metadata ({type(e).__name__}: {e})"
    shape = tuple(int(d) for d in np.atleast_1d(nodes[in_name].input_type["input"]))
    out = next(k for k, kind in kinds.items() if kind == "Output")
    if len(preds[out]) != 1:
        return None, "the Output is not fed by one population"
    steps = int(np.asarray(gmeta.get("neurocomp_timesteps", timesteps)).ravel()[0])
    del steps   # the spec's timesteps win; the file's are informative
    net = Network(name=name, input=Input(label(in_name), int(np.prod(shape)), encoding, shape=shape),
                  populations=pops, projections=projs, output=label(preds[out][0]), timesteps=timesteps)
    return _ordered(net), None


def _reached_from(src: str, order: list, preds: dict) -> list:
    """The nodes of ``order`` (a linear sub-DAG in evaluation order) that ``src`` feeds."""
    reach = {src}
    for n in order:
        if any(p in reach for p in preds[n]):
            reach.add(n)
    return [n for n in order if n in reach]


def _check_timing(net: Network, path) -> None:
    """Feed-forward edges (those on no cycle) carry the same step's spikes: each must go from layer ``d`` to
    ``d + 1`` (longest path from the input); edges on a cycle carry the previous step's: Lava matches that
    only within one layer (a self- or lateral connection)."""
    succ: dict = {}
    for p in net.projections:
        succ.setdefault(p.source, set()).add(p.target)

    def reaches(a, b) -> bool:
        seen, todo = set(), [a]
        while todo:
            x = todo.pop()
            if x == b:
                return True
            if x not in seen:
                seen.add(x)
                todo.extend(succ.get(x, ()))
        return False

    cyclic = {p.name for p in net.projections if reaches(p.target, p.source)}
    depth = {net.input.name: 0}
    ff = [p for p in net.projections if p.name not in cyclic]
    for _ in range(len(net.populations) + 1):
        for p in ff:
            if p.source in depth:
                depth[p.target] = max(depth.get(p.target, 0), depth[p.source] + 1)
    for p in ff:
        if p.source in depth and depth[p.target] != depth[p.source] + 1:
            raise FrontendError(f"{path}: edge {p.source!r} -> {p.target!r} skips {depth[p.target] - depth[p.source] - 1} "
                                "layer(s); Lava's one-step delay per projection would deliver it at another step "
                                "than the source framework")
    for p in net.projections:
        if p.name in cyclic and depth.get(p.source) != depth.get(p.target):
            raise FrontendError(f"{path}: recurrent edge {p.source!r} -> {p.target!r} connects different layers; on Lava "
                                "it would arrive at another step than the source framework delivers it (only "
                                "same-layer recurrence keeps the timing)")


def _ordered(net: Network) -> Network:
    """Populations by depth (then name order of the file), so reports read input to output."""
    d = net.depths()
    pops = sorted(net.populations, key=lambda p: d.get(p.name, 1 << 30))
    return net.replace(populations=pops)


def import_network(spec, input_shape: tuple):
    """Front-end entry point (:mod:`neurocomp.frontends`): the spec's NIR file -> float IR."""
    from neurocomp.frontends import Imported
    from neurocomp.spec import input_encoding

    src = spec.source
    path = spec.resolve(src.graph)
    graph = read_graph(path)
    net, details = graph_to_ir(graph, spec.name, spec.input.timesteps, input_encoding(spec), dt=src.dt, path=path,
                               input_shape=tuple(input_shape))
    return Imported(net, details)
