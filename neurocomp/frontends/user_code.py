"""Running the user's own Python (model factories, Brian2 scripts) — one place, one error form.

Whatever the user's code does — raise, call ``sys.exit()``, take other arguments than the spec's
``kwargs`` — becomes one :class:`FrontendError` line naming the file (and function), exit 2. Only a
real interrupt (``KeyboardInterrupt``) goes through untouched.
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable, Optional

from neurocomp.errors import FrontendError, one_line


def describe_exception(e: BaseException) -> str:
    """``Type: first line of the message`` (the type alone when the message is empty)."""
    if isinstance(e, SystemExit):
        return f"called sys.exit({e.code!r})"
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def import_user_file(path) -> object:
    """Import ``path`` as a fresh module, with its folder importable while it runs.

    An exception (or ``sys.exit``) in the user's code becomes a one-line :class:`FrontendError`
    naming the file.
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
    except (Exception, SystemExit) as e:
        sys.modules.pop(name, None)
        raise FrontendError(one_line(f"{path}: error while importing: {describe_exception(e)}")) from None
    finally:
        try:
            sys.path.remove(str(path.parent))
        except ValueError:
            pass
    return module


def check_call(fn: Callable, kwargs: dict, where: str, kwargs_key: str = "source.kwargs") -> None:
    """Refuse, before calling it, a function that cannot take ``kwargs`` (unknown or missing
    arguments), naming ``where`` and what the function does take."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: the call itself will tell
        return
    try:
        sig.bind(**kwargs)
    except TypeError as e:
        takes = ", ".join(p.name for p in sig.parameters.values()
                          if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)) or "no arguments"
        given = ", ".join(kwargs) or "none"
        raise FrontendError(one_line(f"{where}: cannot be called with {kwargs_key} ({given}): {e}; it takes: "
                                     f"{takes}")) from None


def call_user(fn: Callable, kwargs: Optional[dict], where: str, kwargs_key: str = "source.kwargs"):
    """``fn(**kwargs)`` for a user function: a signature mismatch, an exception or ``sys.exit`` in it is
    one :class:`FrontendError` line naming ``where`` (e.g. ``source.factory: net.py:build``)."""
    kwargs = dict(kwargs or {})
    check_call(fn, kwargs, where, kwargs_key)
    try:
        return fn(**kwargs)
    except FrontendError:
        raise
    except (Exception, SystemExit) as e:
        raise FrontendError(one_line(f"{where}: {describe_exception(e)}")) from None
