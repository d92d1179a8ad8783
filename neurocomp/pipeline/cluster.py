"""Ray, the distributed engine sweeps and sharded runs use: one way to start or join it, and to end it.

``with ray_session(workers=2):`` starts a local Ray instance in this process (no cluster needed),
with at most as many CPUs as this machine has, and shuts it down (every process it started) on the
way out — Ctrl-C included. ``ray_session(address="ray://head:10001")`` joins an existing cluster
through Ray Client (``address="auto"`` or ``"head:6379"`` joins from a node of the cluster) and only
disconnects from it. Inside a notebook that already called ``ray.init()`` the session is used as
it is and left running.

Ray is imported only here, and only when a session is opened; its usage-statistics upload is
switched off (``RAY_USAGE_STATS_ENABLED=0``: nothing leaves the machine but the tasks).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from neurocomp.errors import NeurocompError, one_line

LOCAL_OBJECT_STORE_BYTES = 512 * 2 ** 20   # results are small; Ray spills to disk past it


def machine_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass
class RaySession:
    """An open Ray connection: ``cpus`` the cluster offers, ``concurrency`` tasks kept in flight."""

    address: Optional[str]
    cpus: int
    concurrency: int
    started: bool            # we started a local instance (and shut it down after)
    note: str                # one line for the log

    @property
    def ray(self):
        import ray
        return ray


def _ray():
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as e:  # pragma: no cover - a pinned dependency
        raise NeurocompError(f"Ray is needed for sweeps and --workers (pip install 'ray[client]'): {e}") from None
    return ray


@contextmanager
def ray_session(address: Optional[str] = None, workers: Optional[int] = None, runtime_env: Optional[dict] = None,
                log: Callable[[str], None] = lambda s: None):
    """Start (or join, with ``address``) Ray for the block; yields a :class:`RaySession`.

    ``workers``: tasks at once — locally also the CPUs the instance gets (at most :func:`machine_cpus`);
    on a cluster, default all of its CPUs. ``runtime_env``: Ray's (e.g. ``{"working_dir": ...}``
    to ship the model folder to a cluster's nodes).
    """
    if workers is not None and workers < 1:
        raise NeurocompError(f"--workers {workers}: must be at least 1")
    ray = _ray()
    if ray.is_initialized():
        cpus = int(ray.cluster_resources().get("CPU", 1))
        yield RaySession(None, cpus, workers or cpus, False, f"Ray: the session already open ({cpus} CPUs)")
        return
    in_main = threading.current_thread() is threading.main_thread()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    common = dict(logging_level=logging.ERROR, log_to_driver=False, runtime_env=runtime_env or None)
    try:
        if address:
            try:
                ray.init(address=address, **common)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
                hint = "" if os.environ.get("RAY_AUTH_MODE") else (
                    " (a cluster with Ray's token authentication also needs RAY_AUTH_MODE=token and its token in "
                    "RAY_AUTH_TOKEN or ~/.ray/auth_token)")
                raise NeurocompError(f"--address {address}: cannot join the Ray cluster: {one_line(e, 160)}{hint}") \
                    from None
            cpus = int(ray.cluster_resources().get("CPU", 1))
            session = RaySession(address, cpus, workers or cpus, False,
                                 f"Ray: joined {address} ({cpus} CPUs, {workers or cpus} tasks at once)")
        else:
            have = machine_cpus()
            cpus = min(workers or have, have)
            try:   # "local": always a new instance, never a cluster a ray start on this machine left behind
                ray.init(address="local", num_cpus=cpus, include_dashboard=False,
                         object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
            except (ConnectionError, RuntimeError, ValueError, OSError) as e:
                raise NeurocompError(f"cannot start a local Ray instance: {one_line(e, 200)}") from None
            limited = f" (limited to this machine's {have})" if workers and workers > have else ""
            session = RaySession(None, cpus, cpus, True, f"Ray: local instance, {cpus} worker CPUs{limited}")
    except BaseException:
        _shutdown(ray)
        raise
    finally:
        for sig, handler in handlers.items():   # ray.init installs its own; ours (Ctrl-C -> clean exit) stay
            if handler is not None:
                signal.signal(sig, handler)
    log(session.note)
    try:
        yield session
    finally:
        _shutdown(ray)


def _shutdown(ray) -> None:
    """Disconnect (a cluster) or end the local instance and every process it started."""
    try:
        ray.shutdown()
    except Exception:  # pragma: no cover - shutting down after a failure
        pass


def cancel(refs: Iterable) -> None:
    """Cancel tasks in flight (their worker processes are ended)."""
    import ray
    for ref in refs:
        try:
            ray.cancel(ref, force=True)
        except Exception:  # already finished or gone
            pass


def system_error_types() -> tuple:
    """Ray's errors for a task that did not finish for reasons of the cluster (a lost worker or node,
    cancelled, out of memory) rather than of the task's own code."""
    import ray.exceptions as rx
    names = ("WorkerCrashedError", "NodeDiedError", "ObjectLostError", "TaskCancelledError", "OutOfMemoryError",
             "RaySystemError", "LocalRayletDiedError", "ActorDiedError", "TaskUnschedulableError",
             "RuntimeEnvSetupError", "ObjectFetchTimedOutError", "OwnerDiedError")
    return tuple(getattr(rx, n) for n in names if hasattr(rx, n))


def describe_error(e: BaseException) -> str:
    """One line for an error a task raised (Ray's wrapper unwrapped to the task's own exception)."""
    import ray.exceptions as rx
    if isinstance(e, rx.RayTaskError) and e.cause is not None:
        e = e.cause
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    return one_line(f"{type(e).__name__}: {first}" if first else type(e).__name__, 240)
