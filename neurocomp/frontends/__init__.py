"""Front ends: each turns one source kind into a float :class:`neurocomp.ir.Network` and does nothing
else (no simulation, no quantisation). Nothing downstream knows where a network came from.

:data:`FRONTENDS` maps ``source.kind`` in model.yaml to the module that imports it; every such
module has ``import_network(spec, input_shape) -> Imported``. ``input_shape`` is one sample's shape
from the dataset (``(784,)``, ``(1, 28, 28)``), for sources that do not declare their input.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from neurocomp.errors import FrontendError
from neurocomp.ir import Network

FRONTENDS = {
    "torch": "neurocomp.frontends.torch",
    "slayer": "neurocomp.frontends.torch",     # slayer blocks are nn.Modules: the torch walker maps them
    "brian2": "neurocomp.frontends.brian2",
    "snntorch": "neurocomp.frontends.snntorch",
    "nir": "neurocomp.frontends.nir",
    "netx": "neurocomp.frontends.netx",
    "ann": "neurocomp.frontends.ann",          # a ReLU network converted to integrate-and-fire neurons
}


@dataclass(frozen=True)
class Imported:
    """What a front end hands the pipeline: the float network and what it decided on the way
    (``details``: a JSON-able mapping report shown in the compile report, e.g. Brian2's per-group
    decays and units); ``stimulus``: the source's own input spikes ``[steps, n_in]`` when it carries
    them (a Brian2 ``SpikeGeneratorGroup``), played instead of a dataset when the spec asks for no
    learning run."""

    network: Network
    details: dict = field(default_factory=dict)
    stimulus: Optional[np.ndarray] = None


def import_network(spec, input_shape: tuple) -> Imported:
    """The spec's source -> :class:`Imported`, through the front end registered for its kind."""
    kind = spec.source.kind
    if kind not in FRONTENDS:
        raise FrontendError(f"{spec.path}: source.kind: got {kind!r}, allowed: {', '.join(sorted(FRONTENDS))}")
    return importlib.import_module(FRONTENDS[kind]).import_network(spec, tuple(input_shape))
