"""Files and build directories: atomic writes, safe replacement of a build, and checked reads.

* :func:`atomic_write_bytes` / :func:`atomic_write_json` — a file is complete or absent, never half
  written; permissions follow the umask; JSON never holds NaN/Inf (they become ``null``).
* :func:`atomic_directory` — a whole build directory appears at once (a temporary sibling renamed into
  place). It never deletes what the user put there: the target may be missing, empty, or a previous
  neurocomp build holding only what neurocomp wrote (recognised by the marker :data:`BUILD_MARKER`
  that the swap adds to its ``build.json``: format and the files written; a directory without a
  build.json gets the marker as a hidden :data:`BUILD_MANIFEST` file); any other directory is refused
  unless ``force``.
  The current directory, its parents and the model's own files are refused always. The swap holds an
  ``flock`` on the parent directory (concurrent compiles to one target take turns), defers Ctrl-C, and
  first removes temporaries left by killed compiles (only ours, only when their process is gone).
* :func:`read_json` / :func:`read_build_info` — a build's JSON documents read and checked, every
  problem one line naming the file and the key.
"""
from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import secrets
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from neurocomp.errors import BuildError, one_line

BUILD_FORMAT = "neurocomp-build"
BUILD_MARKER = "neurocomp_build"           # key added to build.json: {"format", "version", "files"}
BUILD_MANIFEST = ".neurocomp-build.json"   # the same marker for a directory without build.json
# written into a build directory later, by other commands' default --out (DIR/run, DIR/energy, DIR/hil)
DERIVED_OUTPUTS = ("run", "energy", "hil", "verify.json")
# what a build written before the manifest existed holds
LEGACY_BUILD_FILES = ("network.npz", "network_float.npz", "network_initial.npz", "build.json", "report.json")
LEGACY_TEMP_AGE_S = 600.0  # a temporary without an owner pid is stale once this old
MAX_JSON_BYTES = 256 << 20


# ------------------------------------------------------------------------------- permissions
def current_umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it (and put it back at once)
    os.umask(mask)
    return mask


def _apply_umask(path: Path, directory: bool) -> None:
    """mkstemp/mkdtemp create 0600/0700; give the file the mode open()/mkdir() would have."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


# ------------------------------------------------------------------------------- temporaries
def _temp_prefix(name: str) -> str:
    return f".{name}.tmp-"


def _temp_name(name: str) -> str:
    return f"{_temp_prefix(name)}{os.getpid()}-{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        return st[st.rindex(")") + 2:].split()[0] != "Z"
    except OSError:
        return True


def _stale_owner_gone(entry: Path, name: str, kind: str) -> bool:
    """``entry`` is one of our temporaries for ``name`` (``kind`` 'tmp' or 'old') whose process is gone."""
    m = re.fullmatch(rf"\.{re.escape(name)}\.{kind}-(\d+)(?:-[0-9a-f]+)?", entry.name)
    if m:
        return not _pid_alive(int(m.group(1)))
    # written before temporaries carried their pid (mkstemp/mkdtemp's 8 random characters)
    if kind == "tmp" and re.fullmatch(rf"\.{re.escape(name)}\.tmp-[a-z0-9_]{{8}}", entry.name):
        try:
            return time.time() - entry.lstat().st_mtime > LEGACY_TEMP_AGE_S
        except OSError:
            return False
    return False


def clean_stale_temporaries(path: Path) -> list:
    """Remove ``.NAME.tmp-*`` / ``.NAME.old-*`` siblings of ``path`` left by a killed neurocomp (only
    those whose process is gone). A ``.NAME.old-*`` is a previous build moved aside mid-swap: it is put
    back when ``path`` itself is missing. Returns the removed names."""
    path = Path(path)
    parent, name = path.parent, path.name
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(f".{name}."):
            continue
        for kind in ("tmp", "old"):
            if entry.name.startswith(f".{name}.{kind}-") and _stale_owner_gone(entry, name, kind):
                try:
                    if kind == "old" and not os.path.lexists(path) and entry.is_dir():
                        os.replace(entry, path)       # the swap was killed between its two renames
                    elif entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                    removed.append(entry.name)
                except OSError:
                    pass
    return removed


# ------------------------------------------------------------------------------- atomic files
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling renamed into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"{path.parent}: cannot create directory ({e.strerror})") from None
    if path.is_dir():
        raise BuildError(f"{path}: is a directory, cannot write a file there")
    tmp = path.parent / _temp_name(path.name)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies as for open()
    except OSError as e:
        raise BuildError(f"{path}: cannot write ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(e, OSError):
            raise BuildError(f"{path}: cannot write ({e.strerror or e})") from None
        raise
    clean_stale_temporaries(path)


def _finite(o):
    """``o`` with every non-finite float (NaN, +-Inf) replaced by ``None`` (JSON ``null``)."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, np.generic):
        return _finite(o.item())
    return o


def _json_default(o):
    if isinstance(o, np.generic):
        return _finite(o.item())
    if isinstance(o, np.ndarray):
        return _finite(o.tolist())
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def to_json(obj) -> str:
    """Indented JSON; NaN and Inf (not JSON) are written as ``null``."""
    return json.dumps(_finite(obj), indent=2, default=_json_default, allow_nan=False)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(Path(path), (to_json(obj) + "\n").encode())


# ------------------------------------------------------------------------------- build directories
def _is_relative_to(a: Path, b: Path) -> bool:
    return a == b or b in a.parents


def _read_small_json(f: Path):
    try:
        if f.stat().st_size > 1 << 20:
            return None
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return None


def _manifest(path: Path) -> Optional[dict]:
    """The marker of a directory neurocomp built: from its build.json, else its hidden manifest."""
    info = _read_small_json(path / "build.json")
    doc = info.get(BUILD_MARKER) if isinstance(info, dict) else None
    if doc is None:
        doc = _read_small_json(path / BUILD_MANIFEST)
    if isinstance(doc, dict) and doc.get("format") == BUILD_FORMAT and isinstance(doc.get("files"), list):
        return doc
    return None


def _legacy_build(path: Path) -> bool:
    """A build written before manifests: build.json naming model, target and dataset, and network.npz."""
    try:
        if (path / "build.json").stat().st_size > 1 << 20 or not (path / "network.npz").is_file():
            return False
        doc = json.loads((path / "build.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and {"model", "target", "dataset"} <= set(doc)


def foreign_entries(path: Path) -> Optional[list]:
    """For a directory neurocomp built: the entries in it that neurocomp did not write (``[]`` = all
    ours). ``None`` when ``path`` is not a neurocomp build at all."""
    path = Path(path)
    doc = _manifest(path)
    if doc is not None:
        ours = set(map(str, doc["files"]))
    elif _legacy_build(path):
        ours = set(LEGACY_BUILD_FILES)
    else:
        return None
    ours |= {BUILD_MANIFEST, *DERIVED_OUTPUTS}
    out = []
    for entry in sorted(os.listdir(path)):
        if entry in ours or re.match(r"\..+\.(tmp|old)-", entry):
            continue
        out.append(entry)
    return out


def is_build_dir(path) -> bool:
    """``path`` is a directory neurocomp built (manifest, or a build.json + network.npz of before)."""
    return Path(path).is_dir() and foreign_entries(path) is not None


def _refuse_unsafe(path: Path, protect: Iterable) -> None:
    """The checks no ``force`` overrides: never replace the current directory or a parent of it,
    nor a directory holding the model's own files."""
    try:
        target = path.resolve()
        cwd = Path.cwd().resolve()
    except (OSError, RuntimeError) as e:
        raise BuildError(f"{path}: cannot resolve the output directory ({e})") from None
    if _is_relative_to(cwd, target):
        raise BuildError(f"{path}: is the current directory or one of its parents; give the build a directory "
                         f"of its own (e.g. build/NAME)")
    for p in protect:
        if p is None:
            continue
        try:
            q = Path(p).resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if _is_relative_to(q, target):
            if q.parent == target:
                what = f"is the model's own folder (it holds {q.name})"
            elif q == target:
                what = "is one of the model's own files"
            else:
                what = f"holds the model's own file {p}"
            raise BuildError(f"{path}: {what}; write the build somewhere else")


def check_output_dir(path, force: bool = False, protect: Iterable = ()) -> None:
    """Raise :class:`BuildError` unless a build may be written to ``path``: missing, empty, or a
    previous neurocomp build holding only what neurocomp wrote — any other directory only with
    ``force``. Never the current directory (or a parent), nor one holding a ``protect`` path."""
    path = Path(path)
    _refuse_unsafe(path, protect)
    if not os.path.lexists(path):
        return
    if not path.is_dir():
        raise BuildError(f"{path}: exists and is not a directory; choose a directory for the build")
    try:
        entries = [e for e in os.listdir(path)]
    except OSError as e:
        raise BuildError(f"{path}: cannot read the output directory ({e.strerror})") from None
    if not entries or force:
        return
    foreign = foreign_entries(path)
    if foreign is None:
        shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
        raise BuildError(f"{path}: directory is not empty and is not a neurocomp build ({len(entries)} "
                         f"{'entry' if len(entries) == 1 else 'entries'}: {shown}); choose another directory or "
                         f"pass --force to replace it")
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise BuildError(f"{path}: this neurocomp build also holds files neurocomp did not write ({shown}); "
                         f"move them away or pass --force to replace the directory")


@contextmanager
def locked_parent(path: Path):
    """An exclusive ``flock`` on ``path``'s parent directory (held by one swap at a time)."""
    parent = Path(path).parent
    fd = os.open(parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _write_manifest(tmp: Path) -> None:
    """Mark ``tmp`` as ours: the marker (format, files written) goes into its build.json, or into a
    hidden manifest file when there is no build.json object."""
    files = sorted(e for e in os.listdir(tmp) if e != BUILD_MANIFEST)
    marker = {"format": BUILD_FORMAT, "version": 1, "files": files}
    info = _read_small_json(tmp / "build.json")
    if isinstance(info, dict):
        atomic_write_json(tmp / "build.json", {**info, BUILD_MARKER: marker})
    else:
        atomic_write_bytes(tmp / BUILD_MANIFEST, (json.dumps(marker, indent=2) + "\n").encode())


@contextmanager
def atomic_directory(path: Path, force: bool = False, protect: Iterable = ()):
    """Yield a temporary sibling directory; on success it replaces ``path`` whole (see
    :func:`check_output_dir` for which ``path`` may be replaced), on error it is removed."""
    from neurocomp.process import signals_deferred

    path = Path(path)
    protect = list(protect)
    if not path.parent.exists():
        check_output_dir(path, force, protect)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"{path.parent}: cannot create directory ({e.strerror})") from None
    with locked_parent(path):   # under the lock: another process may be halfway through its swap
        check_output_dir(path, force, protect)
        clean_stale_temporaries(path)
    tmp = path.parent / _temp_name(path.name)
    try:
        os.mkdir(tmp, 0o777)  # the umask applies as for mkdir
    except OSError as e:
        raise BuildError(f"{path.parent}: cannot create a directory there ({e.strerror})") from None
    try:
        yield tmp
        _write_manifest(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    try:
        with locked_parent(path), signals_deferred():
            clean_stale_temporaries(path)
            check_output_dir(path, force, protect)  # again: another compile may have changed it meanwhile
            if os.path.lexists(path):
                old = path.parent / f".{path.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
                os.replace(path, old)
                try:
                    os.replace(tmp, path)
                except BaseException:
                    os.replace(old, path)
                    old = None
                    raise
            else:
                os.replace(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            hint = " (a mount point or in use?)" if e.errno in (errno.EBUSY, errno.EXDEV) else ""
            raise BuildError(f"{path}: cannot replace the build directory: {e.strerror or e}{hint}") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------- checked reads
def _json_type(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def read_json(path, expect: type = dict, what: str = "JSON document"):
    """Read a JSON file we wrote; a missing, empty, unreadable or malformed file (or one whose top level
    is not ``expect``) raises :class:`BuildError` naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise BuildError(f"{path}: {size} bytes, too large for a {what}")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BuildError(f"{path}: missing (expected the {what})") from None
    except IsADirectoryError:
        raise BuildError(f"{path}: is a directory (expected the {what})") from None
    except OSError as e:
        raise BuildError(f"{path}: cannot read ({e.strerror})") from None
    if not raw.strip():
        raise BuildError(f"{path}: empty file (expected the {what})")
    try:
        doc = json.loads(raw)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise BuildError(one_line(f"{path}: not valid JSON ({e})")) from None
    if expect is not None and not isinstance(doc, expect):
        raise BuildError(f"{path}: the {what} must be {_json_type(expect())}, got {_json_type(doc)}")
    return doc


def check_fields(doc: dict, fields: dict, path, prefix: str = "") -> None:
    """Check that ``doc`` has every key of ``fields`` with a value of the given type (a nested dict of
    fields for an object; a tuple of types; ``int`` never accepts a boolean). Raises :class:`BuildError`
    naming the file and the key."""
    for key, want in fields.items():
        name = f"{prefix}{key}"
        if key not in doc:
            raise BuildError(f"{path}: missing key {name!r}")
        value = doc[key]
        if isinstance(want, dict):
            if not isinstance(value, dict):
                raise BuildError(f"{path}: {name} must be an object, got {_json_type(value)}")
            check_fields(value, want, path, prefix=f"{name}.")
            continue
        types = want if isinstance(want, tuple) else (want,)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not ok:
            allowed = " or ".join(_json_type(t()) if t is not type(None) else "null" for t in types)
            raise BuildError(f"{path}: {name} must be {allowed}, got {_json_type(value)}")


# what run / verify / energy / hil read from build.json
BUILD_INFO_FIELDS = {
    "model": str,
    "target": str,
    "input_seed": int,
    "dataset": {"name": str, "holdout": int, "seed": int, "base_dir": str},
}
STREAM_INFO_FIELDS = {**BUILD_INFO_FIELDS, "spec": str}


def read_build_info(build_dir, fields: Optional[dict] = None) -> dict:
    """``build_dir/build.json`` read and checked against ``fields`` (default :data:`BUILD_INFO_FIELDS`)."""
    path = Path(build_dir) / "build.json"
    info = read_json(path, dict, "build description (build.json)")
    check_fields(info, BUILD_INFO_FIELDS if fields is None else fields, path)
    return info


def require_build_files(build_dir, names: Iterable[str] = ("network.npz", "build.json")) -> Path:
    """``build_dir`` exists and holds ``names``; otherwise one line saying what is missing."""
    build_dir = Path(build_dir)
    if not build_dir.is_dir():
        raise BuildError(f"{build_dir}: not a neurocomp build directory (no such directory; run "
                         f"'neurocomp compile' first)")
    missing = [n for n in names if not (build_dir / n).is_file()]
    if missing:
        raise BuildError(f"{build_dir}: not a neurocomp build directory (no {', '.join(missing)}; "
                         f"run 'neurocomp compile' first)")
    return build_dir
