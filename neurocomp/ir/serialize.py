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

from neurocomp.ir.encodings import LatencyEncoding, RateEncoding
from neurocomp.ir.graph import Input, Network, Population, Projection
from neurocomp.ir.neurons import LIF, LoihiLIF
from neurocomp.ir.plasticity import STDP, LoihiLearning, SupervisedDepression
from neurocomp.ir.synapses import Conv, Dense, LoihiConv, LoihiDense

IR_VERSION = 1

NODE_TYPES = {cls.__name__: cls for cls in (LIF, LoihiLIF, Dense, LoihiDense, RateEncoding, LatencyEncoding,
                                             STDP, SupervisedDepression, LoihiLearning, Conv, LoihiConv)}


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


def _node_from_json(d: dict, arrays) -> object:
    cls = NODE_TYPES[d["type"]]
    kw = {}
    for k, v in d.items():
        if k == "type":
            continue
        kw[k] = np.asarray(arrays[v["array"]]) if isinstance(v, dict) and "array" in v else v
    return cls(**kw)


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


def load_network(path) -> Network:
    with np.load(Path(path), allow_pickle=False) as z:
        doc = json.loads(bytes(z["__network__"]).decode())
        if doc.get("ir_version") != IR_VERSION:
            raise ValueError(f"{path}: IR version {doc.get('ir_version')}, this neurocomp reads {IR_VERSION}")
        arrays = {k: z[k] for k in z.files}
    inp = doc["input"]
    return Network(
        name=doc["name"],
        input=Input(inp["name"], inp["size"], _node_from_json(inp["encoding"], arrays), shape=inp.get("shape")),
        populations=[Population(p["name"], _node_from_json(p["neuron"], arrays), shape=p.get("shape"))
                     for p in doc["populations"]],
        projections=[Projection(p["name"], p["source"], p["target"], _node_from_json(p["synapse"], arrays),
                                _node_from_json(p["plasticity"], arrays) if p.get("plasticity") else None)
                     for p in doc["projections"]],
        output=doc["output"],
        timesteps=doc["timesteps"],
    )
