"""The Brian2 reference's code generation target: long runs use Brian2's cython target where Cython and a
C compiler work (``reference_codegen``), it replays exactly what numpy does, and a target that fails
before the first step falls back to numpy."""
from __future__ import annotations

import numpy as np
import pytest

import neurocomp.backends.brian2_reference as brian2_reference
from conftest import write_small_diehl_cook
from neurocomp.frontends.brian2 import load_brian2
from neurocomp.spec import load_spec


def test_long_runs_choose_cython_only_where_it_works(monkeypatch, tmp_path):
    short, long = brian2_reference.CYTHON_MIN_STEPS - 1, brian2_reference.CYTHON_MIN_STEPS
    assert brian2_reference.reference_codegen(short) == "numpy"
    works = brian2_reference.cython_problem() is None
    assert brian2_reference.reference_codegen(long) == ("cython" if works else "numpy")
    monkeypatch.setenv("PATH", str(tmp_path))      # no compiler anywhere
    monkeypatch.delenv("CC", raising=False)
    assert "C compiler" in brian2_reference.cython_problem()
    assert brian2_reference.reference_codegen(long) == "numpy"


def _replay(spec, stream, codegen):
    session = brian2_reference.Brian2Session(load_brian2(spec), codegen=codegen)
    learned = session.run_stream(stream[:230], learn=True)
    frozen = session.run_stream(stream[230:], learn=False)
    return session, learned, frozen, session.weights()


def _assert_same(a, b):
    for x, y in zip(a[1:3], b[1:3]):
        assert x.keys() == y.keys()
        for group in x:
            assert np.array_equal(x[group], y[group]), group
    for name, w in a[3].items():
        np.testing.assert_allclose(w, b[3][name], rtol=1e-9, atol=1e-12, err_msg=name)


def _stream(spec):
    n_in = load_brian2(spec).network.input.size
    return np.random.default_rng(3).random((330, n_in)) < 0.25


def test_a_target_that_fails_before_the_first_step_falls_back_to_numpy(tmp_path):
    spec = load_spec(write_small_diehl_cook(tmp_path / "dc"))
    stream = _stream(spec)
    numpy = _replay(spec, stream, "numpy")
    broken = _replay(spec, stream, "no-such-target")
    assert broken[0].codegen == "numpy" and "no-such-target failed" in broken[0].fallback
    _assert_same(numpy, broken)
    assert sum(int(t.sum()) for t in numpy[1].values()) > 50        # the network really fired


@pytest.mark.slow
@pytest.mark.skipif(brian2_reference.cython_problem() is not None, reason="no Cython or C compiler")
def test_cython_reference_replays_what_numpy_does(tmp_path):
    spec = load_spec(write_small_diehl_cook(tmp_path / "dc"))
    stream = _stream(spec)
    cython = _replay(spec, stream, "cython")
    assert cython[0].codegen == "cython" and cython[0].fallback is None
    _assert_same(_replay(spec, stream, "numpy"), cython)
