"""Fuzz the model.yaml loader: whatever the document, ``load_spec`` answers with a spec or one
:class:`SpecError` line — never another exception, never a hang, never a multi-line or huge message.

Four sources of documents: arbitrary YAML values, a valid spec with one key set to a value of a random
type, arbitrary text, and a valid spec's text with random edits.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_tiny_model
from neurocomp.errors import SpecError
from neurocomp.spec import COMPILE_TARGETS, ModelSpec, load_spec

# NEUROCOMP_FUZZ_EXAMPLES=5000 for a deeper search than the suite's
FUZZ = settings(max_examples=int(os.environ.get("NEUROCOMP_FUZZ_EXAMPLES", 250)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=30))
keys = st.text(max_size=12) | st.integers(-5, 5) | st.booleans() | st.none()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
                      max_leaves=25)

KEY_PATHS = [
    ("neurocomp",), ("name",), ("target",), ("source",), ("source", "kind"), ("source", "factory"),
    ("source", "weights"), ("source", "kwargs"), ("input",), ("input", "encoding"), ("input", "timesteps"),
    ("input", "max_rate"), ("input", "threshold"), ("input", "seed"), ("dataset",), ("dataset", "name"),
    ("dataset", "holdout"), ("dataset", "seed"), ("dataset", "classes"), ("quantize",), ("quantize", "weight_bits"),
    ("quantize", "headroom"), ("quantize", "calibration_samples"), ("verify",), ("verify", "samples"),
    ("verify", "lava_seconds"), ("learning",), ("learning", "samples"), ("learning", "rest_steps"),
    ("extra_key",), ("input", "extra_key"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("fuzz") / "model")


def _base(folder: Path) -> dict:
    return yaml.safe_load((folder / "model.yaml").read_text())


def _check(path: Path):
    """load_spec's contract: a ModelSpec, or a SpecError whose message is one short line naming the file."""
    t0 = time.perf_counter()
    try:
        spec = load_spec(path)
    except SpecError as e:
        msg = str(e)
        assert "\n" not in msg and len(msg) < 400 + len(str(path)), msg[:1000]
        assert msg.startswith(str(path)), msg[:300]
        spec = None
    assert time.perf_counter() - t0 < 5
    return spec


def _assert_sane(spec: ModelSpec) -> None:
    """A spec that loads has values of the right types (no bool taken for a number, no NaN)."""
    for name in ("timesteps", "seed"):
        v = getattr(spec.input, name)
        assert type(v) is int and v >= 0
    assert spec.input.timesteps >= 1
    assert type(spec.dataset.holdout) is int and spec.dataset.holdout >= 1
    assert spec.verify.samples == "auto" or (type(spec.verify.samples) is int and spec.verify.samples >= 1)
    for v in (spec.input.max_rate, spec.input.threshold, spec.quantize.headroom, spec.verify.lava_seconds):
        assert isinstance(v, float) and math.isfinite(v)
    assert spec.target in COMPILE_TARGETS
    assert spec.name not in (".", "..")


@FUZZ
@given(doc=values)
def test_any_yaml_value(folder, doc):
    path = folder / "fuzz_any.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert _check(path) is None or isinstance(doc, dict)


@FUZZ
@given(where=st.sampled_from(KEY_PATHS), value=values)
def test_one_key_of_a_valid_spec_set_to_anything(folder, where, value):
    doc = _base(folder)
    node = doc
    for k in where[:-1]:
        node = node.setdefault(k, {}) if isinstance(node.get(k, {}), dict) else {}
    node[where[-1]] = value
    path = folder / "fuzz_key.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    spec = _check(path)
    if spec is not None:
        _assert_sane(spec)


@FUZZ
@given(text=st.text(max_size=400))
def test_any_text(folder, text):
    path = folder / "fuzz_text.yaml"
    path.write_text(text)
    _check(path)


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3),
                                st.sampled_from(list(":{}[],&*!|>-'\"#%@` \n\t\x00\\") + ["\u2028", "? ", "<<: "])),
                      min_size=1, max_size=6))
def test_a_valid_spec_with_random_edits(folder, edits):
    text = (folder / "model.yaml").read_text()
    for pos, cut, insert in edits:
        pos %= len(text) + 1
        text = text[:pos] + insert + text[pos + cut:]
    path = folder / "fuzz_edit.yaml"
    path.write_text(text)
    spec = _check(path)
    if spec is not None:
        _assert_sane(spec)


def test_the_base_spec_loads(folder):
    spec = _check(folder / "model.yaml")
    assert spec is not None and spec.input.timesteps == 8
