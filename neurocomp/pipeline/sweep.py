"""Design-space sweeps: any model.yaml keys on a grid, every point compiled on ``cpu`` and scored, as
Ray tasks — ``neurocomp sweep``, or from a notebook::

    from neurocomp.pipeline.sweep import sweep
    doc = sweep("models/mnist_mlp/model.yaml",
                {"quantize.weight_bits": [4, 6, 8], "input.timesteps": [16, 25, 50]}, "sweeps/mnist_mlp")

Every point is the spec with its overrides (:func:`neurocomp.spec.load_spec`), validated — all of
them — before anything runs. A point is evaluated by :func:`evaluate_point` in a Ray task: the
compile on the bit-accurate ``cpu`` target with the energy estimate (held-out accuracy float and
cpu, energy per inference on each neuromorphic device and the conventional baseline, latency in
steps), in a temporary directory on whichever node runs it; the build's files come back with the
result. The driver (this process) writes them, so ``OUT`` is always on the machine that asked::

    OUT/.neurocomp-sweep.json   marker: which spec this directory sweeps
    OUT/points/ID/              the point's build (network.npz, build.json, report.json, report.html)
    OUT/points/ID.json          the point's record, written last: status ok / failed, metrics or error
    OUT/sweep.json              every point of the grid in order, the Pareto fronts (rewritten per point)
    OUT/sweep.html              accuracy vs energy Pareto front per device, one plot per swept key

``ID`` is a hash of the point's overrides. Resuming is running the same command again: a point whose
record says ``ok`` (or ``failed`` with an error of its own, unless ``retry_failed``) and whose inputs
— model.yaml and the files it names — have not changed since is skipped; points interrupted (Ctrl-C),
or lost with a worker or node, have no final record and run again. A failed point's error is one
line in its record, and the sweep goes on.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from neurocomp.errors import BuildError, NeurocompError, one_line, short_repr
from neurocomp.io import atomic_directory, atomic_write_bytes, atomic_write_json, read_json
from neurocomp.spec import load_spec, spec_files

MARKER = ".neurocomp-sweep.json"
SWEEP_FORMAT = 1
TARGET = "cpu"             # every point compiles on the bit-accurate simulator
FINAL = ("ok", "failed")   # statuses of a record that resuming keeps


# --------------------------------------------------------------------------------------- the grid
def parse_value(text: str):
    """One grid value as YAML reads a scalar: ``4`` -> 4, ``1.5`` -> 1.5, ``rate`` -> 'rate',
    ``true`` -> True, ``null`` -> None."""
    import yaml
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, str, bool)) or value is None else text


def parse_grid(items: Sequence[str]) -> Dict[str, list]:
    """``["quantize.weight_bits=4,6,8", "input.timesteps=16,25"]`` -> ``{key: [values]}`` in order.
    A malformed item, a repeated key or value is a :class:`NeurocompError` naming it."""
    grid: Dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise NeurocompError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. quantize.weight_bits=4,6,8)")
        if key in grid:
            raise NeurocompError(f"--grid {key}: given twice; list all its values in one --grid")
        parts = [v.strip() for v in values.split(",")]
        if not values.strip() or any(not p for p in parts):
            raise NeurocompError(f"--grid {key}={values}: an empty value; give V1,V2,... separated by commas")
        parsed = [parse_value(p) for p in parts]
        if len({json.dumps(v) for v in parsed}) != len(parsed):
            raise NeurocompError(f"--grid {key}={values}: a value appears twice")
        grid[key] = parsed
    if not grid:
        raise NeurocompError("--grid: give at least one KEY=V1,V2,...")
    return grid


def grid_points(grid: Mapping[str, Sequence]) -> List[Dict[str, Any]]:
    """Every combination of the grid's values (the last key varies fastest), as overrides."""
    keys = list(grid)
    for k in keys:
        if not isinstance(grid[k], (list, tuple)) or not grid[k]:
            raise NeurocompError(f"grid {k}: give a non-empty list of values (got {short_repr(grid[k])})")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def point_id(overrides: Mapping[str, Any]) -> str:
    """A short stable name for a point: a hash of its overrides (order-independent)."""
    canon = json.dumps(dict(sorted(overrides.items())), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:12]


def label(overrides: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items())


_HASHES: Dict[tuple, str] = {}


def _file_hash(p: Path) -> str:
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def inputs_fingerprint(spec) -> str:
    """A hash of what a point's result depends on besides its overrides: model.yaml and every file the
    spec names (factory script, weights, dataset .npz)."""
    h = hashlib.sha256()
    for p in sorted({Path(p).resolve() for p in spec_files(spec) if Path(p).is_file()}):
        h.update(str(p).encode() + b"\0" + _file_hash(p).encode() + b"\0")
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------- one point
def metrics_of(report: dict, net) -> dict:
    """What a sweep compares, from a compile report (with energy) and the deployed network."""
    acc = report.get("accuracy", {})
    energy = report.get("energy") or {}
    devices = {name: {"joules_per_inference": d.get("joules_per_inference"),
                      "dynamic_joules_per_inference": d.get("dynamic_joules_per_inference"),
                      "seconds_per_inference": d.get("seconds_per_inference"),
                      "joules_per_spike": d.get("joules_per_spike")}
               for name, d in energy.get("devices", {}).items()}
    base = energy.get("baseline") or {}
    from neurocomp.ir.schedule import Schedule
    window = Schedule.from_dict(report["schedule"]).window if report.get("schedule") else int(report["timesteps"])
    depth = int(net.depths()[net.output])
    return {
        "accuracy": {"float": acc.get("float"), "cpu": acc.get("cpu"), "held_out": acc.get("held_out")},
        "energy": {"devices": devices,
                   "baseline": {"device": base.get("device"),
                                "op_model_joules_per_inference": base.get("op_model_joules_per_inference"),
                                "time_power_joules_per_inference": base.get("time_power_joules_per_inference"),
                                "measured": base.get("measured")},
                   "synaptic_operations": energy.get("synaptic_operations"),
                   "activation_sparsity": energy.get("activation_sparsity")},
        # steps from a sample's first input step until the output population's window has ended
        "latency_steps": window + depth,
        "timesteps": window,
        "output_depth": depth,
        "compile_seconds": (report.get("timing_s") or {}).get("total"),
    }


def evaluate_point(spec_path: str, overrides: Mapping[str, Any]) -> dict:
    """Compile ``spec_path`` with ``overrides`` on ``cpu`` with the energy estimate and return the
    point's result (what a Ray task returns): ``{"status": "ok", "metrics", "files": {name: bytes}}``
    or ``{"status": "failed", "error": one line}``. Never raises for a problem of the point itself.
    A relative ``spec_path`` is read from the current directory (on a cluster's node: the model folder
    Ray shipped as the task's working directory)."""
    from neurocomp.pipeline.build import load_build
    from neurocomp.pipeline.compile import compile_model

    t0 = time.perf_counter()
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    tmp = tempfile.mkdtemp(prefix="neurocomp-sweep-")
    try:
        out = Path(tmp) / "build"
        report = compile_model(spec_path, target=TARGET, out=out, energy=True, overrides=dict(overrides))
        build = load_build(out)
        files = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
        return {"status": "ok", "metrics": metrics_of(report, build.fixed), "files": files,
                "seconds": round(time.perf_counter() - t0, 3), **where}
    except Exception as e:   # the point failed, not the sweep: recorded, and the sweep goes on
        msg = str(e) if isinstance(e, NeurocompError) else f"{type(e).__name__}: {e}"
        out = {"status": "failed", "error": one_line(msg, 300), "error_type": type(e).__name__,
               "seconds": round(time.perf_counter() - t0, 3), **where}
        if not isinstance(e, NeurocompError):
            out["traceback"] = traceback.format_exc(limit=12)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------- the results
def pareto_front(records: Sequence[dict], device: str) -> List[str]:
    """IDs of the ``ok`` points no other point beats on both bit-accurate accuracy (higher) and
    ``device``'s energy per inference (lower), by increasing energy."""
    pts = []
    for r in records:
        if r.get("status") != "ok":
            continue
        acc = r["metrics"]["accuracy"].get("cpu")
        e = (r["metrics"]["energy"]["devices"].get(device) or {}).get("joules_per_inference")
        if acc is not None and e is not None:
            pts.append((float(e), -float(acc), r["id"]))
    front, best = [], None
    for e, neg_acc, pid in sorted(pts):
        if best is None or -neg_acc > best:
            front.append(pid)
            best = -neg_acc
    return front


def sweep_document(spec_path, grid: Mapping[str, Sequence], records: List[dict], started: float,
                   session_note: str = "", counts: Optional[dict] = None) -> dict:
    """``sweep.json``: the grid, every point's record in grid order (``pending`` where none yet),
    and the Pareto front per device."""
    devices = []
    for r in records:
        if r.get("status") == "ok":
            devices += [d for d in r["metrics"]["energy"]["devices"] if d not in devices]
    status = [r.get("status", "pending") for r in records]
    return {
        "format": SWEEP_FORMAT,
        "spec": str(Path(spec_path).resolve()),
        "target": TARGET,
        "grid": {k: list(v) for k, v in grid.items()},
        "points": len(records),
        "ok": status.count("ok"), "failed": status.count("failed"),
        "pending": len(records) - status.count("ok") - status.count("failed"),
        **(counts or {}),
        "wall_seconds": round(time.time() - started, 1),
        "ray": session_note,
        "devices": devices,
        "pareto": {d: pareto_front(records, d) for d in devices},
        "records": records,
    }


def _check_out(out: Path, spec) -> None:
    """``out`` is missing, empty, or a sweep of this same spec; never the current directory (or a
    parent of it) nor the model's folder."""
    resolved, cwd = out.resolve(), Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise BuildError(f"{out}: is the current directory or one of its parents; give the sweep a directory of "
                         "its own (e.g. sweeps/NAME)")
    for p in spec_files(spec):
        q = Path(p).resolve()
        if resolved == q or resolved in q.parents:
            raise BuildError(f"{out}: holds the model's own file {q.name}; give the sweep a directory of its own")
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise BuildError(f"{out}: exists and is not a directory")
    entries = os.listdir(out)
    if not entries:
        return
    if MARKER not in entries:
        raise BuildError(f"{out}: not empty and not a neurocomp sweep ({len(entries)} entries); choose another "
                         "--out")
    doc = read_json(out / MARKER, dict, "sweep marker")
    if doc.get("spec") != str(Path(spec.path).resolve()):
        raise BuildError(f"{out}: holds a sweep of {doc.get('spec')}, not of {Path(spec.path).resolve()}; choose "
                         "another --out")


def _read_record(path: Path) -> Optional[dict]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("status") in FINAL else None


def _save_point(out: Path, point: dict, result: dict) -> dict:
    """Write a finished point (its build, then its record — the record last: it marks the point done)."""
    pid = point["id"]
    record = {"id": pid, "overrides": point["overrides"], "label": label(point["overrides"]),
              "status": result["status"], "fingerprint": point["fingerprint"],
              "seconds": result.get("seconds"), "host": result.get("host"), "pid": result.get("pid"),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if result["status"] == "ok":
        with atomic_directory(out / "points" / pid) as tmp:
            for name, data in result["files"].items():
                if name != ".neurocomp-build.json":       # the manifest is written by atomic_directory
                    (tmp / name).write_bytes(data)
        record.update(metrics=result["metrics"], build=f"points/{pid}")
    else:
        record.update(error=result["error"], error_type=result.get("error_type"))
        if result.get("traceback"):
            record["traceback"] = result["traceback"]
    if result["status"] != "lost":
        atomic_write_json(out / "points" / f"{pid}.json", record)
    return record


Progress = Optional[Callable[[int, int, Optional[dict]], None]]


def sweep(spec_path, grid: Mapping[str, Sequence], out, *, address: Optional[str] = None,
          workers: Optional[int] = None, retry_failed: bool = False, ship: Optional[bool] = None,
          progress: Progress = None, log: Callable[[str], None] = lambda s: None, html: bool = True) -> dict:
    """Run the grid (``{dotted key: [values]}``) over ``spec_path`` into ``out``; returns ``sweep.json``.

    ``address``: a Ray cluster to join (``ray://head:10001``; default: a local instance in this process
    with ``workers`` CPUs). ``ship``: send the model's folder to the cluster's nodes as Ray's working
    directory (default: when ``address`` is given). ``progress(done, total, record)`` after each point;
    ``retry_failed``: run points recorded as failed again.
    """
    t_start = time.time()
    spec_path = Path(spec_path)
    base = load_spec(spec_path)
    out = Path(out)
    # every point validated before anything runs: one bad key or value stops the sweep here
    points = []
    for overrides in grid_points(grid):
        spec = load_spec(spec_path, overrides=overrides)
        points.append({"id": point_id(overrides), "overrides": overrides, "fingerprint": inputs_fingerprint(spec)})
    _check_out(out, base)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / MARKER, {"format": SWEEP_FORMAT, "spec": str(spec_path.resolve())})
    records, todo = [], []
    for p in points:
        rec = _read_record(out / "points" / f"{p['id']}.json")
        keep = rec is not None and rec.get("fingerprint") == p["fingerprint"] and \
            (rec["status"] == "ok" and (out / "points" / p["id"]).is_dir() or
             rec["status"] == "failed" and not retry_failed)
        records.append(rec if keep else {"id": p["id"], "overrides": p["overrides"], "label": label(p["overrides"]),
                                         "status": "pending"})
        if not keep:
            todo.append(p)
    skipped = len(points) - len(todo)
    log(f"sweep of {spec_path}: {len(points)} points ({' x '.join(str(len(v)) for v in grid.values())}), "
        f"{skipped} already done in {out}, {len(todo)} to run")
    index = {p["id"]: i for i, p in enumerate(points)}
    counts = {"ran": 0, "skipped": skipped}

    def write(note: str = "") -> dict:
        doc = sweep_document(spec_path, grid, records, t_start, note, counts)
        atomic_write_json(out / "sweep.json", doc)
        return doc

    note = ""
    if todo:
        from neurocomp.pipeline.cluster import cancel, describe_error, ray_session, system_error_types
        ship = bool(address) if ship is None else ship
        runtime_env = None
        spec_arg = str(spec_path.resolve())
        if ship:
            runtime_env = {"working_dir": str(base.base_dir),
                           "excludes": [".git", "__pycache__", "*.pyc"] + _inside(out, base.base_dir)}
            spec_arg = spec_path.name
        with ray_session(address, workers, runtime_env=runtime_env, log=log) as session:
            ray = session.ray
            note = session.note
            task = ray.remote(num_cpus=1, max_retries=2)(evaluate_point)
            lost_types = system_error_types()
            queue, pending = list(todo), {}
            done = skipped
            if progress:
                progress(done, len(points), None)
            try:
                while queue or pending:
                    while queue and len(pending) < session.concurrency:
                        p = queue.pop(0)
                        pending[task.remote(spec_arg, p["overrides"])] = p
                    ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                    for ref in ready:
                        p = pending.pop(ref)
                        try:
                            result = ray.get(ref)
                        except lost_types as e:    # the cluster lost it: no final record, runs again next time
                            result = {"status": "lost", "error": describe_error(e)}
                        except Exception as e:     # pragma: no cover - evaluate_point catches its own errors
                            result = {"status": "failed", "error": describe_error(e)}
                        rec = _save_point(out, p, result)
                        if rec["status"] == "lost":
                            log(f"point {rec['label']}: lost ({rec['error']}); it runs again when the sweep is resumed")
                            rec["status"] = "pending"
                        records[index[p["id"]]] = rec
                        counts["ran"] += 1
                        done += 1
                        write(note)
                        if rec["status"] == "failed":
                            log(f"point {rec['label']}: failed: {rec['error']}")
                        if progress:
                            progress(done, len(points), rec)
            except BaseException:
                from neurocomp.process import note_handled
                note_handled()               # Ctrl-C reached our clean-up: no re-delivery while Ray ends
                cancel(list(pending))
                raise
    doc = write(note)
    if html:
        from neurocomp.report.sweep_page import render_sweep_html
        atomic_write_bytes(out / "sweep.html", render_sweep_html(doc).encode())
    return doc


def _inside(path: Path, folder: Path) -> list:
    """``path`` relative to ``folder`` as a Ray exclude pattern, if it lies inside it."""
    try:
        rel = path.resolve().relative_to(Path(folder).resolve())
    except ValueError:
        return []
    return [str(rel)] if str(rel) != "." else []


def load_sweep(out) -> dict:
    """``OUT/sweep.json`` of a sweep directory."""
    return read_json(Path(out) / "sweep.json", dict, "sweep result (sweep.json)")


__all__ = ["sweep", "parse_grid", "grid_points", "point_id", "evaluate_point", "pareto_front", "load_sweep"]
