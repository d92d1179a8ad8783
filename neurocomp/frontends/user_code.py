"""Importing the user's own Python files (model factories, Brian2 scripts) — one place, one error form."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from neurocomp.errors import FrontendError


def import_user_file(path) -> object:
    """Import ``path`` as a fresh module, with its folder importable while it runs.

    An exception raised by the user's code becomes a one-line :class:`FrontendError` naming the file.
    """
    path = Path(path)
    name = f"_neurocomp_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FrontendError(f"{path}: cannot import as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except FrontendError:
        raise
    except Exception as e:
        raise FrontendError(f"{path}: error while importing: {type(e).__name__}: {e}") from None
    finally:
        sys.path.remove(str(path.parent))
    return module
