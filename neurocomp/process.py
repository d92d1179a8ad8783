"""Process hygiene for the command line: Ctrl-C stops everything we started, children die with us,
and a run that would not fit in memory is refused before it starts.

Lava's CPU runtime forks worker processes (``multiprocessing`` with the ``fork`` start method) and
talks to them over shared-memory channels. Left alone, Ctrl-C at the terminal reaches every process of
the foreground group: the workers die with ``KeyboardInterrupt`` tracebacks, the parent then waits for
answers that never come, and ``multiprocessing`` joins the workers at exit. SIGKILL of the parent leaves
the workers orphaned. :func:`cli_guard` (entered by ``neurocomp``'s command group around every
command) changes that:

* every process forked while it is active ignores SIGINT (the parent decides when to stop) and gets
  ``PR_SET_PDEATHSIG = SIGKILL``: it dies when the parent does, however the parent dies;
* the first SIGINT/SIGTERM in the parent raises ``KeyboardInterrupt``; :func:`stop_lava` (the
  backends' ``finally`` around a Lava run) then ends the workers instead of running Lava's stop
  protocol with them; the command prints one line and exits 130 (143 for SIGTERM);
* a second signal ends the children with SIGKILL and exits at once.

:func:`signals_deferred` holds SIGINT/SIGTERM back around the few renames that swap a build into
place, so an interrupt never leaves a half-replaced build.

:func:`check_run_memory` estimates what encoding and recording a run needs (samples x steps x widths)
and refuses, naming the spec key or option to lower, when it would not fit in the memory available.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterable, List, Optional

from neurocomp.errors import EXIT_INTERRUPTED, ResourceError

PR_SET_PDEATHSIG = 1
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
FORCE_EXIT_AFTER = 15.0  # seconds an interrupted command may take to clean up before it is ended
RETRY_AFTER = 1.0        # seconds before an interrupt that did not reach our clean-up is delivered again

_state = {
    "hooked": False,       # os.register_at_fork done (once per process)
    "active": 0,           # nesting depth of cli_guard
    "main_pid": None,      # the process cli_guard runs in
    "signal": None,        # the first SIGINT/SIGTERM received while active
    "watchdog": None,      # thread that re-delivers a swallowed interrupt, force-exits a stuck clean-up
    "retry": False,        # the next SIGINT is the watchdog's re-delivery, not the user's second one
    "handled": False,      # the interrupt reached our clean-up
    "swallowed": False,    # its KeyboardInterrupt was dropped as unraisable: deliver it again now
}
_fork = threading.local()  # before-fork facts the child hook reads


# ------------------------------------------------------------------------------- forked children
def _prctl_pdeathsig(sig: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux: children are still ended by the parent on interrupt
        return False


def _before_fork() -> None:
    _fork.parent = os.getpid()
    _fork.main_thread = threading.current_thread() is threading.main_thread()


def _after_fork_in_child() -> None:
    if not _state["active"]:
        return
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent decides when to stop
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # ... and ends us with SIGTERM / SIGKILL
    except (ValueError, OSError):
        pass
    # PDEATHSIG fires when the forking *thread* ends: only tie the child to a main-thread fork
    if getattr(_fork, "main_thread", False) and _prctl_pdeathsig(signal.SIGKILL):
        if os.getppid() != getattr(_fork, "parent", os.getppid()):
            os._exit(1)  # the parent died between fork and prctl


def _install_fork_hooks() -> None:
    if not _state["hooked"]:
        os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
        _state["hooked"] = True


def _children_pids(parent: int) -> List[int]:
    """Live (not yet reaped, not zombie) child processes of ``parent``, from /proc."""
    out = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for d in entries:
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            out.append(int(d))
    return out


def _resource_tracker_pid() -> Optional[int]:
    """multiprocessing's resource tracker: it unlinks leaked shared memory after we exit, let it live."""
    try:
        from multiprocessing import resource_tracker
        return getattr(resource_tracker._resource_tracker, "_pid", None)
    except Exception:  # pragma: no cover - private API
        return None


def _reap(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:  # not our child any more, or already reaped elsewhere
        return not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
    except OSError:
        return False


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        return st[st.rindex(")") + 2:].split()[0] == "Z"
    except OSError:
        return True


def end_children(timeout: float = 3.0, sig: int = signal.SIGTERM) -> int:
    """End every child process we started (Lava's workers and its shared-memory manager, anything
    else forked or spawned), SIGTERM then SIGKILL after ``timeout`` s; returns how many were ended.
    multiprocessing's resource tracker is left to exit on its own (it cleans up shared memory)."""
    import multiprocessing

    tracker = _resource_tracker_pid()
    mp_children = [p for p in multiprocessing.active_children()]
    mp_pids = {p.pid for p in mp_children}
    others = [pid for pid in _children_pids(os.getpid()) if pid not in mp_pids and pid != tracker]
    for p in mp_children:
        try:
            os.kill(p.pid, sig)
        except (ProcessLookupError, TypeError):
            pass
    for pid in others:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for p in mp_children:  # multiprocessing.Process.join, not Lava's override without a timeout
        multiprocessing.Process.join(p, max(0.0, deadline - time.monotonic()))
    pending = set(others)
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if not _reap(pid)}
        if pending:
            time.sleep(0.02)
    for p in mp_children:
        if p.exitcode is None:
            p.kill()
            multiprocessing.Process.join(p, 1.0)
    for pid in pending:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for _ in range(50):
            if _reap(pid):
                break
            time.sleep(0.02)
    return len(mp_children) + len(others)


# ------------------------------------------------------------------------------- signals in the parent
def _on_signal(signum, frame):
    if os.getpid() != _state["main_pid"]:  # a forked child before its fork hook ran
        return
    if _state["retry"]:                    # our own re-delivery of the first signal (see _watchdog)
        _state["retry"] = False
        if _state["handled"]:
            return
        raise KeyboardInterrupt
    if _state["signal"] is not None:       # second signal: stop waiting for anything
        try:
            os.write(2, b"interrupted again: stopping at once\n")
            end_children(timeout=0.0, sig=signal.SIGKILL)
        finally:
            os._exit(128 + signum)
    _state["signal"] = signum
    watchdog = threading.Thread(target=_watchdog, args=(signum,), name="neurocomp-interrupt", daemon=True)
    _state["watchdog"] = watchdog
    watchdog.start()
    raise KeyboardInterrupt


def _watchdog(signum: int) -> None:
    """After the first signal: if its KeyboardInterrupt was swallowed (raised inside an at-fork hook,
    a ``__del__``, a library's ``except BaseException``) deliver it again, and if the command still
    has not finished after :data:`FORCE_EXIT_AFTER` seconds, end it."""
    t0 = time.monotonic()
    next_retry = t0 + RETRY_AFTER
    while True:
        time.sleep(0.05)
        now = time.monotonic()
        if now - t0 > FORCE_EXIT_AFTER:
            _force_exit(signum)
        if _state["handled"]:
            continue
        if _state["swallowed"] or now >= next_retry:
            _state["swallowed"] = False
            next_retry = now + RETRY_AFTER
            _state["retry"] = True
            try:
                os.kill(os.getpid(), signum)
            except OSError:  # pragma: no cover
                pass


def _unraisable(hook):
    """``sys.unraisablehook`` while guarded: a KeyboardInterrupt raised where Python can only print and
    drop it (an at-fork hook, a finalizer) is not printed; the watchdog delivers the signal again."""
    def unraisable(unraisable_info):
        if _state["signal"] is not None and isinstance(unraisable_info.exc_value, KeyboardInterrupt):
            _state["swallowed"] = True
            return
        if (_state["signal"] is not None and isinstance(unraisable_info.exc_value, RuntimeError)
                and getattr(unraisable_info.object, "__name__", "") == "_releaseLock"):
            # logging's after-fork hook releasing the lock our KeyboardInterrupt kept its before-fork
            # hook from taking: nothing was held, so nothing is lost (seen under load, SIGTERM mid-fork)
            return
        hook(unraisable_info)
    return unraisable


def note_handled() -> None:
    """The interrupt reached code that stops the command (our clean-up): no more re-deliveries."""
    _state["handled"] = True


def _force_exit(signum: int) -> None:
    """The interrupted command did not finish cleaning up in time (something waits on a worker that
    will never answer): end the children and exit anyway."""
    try:
        os.write(2, f"interrupted: stopped by {signal.Signals(signum).name} (forced after "
                    f"{FORCE_EXIT_AFTER:.0f} s)\n".encode())
        end_children(timeout=0.5, sig=signal.SIGKILL)
    finally:
        os._exit(128 + signum)


def interrupted() -> bool:
    """True once the guarded command got SIGINT/SIGTERM (or raised KeyboardInterrupt in it)."""
    return _state["signal"] is not None


def exit_code() -> int:
    """130 for SIGINT, 143 for SIGTERM (the shell's 128 + signal number)."""
    sig = _state["signal"]
    return 128 + int(sig) if sig is not None else EXIT_INTERRUPTED


def note_interrupt() -> None:
    """Record a KeyboardInterrupt that did not come through our handler (e.g. raised by a library)."""
    if _state["signal"] is None:
        _state["signal"] = signal.SIGINT


@contextmanager
def cli_guard():
    """Around one command: forked children ignore SIGINT and die with us; SIGINT/SIGTERM in this
    process raise ``KeyboardInterrupt`` once, a second one exits at once. Restores everything after."""
    in_main = threading.current_thread() is threading.main_thread()
    _install_fork_hooks()
    previous = {}
    previous_hook = None
    if _state["active"] == 0:
        _state.update(signal=None, retry=False, handled=False, swallowed=False, main_pid=os.getpid())
        if in_main:
            for sig in HANDLED_SIGNALS:
                previous[sig] = signal.signal(sig, _on_signal)
            previous_hook = sys.unraisablehook
            sys.unraisablehook = _unraisable(previous_hook)
    _state["active"] += 1
    try:
        yield
    finally:
        _state["active"] -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if previous_hook is not None:
            sys.unraisablehook = previous_hook
        # a watchdog (started by a real signal) is left running: the process is on its way out and
        # the watchdog also covers the interpreter's exit handlers


def stop_lava(process) -> None:
    """Stop the Lava runtime ``process`` runs in: Lava's own stop protocol normally; after an
    interrupt, end the workers instead (they may be mid-step, the protocol could wait forever) and
    mark the runtime stopped so nothing (``Runtime.__del__``, atexit) tries again."""
    propagating = isinstance(sys.exc_info()[1], KeyboardInterrupt)
    guarded = _state["active"] > 0
    if not propagating and not (guarded and interrupted()):
        process.stop()
        return
    if guarded:  # outside the CLI (a notebook) nothing is remembered: the next run stops normally
        note_interrupt()
        note_handled()
    runtime = getattr(process, "runtime", None)
    end_children()
    if runtime is not None:
        for flag in ("_is_started", "_is_running"):
            if hasattr(runtime, flag):
                setattr(runtime, flag, False)


@contextmanager
def signals_deferred(signals: Iterable[int] = HANDLED_SIGNALS):
    """Hold SIGINT/SIGTERM back while the block runs (a few renames); deliver them after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list = []
    previous = {}
    for sig in signals:
        previous[sig] = signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in caught[:1]:
            signal.raise_signal(signum)


# ------------------------------------------------------------------------------- memory
def available_memory() -> Optional[int]:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup memory limit."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f:
                raw = f.read().strip()
            with open(usage_file) as f:
                used = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if raw.isdigit() and int(raw) < (1 << 60):
            room = max(0, int(raw) - used)
            avail = room if avail is None else min(avail, room)
        break
    return avail


def estimate_run_bytes(samples: int, timesteps: int, input_size: int, layer_sizes: Iterable[int] = (),
                       record: bool = True, copies: int = 2) -> int:
    """Bytes a batch of ``samples`` needs while it runs: the encoded input (one byte per input, step and
    sample), ``copies`` recorded spike trains of every layer (the cpu run and the target's) and the
    encoder's float64 scratch for one sample."""
    per_step = int(input_size) + (copies * sum(int(s) for s in layer_sizes) if record else 0)
    return int(samples) * int(timesteps) * per_step + 16 * int(timesteps) * int(input_size)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return f"{n:.1f} TB"


def require_memory(needed: int, what: str, lower: str, fraction: float = 0.8) -> None:
    """Refuse (:class:`ResourceError`, exit 2) when ``needed`` bytes exceed ``fraction`` of the memory
    available; ``what`` says what needs it, ``lower`` which keys/options make it smaller."""
    avail = available_memory()
    if avail is not None and needed > fraction * avail:
        raise ResourceError(f"{what} needs about {_fmt_bytes(needed)} of memory, {_fmt_bytes(avail)} is "
                            f"available; lower {lower}")


def check_run_memory(net, samples: int, where, lower: str, record: bool = True, copies: int = 2) -> None:
    """:func:`require_memory` for encoding and recording ``samples`` samples of the IR network ``net``
    (its ``timesteps``, input size and population sizes). ``where`` names the spec file or build."""
    steps = int(net.timesteps)
    n_in = int(net.input.size)
    sizes = [int(p.size) for p in net.populations]
    needed = estimate_run_bytes(samples, steps, n_in, sizes, record=record, copies=copies)
    require_memory(needed, f"{where}: input.timesteps {steps} x {int(samples)} samples x {n_in} inputs"
                           f"{' (and the recorded spikes of ' + str(sum(sizes)) + ' neurons)' if record else ''}",
                   lower)
