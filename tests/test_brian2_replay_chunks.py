"""The Brian2 reference replays a long input stream in chunks (``REPLAY_CHUNK`` steps per Brian2 run, to
avoid Brian2's per-step cost growing with the whole stream): chunked and one-run replays give the same
spikes of every group and the same learned weights, with chunk boundaries inside samples."""
from __future__ import annotations

import numpy as np

import neurocomp.backends.brian2_reference as brian2_reference
from conftest import write_small_diehl_cook
from neurocomp.frontends.brian2 import load_brian2
from neurocomp.spec import load_spec


def _replay(spec, stream, chunk, monkeypatch):
    monkeypatch.setattr(brian2_reference, "REPLAY_CHUNK", chunk)
    session = brian2_reference.Brian2Session(load_brian2(spec))
    learned = session.run_stream(stream[:230], learn=True)
    frozen = session.run_stream(stream[230:], learn=False)
    return learned, frozen, session.weights()


def test_chunked_replay_equals_one_run(tmp_path, monkeypatch):
    spec = load_spec(write_small_diehl_cook(tmp_path / "dc"))
    n_in = load_brian2(spec).network.input.size
    stream = np.random.default_rng(3).random((330, n_in)) < 0.25
    whole = _replay(spec, stream, 10 ** 9, monkeypatch)
    chunked = _replay(spec, stream, 37, monkeypatch)
    for a, b in zip(whole[:2], chunked[:2]):
        assert a.keys() == b.keys()
        for group in a:
            assert np.array_equal(a[group], b[group]), group
    assert sum(int(t.sum()) for t in whole[0].values()) > 50        # the network really fired
    for name, w in whole[2].items():
        assert np.array_equal(w, chunked[2][name]), name
    assert any(not np.array_equal(w, load_brian2(spec).network.projection(name).synapse.weight)
               for name, w in whole[2].items())                      # ... and learned
