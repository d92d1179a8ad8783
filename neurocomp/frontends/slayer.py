"""lava-dl slayer front end: ``slayer.block.cuba.Dense`` blocks -> float IR (LIF + Dense)."""
from __future__ import annotations

from neurocomp.errors import FrontendError


def is_slayer_block(mod) -> bool:
    try:
        from lava.lib.dl.slayer.block.cuba import Dense as CubaDense
    except ImportError:
        return False
    return isinstance(mod, CubaDense)


def block_to_ir(path, block, prev, prev_size):
    raise FrontendError(f"module {path!r}: slayer blocks are not mapped yet")
