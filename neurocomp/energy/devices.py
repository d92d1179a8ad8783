"""Device descriptors: the ``energy:`` section of ``targets/*.yaml`` (see the header of
``targets/loihi.yaml``), validated; and where a network sits on each neuromorphic device.

Every figure is ``{value, unit, source}``; :func:`load_device` names the file and field of anything
missing, negative or unsourced (:class:`~neurocomp.errors.TargetError`, exit 2). A neuromorphic
device's ``mesh`` gives its chip and tile geometry (:meth:`Device.mesh`); the placement itself is
:mod:`neurocomp.passes.place`'s (:func:`device_placement`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from neurocomp.errors import NeurocompError, TargetError
from neurocomp.ir import Network
from neurocomp.passes.place import Mesh, Placement, map_network, placement_from_cores, sequential_placement

NEUROMORPHIC, CONVENTIONAL = "neuromorphic", "conventional"

#: the figures each device class must give (``energy.<key>: {value, unit, source}``)
NEUROMORPHIC_FIGURES = (
    "synop", "synop_time", "neuron_update_active", "neuron_update_inactive", "neuron_update_active_time",
    "neuron_update_inactive_time", "learning_update", "learning_update_time", "spike_within_tile",
    "hop_ew", "hop_ns", "static_power")
MESH_FIGURES = ("cores_per_chip", "neurons_per_core", "cores_per_tile", "tiles_x", "tiles_y")
MESH_FROM_LIMITS = ("cores_per_chip", "neurons_per_core")  # taken from ``limits:`` when the mesh omits them
CONVENTIONAL_FIGURES = ("mac", "neuron_update", "arithmetic_mac", "active_power", "idle_power")
GPU_LATENCY_FIGURES = ("kernel_launch", "kernels_per_layer", "transfers")
PROCESSORS = ("gpu", "cpu")

#: ``--baseline`` shorthands -> descriptor names; any conventional descriptor name or .yaml path also works
BASELINE_DEVICES = {"gpu": "gpu-titan-black", "cpu": "cpu-i7-4960x"}
DEFAULT_DEVICES = ("loihi", "loihi2")


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class Device:
    """A validated ``energy:`` section. ``figures`` is flat: ``"synop"``, ``"mesh.tiles_x"``,
    ``"barrier_sync_time.min"``, ``"latency_model.kernel_launch"``..."""

    name: str
    description: str
    device_class: str
    path: str
    figures: Dict[str, Figure]
    processor: Optional[str] = None

    def __getitem__(self, key: str) -> float:
        return self.figures[key].value

    def has(self, key: str) -> bool:
        return key in self.figures

    def sources(self) -> Dict[str, str]:
        return {f"{self.name}.{k}": f.source for k, f in self.figures.items()}

    def mesh(self) -> Mesh:
        """A neuromorphic device's chip and tile geometry (``energy.mesh``)."""
        return Mesh(cores_per_chip=int(self["mesh.cores_per_chip"]), cores_per_tile=int(self["mesh.cores_per_tile"]),
                    tiles_x=int(self["mesh.tiles_x"]))


def energy_devices() -> List[str]:
    """Names of the descriptors in ``targets/`` that carry an energy section (for error messages)."""
    from neurocomp.targets import TARGETS_DIR
    out = []
    for p in sorted(TARGETS_DIR.glob("*.yaml")):
        try:
            doc = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("energy"), dict):
            out.append(p.stem)
    return out


def _read_descriptor(name_or_path: str) -> Tuple[dict, str]:
    """The raw descriptor (``inherits:`` merged) and the file it came from."""
    from neurocomp.targets import descriptor_path, is_descriptor_path, load_descriptor
    s = str(name_or_path)
    if is_descriptor_path(s):
        return load_descriptor(s), s
    if not descriptor_path(s).is_file():
        raise TargetError(f"unknown device {s!r}; devices with an energy table: {', '.join(energy_devices())} "
                          "(or a path to a .yaml descriptor)")
    doc = load_descriptor(s)
    return doc, str(doc.get("_path", descriptor_path(s)))


def _number(path: str, key: str, node: Any, field_name: str = "value") -> float:
    v = node.get(field_name) if isinstance(node, dict) else None
    if v is None:
        raise TargetError(f"{path}: energy.{key}.{field_name}: missing (each figure is {{value, unit, source}})")
    if isinstance(v, str):  # PyYAML reads '81e-12' (no decimal point) as a string
        try:
            v = float(v)
        except ValueError:
            raise TargetError(f"{path}: energy.{key}.{field_name}: must be a number, got {v!r}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TargetError(f"{path}: energy.{key}.{field_name}: must be a number, got {v!r}")
    if not math.isfinite(v) or v < 0:
        raise TargetError(f"{path}: energy.{key}.{field_name}: must be a finite number >= 0, got {v!r}")
    return float(v)


def _figure(path: str, section: dict, key: str, prefix: str = "", positive_int: bool = False) -> Figure:
    full = f"{prefix}{key}"
    node = section.get(key)
    if node is None:
        raise TargetError(f"{path}: energy.{full}: missing (each figure is {{value, unit, source}})")
    if not isinstance(node, dict):
        raise TargetError(f"{path}: energy.{full}: must be a mapping {{value, unit, source}}, got {node!r}")
    value = _number(path, full, node)
    if positive_int and (value != int(value) or value < 1):
        raise TargetError(f"{path}: energy.{full}.value: must be a positive integer, got {node.get('value')!r}")
    source = node.get("source")
    if not isinstance(source, str) or not source.strip():
        raise TargetError(f"{path}: energy.{full}.source: missing; every figure needs its source")
    return Figure(value, str(node.get("unit", "")), source.strip())


def load_device(name_or_path: str) -> Device:
    """Read and validate a device's ``energy:`` section (by descriptor name or .yaml path)."""
    doc, path = _read_descriptor(name_or_path)
    name = str(doc.get("name", name_or_path))
    energy = doc.get("energy")
    if energy is None:
        raise TargetError(f"{path}: energy: missing; {name!r} has no energy table "
                          f"(devices with one: {', '.join(energy_devices())})")
    if not isinstance(energy, dict):
        raise TargetError(f"{path}: energy: must be a mapping")
    cls = energy.get("device_class")
    if cls not in (NEUROMORPHIC, CONVENTIONAL):
        raise TargetError(f"{path}: energy.device_class: {cls!r}; allowed: {NEUROMORPHIC}, {CONVENTIONAL}")
    figures: Dict[str, Figure] = {}
    processor = None
    if cls == NEUROMORPHIC:
        for key in NEUROMORPHIC_FIGURES:
            figures[key] = _figure(path, energy, key)
        mesh = energy.get("mesh")
        if not isinstance(mesh, dict):
            raise TargetError(f"{path}: energy.mesh: missing (core and tile geometry: {', '.join(MESH_FIGURES)})")
        limits = doc.get("limits") if isinstance(doc.get("limits"), dict) else {}
        for key in MESH_FIGURES:
            if key not in mesh and key in MESH_FROM_LIMITS and key in limits:
                # one home per number: a run target's core limits (passes/place.py) serve the mesh too
                fig = _figure(path, limits, key, positive_int=True)
                figures[f"mesh.{key}"] = Figure(fig.value, fig.unit, f"limits.{key}: {fig.source}")
                continue
            figures[f"mesh.{key}"] = _figure(path, mesh, key, "mesh.", positive_int=True)
        geometry = figures["mesh.cores_per_tile"].value * figures["mesh.tiles_x"].value * figures["mesh.tiles_y"].value
        if geometry < figures["mesh.cores_per_chip"].value:
            raise TargetError(f"{path}: energy.mesh: cores_per_tile x tiles_x x tiles_y = {geometry:g} is less "
                              f"than cores_per_chip = {figures['mesh.cores_per_chip'].value:g}")
        barrier = energy.get("barrier_sync_time")
        if not isinstance(barrier, dict):
            raise TargetError(f"{path}: energy.barrier_sync_time: missing ({{min, max, tiles_max, unit, source}})")
        src = barrier.get("source")
        if not isinstance(src, str) or not src.strip():
            raise TargetError(f"{path}: energy.barrier_sync_time.source: missing; every figure needs its source")
        for k in ("min", "max", "tiles_max"):
            figures[f"barrier_sync_time.{k}"] = Figure(_number(path, "barrier_sync_time", barrier, k),
                                                       str(barrier.get("unit", "s") if k != "tiles_max" else "tiles"),
                                                       src.strip())
        if figures["barrier_sync_time.max"].value < figures["barrier_sync_time.min"].value:
            raise TargetError(f"{path}: energy.barrier_sync_time: max < min")
        if figures["barrier_sync_time.tiles_max"].value < 1:
            raise TargetError(f"{path}: energy.barrier_sync_time.tiles_max: must be >= 1")
    else:
        for key in CONVENTIONAL_FIGURES:
            figures[key] = _figure(path, energy, key)
        processor = energy.get("processor")
        if processor not in PROCESSORS:
            raise TargetError(f"{path}: energy.processor: {processor!r}; allowed: {', '.join(PROCESSORS)}")
        if figures["idle_power"].value > figures["active_power"].value:
            raise TargetError(f"{path}: energy.idle_power: {figures['idle_power'].value:g} W exceeds "
                              f"active_power {figures['active_power'].value:g} W")
        lat = energy.get("latency_model")
        if processor == "gpu" and not isinstance(lat, dict):
            raise TargetError(f"{path}: energy.latency_model: missing (a GPU baseline needs "
                              f"{', '.join(GPU_LATENCY_FIGURES)} to model latency when no GPU is present)")
        if isinstance(lat, dict):
            for key in GPU_LATENCY_FIGURES:
                figures[f"latency_model.{key}"] = _figure(path, lat, key, "latency_model.")
    return Device(name=name, description=str(doc.get("description", "")), device_class=cls, path=path,
                  figures=figures, processor=processor)



def resolve_devices(devices: Sequence[str], baseline: str) -> Tuple[List[Device], Dict[str, Device]]:
    """Load and check the neuromorphic ``devices`` and the baselines: the chosen one first, then the other
    shorthands (``gpu``, ``cpu``) so the report can compare all of them."""
    if not devices:
        raise TargetError(f"--devices: give at least one neuromorphic device ({', '.join(DEFAULT_DEVICES)})")
    devs = [load_device(d) for d in devices]
    for d in devs:
        if d.device_class != NEUROMORPHIC:
            raise TargetError(f"{d.path}: energy.device_class: {d.device_class}; --devices takes neuromorphic "
                              f"devices, conventional ones go to --baseline")
    bases = {}
    for b in [baseline] + [b for b in BASELINE_DEVICES if b != baseline]:
        dev = load_device(BASELINE_DEVICES.get(b, b))
        if dev.device_class != CONVENTIONAL:
            raise TargetError(f"{dev.path}: energy.device_class: {dev.device_class}; --baseline takes a "
                              f"conventional device ({', '.join(BASELINE_DEVICES)} or a descriptor)")
        bases[b] = dev
    return devs, bases



def barrier_seconds(device: Device, tiles: int) -> float:
    """Mesh-wide barrier sync per step: Davies' 113-465 ns for 1-32 tiles, linear in tiles used."""
    lo, hi, tmax = device["barrier_sync_time.min"], device["barrier_sync_time.max"], device["barrier_sync_time.tiles_max"]
    if tmax <= 1:
        return hi
    frac = min(max((tiles - 1) / (tmax - 1), 0.0), 1.0)
    return lo + frac * (hi - lo)


# ---------------------------------------------------------------------------------- placement
def mapping_placement(net: Network, device: Device) -> Tuple[Optional[Placement], str]:
    """``(placement, note)``: :func:`neurocomp.passes.place.map_network` on ``device``'s descriptor, or
    ``None`` and why not (no ``limits:`` in the descriptor, or a design-rule violation)."""
    desc, path = _read_descriptor(device.path)
    desc.setdefault("_path", path)
    if not isinstance(desc.get("limits"), dict):
        return None, f"{device.name} has no limits: section for neurocomp.passes.place"
    try:
        return map_network(net, desc).on(device.mesh()), ""
    except NeurocompError as e:
        return None, f"neurocomp.passes.place could not place the network: {e}"


def device_placement(net: Network, device: Device, given=None) -> Placement:
    """Where ``net`` sits on neuromorphic ``device``, read with the device's mesh.

    ``given``: a :class:`~neurocomp.passes.place.Placement` (used as is) or ``{population: [core |
    (chip, core), ...]}``; ``None``: :func:`mapping_placement` from the device's ``limits:``, else the
    default sequential placement (``mesh.neurons_per_core``), with the reason in its ``source``."""
    mesh = device.mesh()
    if isinstance(given, Placement):
        return given.on(mesh)
    if given is not None:
        return placement_from_cores(net, given, mesh, target=device.name)
    placement, note = mapping_placement(net, device)
    if placement is not None:
        return placement
    seq = sequential_placement(net, int(device["mesh.neurons_per_core"]), mesh, target=device.name)
    return Placement(seq.network, seq.target, None, seq.allocations, seq.order, mesh, f"{seq.source}; {note}")


def device_placements(net: Network, devices: Sequence[Device], given=None) -> Dict[str, Tuple[Placement, Device]]:
    """``{device name: (placement, device)}`` for each neuromorphic device (:func:`device_placement`)."""
    return {d.name: (device_placement(net, d, given), d) for d in devices}
