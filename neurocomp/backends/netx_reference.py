"""The ``netx`` reference target: a lava-dl netx ``.net`` file run by lava-dl's own
``netx.hdf5.Network`` on Lava (``Loihi2SimCfg``, fixed point) — what an import or an export of netx
files is checked against. Its layer ``i`` resets at ``1 + i`` (netx's own staggering), which is
neurocomp's batched schedule, so its windows line up with every other target's.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from neurocomp.backends.base import Backend, Capabilities, Result
from neurocomp.errors import TargetError


def run_netx(path, spikes_in: np.ndarray, timesteps: int) -> dict:
    """Run a netx file with lava-dl's own ``netx.hdf5.Network`` on Lava (``Loihi2SimCfg``, fixed point) —
    the reference an import or export is checked against.

    ``spikes_in`` ``[samples, timesteps, n_in]`` play back to back from one ``RingBuffer``; the network is
    built with ``reset_interval=timesteps, reset_offset=1``, netx's own staggering (layer ``i`` resets at
    ``1 + i``), which is neurocomp's batched schedule. Returns ``{layer index: spikes [samples, T, n]}``
    for every dense layer, each cut at its depth ``i`` as neurocomp's Lava target cuts its windows."""
    from neurocomp.backends.lava import ensure_lava_runtime
    ensure_lava_runtime()
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    spikes_in = np.asarray(spikes_in)
    n, T, n_in = spikes_in.shape
    net = netx.hdf5.Network(net_config=str(path), reset_interval=T, reset_offset=1)
    depth = len(net.layers)
    total = n * T + depth
    data = np.zeros((n_in, total), dtype=np.int32)
    data[:, :n * T] = spikes_in.reshape(n * T, n_in).T
    source = Source(data=data)
    source.s_out.connect(net.inp)
    sinks = []
    for layer in net.layers:
        sink = Sink(shape=layer.out.shape, buffer=total)
        layer.out.connect(sink.a_in)
        sinks.append(sink)
    try:
        source.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        raw = [s.data.get().astype(bool) for s in sinks]
    finally:
        from neurocomp.process import stop_lava
        stop_lava(source)
    return {i + 1: r[:, i + 1: i + 1 + n * T].T.reshape(n, T, -1) for i, r in enumerate(raw)}


class NetxReference(Backend):
    """``netx``: the source's own netx file on lava-dl's ``netx.hdf5.Network`` (fixed point, batched)."""

    name = "netx"
    description = "a netx .net file run by lava-dl's own netx.hdf5.Network on Lava (reference for netx sources)"
    capabilities = Capabilities(network="fixed", batched=True, stream=False, reference=True, bit_exact=True)

    def unavailable(self) -> Optional[str]:
        from importlib.util import find_spec
        return None if find_spec("lava.lib.dl") else "target netx needs lava-dl (pip install lava-dl==0.6.0)"

    def accepts(self, source) -> bool:
        return source is not None and getattr(source.spec.source, "kind", None) == "netx"

    def run(self, net, spikes, schedule, *, record=False, probe=False, learn=False, teacher=None,
            progress=None, source=None) -> Result:
        if not self.accepts(source):
            raise TargetError("target netx runs netx sources only (source.kind: netx)")
        self.check(net, schedule)
        by_layer = run_netx(source.spec.resolve(source.spec.source.file), spikes, schedule.timesteps)
        names = [p.name for p in net.execution_order()]
        trains = {names[i - 1]: t for i, t in by_layer.items()}
        return Result(target=self.name, output=net.output, schedule=schedule,
                      counts={k: t.sum(axis=1).astype(np.int64) for k, t in trains.items()}, spikes=trains,
                      input_spikes=np.asarray(spikes))
