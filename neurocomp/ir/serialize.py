"""A network as one ``.npz`` file: the structure as JSON (``__network__``), every array beside it.

Node classes are looked up by name in :data:`NODE_TYPES`; a node module adds its classes there.
Writes are atomic; reads check the version and name what is missing or malformed.
"""
from __future__ import annotations

import io
import json
from dataclasses import fields
from pathlib import Path

import numpy as np

from neurocomp.errors import BuildError, one_line
from neurocomp.ir.encodings import CurrentEncoding, LatencyEncoding, RateEncoding, SinusoidEncoding
from neurocomp.ir.graph import Input, Network, Population, Projection
from neurocomp.ir.neurons import ATRLIF, LIF, LoihiATRLIF, LoihiLIF
from neurocomp.ir.plasticity import STDP, LoihiLearning, SupervisedDepression
from neurocomp.ir.synapses import Conv, Dense, LoihiConv, LoihiDense

IR_VERSION = 1

NODE_TYPES = {cls.__name__: cls for cls in (LIF, LoihiLIF, Dense, LoihiDense, RateEncoding, LatencyEncoding,
                                             STDP, SupervisedDepression, LoihiLearning, Conv, LoihiConv,
                                             CurrentEncoding, SinusoidEncoding, ATRLIF, LoihiATRLIF)}


def _node_to_json(node, arrays: dict, prefix: str) -> dict:
    out = {"type": type(node).__name__}
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, np.ndarray):
            key = f"{prefix}/{f.name}"
            arrays[key] = value
            out[f.name] = {"array": key}
        else:
            out[f.name] = list(value) if isinstance(value, tuple) and f.name != "terms" else value
    return out


class NetworkFileError(BuildError, ValueError):
    """A network file that is missing, unreadable, truncated, corrupted or malformed (names the file)."""


class _Malformed(Exception):
    """Internal: what is wrong and where inside the structure (wrapped with the file name)."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _get(d, key: str, types, where: str, optional: bool = False):
    if not isinstance(d, dict):
        raise _Malformed(f"{where}: expected an object, got {type(d).__name__}")
    if key not in d or (optional and d[key] is None):
        if optional:
            return None
        raise _Malformed(f"{where}: missing {key!r}")
    value = d[key]
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise _Malformed(f"{where}.{key}: expected {' or '.join(t.__name__ for t in types)}, "
                         f"got {type(value).__name__}")
    return value


def _node_from_json(d: dict, arrays, where: str = "node") -> object:
    kind = _get(d, "type", str, where)
    cls = NODE_TYPES.get(kind)
    if cls is None:
        raise _Malformed(f"{where}: unknown node type {kind!r} (known: {', '.join(sorted(NODE_TYPES))})")
    known = {f.name for f in fields(cls)}
    kw = {}
    for k, v in d.items():
        if k == "type":
            continue
        if k not in known:
            raise _Malformed(f"{where} ({kind}): unknown field {k!r}")
        if isinstance(v, dict) and "array" in v:
            key = v["array"]
            if not isinstance(key, str) or key not in arrays:
                raise _Malformed(f"{where} ({kind}).{k}: array {key!r} is missing from the file")
            arr = np.asarray(arrays[key])
            if arr.dtype.kind not in "biuf":
                raise _Malformed(f"{where} ({kind}).{k}: array {key!r} holds {arr.dtype}, expected numbers")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise _Malformed(f"{where} ({kind}).{k}: array {key!r} holds NaN/Inf")
            kw[k] = arr
        else:
            kw[k] = v
    size = kw.get("size")
    if isinstance(size, int) and not isinstance(size, bool):  # per-neuron arrays hold one value per neuron
        for k, v in kw.items():
            if isinstance(v, np.ndarray) and v.ndim > 0 and v.shape != (size,):
                raise _Malformed(f"{where} ({kind}).{k}: array {d[k]['array']!r} has shape {v.shape}, "
                                 f"expected ({size},)")
    try:
        return cls(**kw)
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as e:
        raise _Malformed(f"{where} ({kind}): {_first_line(e)}") from None


def network_to_bytes(net: Network) -> bytes:
    arrays: dict = {}
    doc = {
        "ir_version": IR_VERSION,
        "name": net.name,
        "timesteps": net.timesteps,
        "output": net.output,
        "input": {"name": net.input.name, "size": net.input.size, "shape": list(net.input.shape),
                  "encoding": _node_to_json(net.input.encoding, arrays, "input")},
        "populations": [{"name": p.name, "shape": list(p.shape),
                         "neuron": _node_to_json(p.neuron, arrays, f"pop/{p.name}")}
                        for p in net.populations],
        "projections": [{"name": p.name, "source": p.source, "target": p.target,
                         "synapse": _node_to_json(p.synapse, arrays, f"proj/{p.name}"),
                         **({"plasticity": _node_to_json(p.plasticity, arrays, f"plast/{p.name}")}
                            if p.plasticity is not None else {})}
                        for p in net.projections],
    }
    buf = io.BytesIO()
    np.savez_compressed(buf, __network__=np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8), **arrays)
    return buf.getvalue()


def save_network(net: Network, path) -> None:
    """Write ``net`` to one ``.npz`` file (structure as JSON inside it) — atomically."""
    from neurocomp.io import atomic_write_bytes
    atomic_write_bytes(Path(path), network_to_bytes(net))


def _read_arrays(path: Path) -> dict:
    """Every entry of the ``.npz`` (read in full, so a truncated or bit-flipped member fails here)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NetworkFileError(f"{path}: missing; compile the build again") from None
    except OSError as e:
        raise NetworkFileError(f"{path}: cannot read ({e.strerror})") from None
    if not path.is_file():
        raise NetworkFileError(f"{path}: not a file")
    if size == 0:
        raise NetworkFileError(f"{path}: empty file (0 bytes); compile the build again")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if "__network__" not in names:
                raise NetworkFileError(f"{path}: no '__network__' entry; not a neurocomp network file")
            return {k: z[k] for k in names}
    except NetworkFileError:
        raise
    except Exception as e:  # zipfile, zlib, numpy's format reader and OSError all have their own kinds
        raise NetworkFileError(f"{path}: unreadable, truncated or corrupted ({type(e).__name__}: "
                               f"{_first_line(e)[:120]}); compile the build again") from None


def _network_from_doc(doc: dict, arrays: dict) -> Network:
    inp = _get(doc, "input", dict, "network")
    pops = _get(doc, "populations", list, "network")
    projs = _get(doc, "projections", list, "network")
    timesteps = _get(doc, "timesteps", int, "network")
    if timesteps < 1:
        raise _Malformed(f"network.timesteps: {timesteps}, must be >= 1")
    input_layer = Input(_get(inp, "name", str, "input"), _get(inp, "size", int, "input"),
                        _node_from_json(_get(inp, "encoding", dict, "input"), arrays, "input.encoding"),
                        shape=_get(inp, "shape", list, "input", optional=True))
    populations = []
    for i, p in enumerate(pops):
        name = _get(p, "name", str, f"populations[{i}]")
        populations.append(Population(name, _node_from_json(_get(p, "neuron", dict, f"population {name!r}"),
                                                            arrays, f"population {name!r}"),
                                      shape=_get(p, "shape", list, f"population {name!r}", optional=True)))
    projections = []
    for i, p in enumerate(projs):
        name = _get(p, "name", str, f"projections[{i}]")
        where = f"projection {name!r}"
        plast = _get(p, "plasticity", dict, where, optional=True)
        projections.append(Projection(name, _get(p, "source", str, where), _get(p, "target", str, where),
                                      _node_from_json(_get(p, "synapse", dict, where), arrays, f"{where} synapse"),
                                      _node_from_json(plast, arrays, f"{where} plasticity") if plast else None))
    return Network(name=_get(doc, "name", str, "network"), input=input_layer, populations=populations,
                   projections=projections, output=_get(doc, "output", str, "network"), timesteps=timesteps)


def load_network(path) -> Network:
    """Read a network written by :func:`save_network`. Anything wrong with the file — missing, empty,
    truncated, bit-flipped, an entry or key missing, an array of the wrong shape, an unknown node type —
    raises :class:`NetworkFileError` (a :class:`~neurocomp.errors.BuildError`, exit 2) naming the file
    and what is wrong."""
    path = Path(path)
    arrays = _read_arrays(path)
    raw = arrays.pop("__network__")
    try:
        doc = json.loads(bytes(np.asarray(raw, dtype=np.uint8).ravel()).decode("utf-8"))
    except (ValueError, TypeError, OverflowError) as e:
        raise NetworkFileError(f"{path}: its '__network__' structure is not valid JSON ({_first_line(e)[:80]})") from None
    if not isinstance(doc, dict):
        raise NetworkFileError(f"{path}: its '__network__' structure must be an object, got {type(doc).__name__}")
    if doc.get("ir_version") != IR_VERSION:
        raise NetworkFileError(f"{path}: IR version {doc.get('ir_version')!r}, this neurocomp reads {IR_VERSION}")
    try:
        return _network_from_doc(doc, arrays)
    except _Malformed as e:
        raise NetworkFileError(one_line(f"{path}: {e}")) from None
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as e:  # Input/Population/Network checks
        raise NetworkFileError(one_line(f"{path}: {_first_line(e)}")) from None
