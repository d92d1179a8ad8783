"""Energy estimates: activity counted from a backend's result x per-operation costs from cited device
tables (DESIGN.md: ``energy(device tables) -> EnergyReport``).

* :mod:`~neurocomp.energy.devices`  — device descriptors (``targets/*.yaml`` ``energy:``), and where the
  network sits on each device (a :class:`~neurocomp.passes.place.Placement` read with its mesh);
* :mod:`~neurocomp.energy.activity` — synops, neuron updates, spikes, messages/hops, learning updates
  counted from a :class:`~neurocomp.backends.base.Result` (either schedule; no re-simulation);
* :mod:`~neurocomp.energy.cost`     — per-op model of neuromorphic devices, op model and time x power of
  conventional ones (equivalent ANN or densely stepped network);
* :mod:`~neurocomp.energy.baseline` — batch-1 latency measured on this machine's CPU / a CUDA GPU;
* :mod:`~neurocomp.energy.report`   — :func:`estimate_energy` -> :class:`EnergyReport`.
"""
from neurocomp.energy.activity import Activity, LayerCounts, RoutingCounts, count_activity
from neurocomp.energy.baseline import measure_cpu_latency, measure_gpu
from neurocomp.energy.cost import (StreamWorkload, ann_op_counts, conventional_energy, equivalent_ann,
                                   neuromorphic_energy)
from neurocomp.energy.devices import (BASELINE_DEVICES, CONVENTIONAL, DEFAULT_DEVICES, NEUROMORPHIC, Device, Figure,
                                      barrier_seconds, device_placement, device_placements, energy_devices,
                                      load_device, mapping_placement, resolve_devices)
from neurocomp.energy.report import EnergyReport, dominant, estimate_energy

__all__ = ["Activity", "LayerCounts", "RoutingCounts", "count_activity", "measure_cpu_latency", "measure_gpu",
           "StreamWorkload", "ann_op_counts", "conventional_energy", "equivalent_ann", "neuromorphic_energy",
           "BASELINE_DEVICES", "CONVENTIONAL", "DEFAULT_DEVICES", "NEUROMORPHIC", "Device", "Figure",
           "barrier_seconds", "device_placement", "device_placements", "energy_devices", "load_device",
           "mapping_placement", "resolve_devices", "EnergyReport", "dominant", "estimate_energy"]
