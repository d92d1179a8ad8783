"""``neurocomp run DIR --workers N [--address ...]``: a build's held-out samples split over Ray workers.

On the batched schedule samples are independent (each population starts every sample's window from
zero state, on Lava too: ``LIFReset``), so running contiguous slices of them on separate workers and
joining the results in order gives exactly what one process gives — every spike, count, prediction
and the accuracy (tests). The driver loads the build and encodes the samples as :func:`run_build`
does; a worker gets the deployed network and its slice of input spikes and runs the target on it,
so the workers need no access to the build directory. A stream build carries state from sample to
sample and is refused (one line, exit 2).
"""
from __future__ import annotations

from functools import reduce
from typing import Callable, Optional

import numpy as np

from neurocomp.backends.base import concat_results
from neurocomp.errors import NeurocompError
from neurocomp.pipeline.run import run_build
from neurocomp.pipeline.verify import FLOAT, float_reference


def run_shard(target: str, net, spikes: np.ndarray, schedule):
    """One worker's slice: ``target``'s backend on ``spikes``, every population recorded."""
    from neurocomp.backends import get_backend
    res = get_backend(target).run(net, spikes, schedule, record=True)
    res.input_spikes = None        # the driver has them
    return res


def shard_bounds(n: int, shards: int) -> list:
    """``(lo, hi)`` of ``shards`` contiguous, near-equal slices of ``n`` samples (none empty)."""
    shards = max(1, min(shards, n))
    edges = np.linspace(0, n, shards + 1).round().astype(int)
    return [(int(lo), int(hi)) for lo, hi in zip(edges, edges[1:]) if hi > lo]


def sharded_runner(workers: Optional[int] = None, address: Optional[str] = None,
                   log: Callable[[str], None] = lambda s: None, info: Optional[dict] = None):
    """A ``runner`` for :func:`run_build` that splits the evaluation samples over Ray workers
    (one slice per task at once); ``info`` receives what ran where."""

    def runner(build, target, plan, progress):
        if not build.schedule.is_batched:
            raise NeurocompError(f"{build.path}: a {build.schedule.kind} build runs as one continuous stream (state "
                                 "carries from sample to sample); --workers/--address shard batched builds only")
        if target == FLOAT:
            ref, net = float_reference(build)
            if ref.capabilities.reference:
                raise NeurocompError(f"--target float runs this build's source in {ref.name}; it does not shard "
                                     "(drop --workers)")
            name = ref.name
        else:
            name, net = target, build.frozen
        spikes = plan.evaluation.spikes
        steps = spikes.shape[1]
        from neurocomp.pipeline.cluster import cancel, describe_error, ray_session, system_error_types
        with ray_session(address, workers, log=log) as session:
            ray = session.ray
            bounds = shard_bounds(len(spikes), session.concurrency)
            log(f"{len(spikes)} samples in {len(bounds)} shards on {name}")
            task = ray.remote(num_cpus=1, max_retries=2)(run_shard)
            net_ref = ray.put(net)
            pending = {task.remote(name, net_ref, spikes[lo:hi], plan.schedule): i for i, (lo, hi) in enumerate(bounds)}
            results, done = [None] * len(bounds), 0
            try:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                    for ref in ready:
                        i = pending.pop(ref)
                        try:
                            results[i] = ray.get(ref)
                        except system_error_types() as e:
                            raise NeurocompError(f"shard {i + 1} of {len(bounds)} (samples {bounds[i][0]}-"
                                                 f"{bounds[i][1] - 1}) was lost: {describe_error(e)}") from None
                        done += bounds[i][1] - bounds[i][0]
                        if progress:
                            progress(done * steps, len(spikes) * steps)
            except BaseException:
                from neurocomp.process import note_handled
                note_handled()
                cancel(list(pending))
                raise
            if info is not None:
                info.update(shards=[[lo, hi] for lo, hi in bounds], ray=session.note, address=address,
                            concurrency=session.concurrency)
        return reduce(concat_results, results)

    return runner


def run_build_sharded(build_dir, target: str, workers: Optional[int] = None, address: Optional[str] = None,
                      samples: Optional[int] = None, record: bool = False,
                      progress: Optional[Callable[[int, int], None]] = None,
                      log: Callable[[str], None] = lambda s: None) -> tuple:
    """:func:`run_build` with the samples split over Ray workers (``workers`` at once; a local
    instance unless ``address`` names a cluster): the same document and trains, plus ``"sharded"``."""
    info: dict = {}
    summary, trains = run_build(build_dir, target, samples, record, warmup=False, progress=progress,
                                runner=sharded_runner(workers, address, log, info))
    summary["sharded"] = info
    return summary, trains
