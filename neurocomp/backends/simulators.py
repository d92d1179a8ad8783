"""neurocomp's own simulators as targets: ``cpu`` (Lava's fixed point, bit-exact) and ``float``.

Both run both schedules: the batched one with :mod:`neurocomp.backends.batch_engine` (many samples
at once, layer by layer), the stream one with :mod:`neurocomp.backends.stream_engine` (one
continuous run, learning included on ``cpu``).
"""
from __future__ import annotations

from neurocomp.backends.base import Backend, Capabilities, Result, teacher_values
from neurocomp.ir.schedule import to_stream


class _Simulator(Backend):
    engine = "jit"

    def run(self, net, spikes, schedule, *, record=False, probe=False, learn=False, teacher=None,
            progress=None, source=None) -> Result:
        self.check(net, schedule)
        if schedule.is_batched:
            from neurocomp.backends.batch_engine import simulate
            return simulate(net, spikes, record=record, probe=probe, target=self.name, engine=self.engine,
                            progress=progress)
        from neurocomp.backends.stream_engine import run_stream
        from neurocomp.ir.synapses import Conv, LoihiConv
        convs = [p.name for p in net.projections if isinstance(p.synapse, (Conv, LoihiConv))]
        if convs:
            from neurocomp.errors import TargetError
            raise TargetError(f"target {self.name!r}: convolutions ({', '.join(convs)}) run on the batched schedule "
                              "only (a layered network without plasticity)")
        return run_stream(net, to_stream(spikes, schedule.rest), teacher=teacher_values(teacher), learn=learn,
                          record=None if record else [net.output], progress=progress, probe=probe,
                          probe_peaks=probe and net.is_fixed_point, schedule=schedule, target=self.name)


class CpuBackend(_Simulator):
    name = "cpu"
    description = "neurocomp's simulator of Lava's bit-accurate fixed point (batched numba kernel; stream stepper)"
    capabilities = Capabilities(network="fixed", learning=True, state_probes=True, bit_exact=True)


class FloatBackend(_Simulator):
    name = "float"
    description = "the imported float network, Lava's float LIF equations in float64"
    capabilities = Capabilities(network="float", state_probes=True)
