"""Target descriptors: one YAML per target/device under ``targets/``, each number with its source.

A descriptor may ``inherits:`` another (loihi-sim and cpu inherit loihi2's number formats). This
module reads them; the backends in ``neurocomp.backends`` run networks on them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

import yaml

from neurocomp.errors import TargetError

TARGETS_DIR = Path(os.environ.get("NEUROCOMP_TARGETS", Path(__file__).resolve().parents[1] / "targets"))


def descriptor_path(name: str) -> Path:
    return TARGETS_DIR / f"{name}.yaml"


def available_descriptors() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.yaml"))


def is_descriptor_path(name_or_path) -> bool:
    """A ``.yaml`` file path (as opposed to the name of a descriptor in ``targets/``)."""
    s = str(name_or_path)
    return s.endswith((".yaml", ".yml")) or os.sep in s


def load_descriptor(name_or_path, _seen: tuple = ()) -> Dict[str, Any]:
    """The descriptor named ``name`` in ``targets/`` — or read from a ``.yaml`` path — with
    inherited keys merged in (own keys win)."""
    if is_descriptor_path(name_or_path):
        path = Path(name_or_path)
        if not path.is_file():
            raise TargetError(f"{path}: descriptor file not found")
    else:
        path = descriptor_path(name_or_path)
        if not path.is_file():
            raise TargetError(f"unknown target {name_or_path!r}; allowed: {', '.join(available_descriptors())}")
    key = str(path.resolve())
    if key in _seen:
        raise TargetError(f"{path}: inherits: cycle through {' -> '.join(Path(k).stem for k in _seen + (key,))}")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise TargetError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise TargetError(f"{path}: must be a YAML mapping")
    parent = doc.pop("inherits", None)
    if parent:
        base = load_descriptor(parent, _seen + (key,))
        base.update(doc)
        doc = base
    doc["name"] = path.stem if not is_descriptor_path(name_or_path) else doc.get("name", path.stem)
    doc.setdefault("_path", str(path))
    return doc


@dataclass(frozen=True)
class FixedPointFormat:
    """The number formats a fixed-point target offers (see targets/loihi2.yaml)."""

    weight_bits: int
    weight_exp_min: int
    weight_exp_max: int
    uv_bits: int
    decay_bits: int
    vth_bits: int
    vth_shift: int
    act_shift: int
    bias_mant_bits: int
    bias_exp_min: int
    bias_exp_max: int

    def netx_compatible(self) -> "FixedPointFormat":
        """The part of this format a lava-dl netx file can express: ``weight_exp`` 0 (netx stores the
        per-spike integer weights, 8-bit) and ``bias_exp`` 6 (netx reads biases as ``mant << 6``)."""
        from dataclasses import replace
        return replace(self, weight_exp_min=0, weight_exp_max=0, bias_exp_min=6, bias_exp_max=6)

    @classmethod
    def from_descriptor(cls, desc: Dict[str, Any]) -> "FixedPointFormat":
        fp = desc.get("fixed_point")
        where = desc.get("_path", desc.get("name"))
        if not isinstance(fp, dict):
            raise TargetError(f"{where}: target {desc.get('name')!r} has no fixed_point section (it is not a fixed-point target)")

        def val(key, field="value"):
            try:
                v = fp[key][field]
            except (KeyError, TypeError):
                raise TargetError(f"{where}: fixed_point.{key}.{field} missing") from None
            if not isinstance(v, int) or isinstance(v, bool):
                raise TargetError(f"{where}: fixed_point.{key}.{field} must be an integer, got {v!r}")
            return v

        return cls(
            weight_bits=val("weight_bits"), weight_exp_min=val("weight_exp", "min"),
            weight_exp_max=val("weight_exp", "max"), uv_bits=val("uv_bits"), decay_bits=val("decay_bits"),
            vth_bits=val("vth_bits"), vth_shift=val("vth_shift"), act_shift=val("act_shift"),
            bias_mant_bits=val("bias_mant_bits"), bias_exp_min=val("bias_exp", "min"),
            bias_exp_max=val("bias_exp", "max"))
