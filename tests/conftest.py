"""Shared fixtures: small real networks and model folders built in tmp dirs."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("PYTHONWARNINGS", "ignore")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def hypothesis_draws_from_strategies_only(monkeypatch):
    """Hypothesis (>= 6.131) also draws integer constants it finds in every imported local module, and
    caches them on first use, so a property test's examples would depend on which tests ran before it
    (the whole suite gave test_stream_jit other examples than that file alone, and once none that a
    mutant changed). Coverage counters and mutation checks must see the same examples wherever they
    run: every test draws from its strategies alone (their own edge values included)."""
    try:
        from hypothesis.internal.cache import LRUCache
        from hypothesis.internal.conjecture import providers
        from sortedcontainers import SortedSet
        empty = providers.Constants(integers=SortedSet(), floats=SortedSet(key=providers.float_to_int),
                                    bytes=SortedSet(), strings=SortedSet())
        providers._get_local_constants, providers.CONSTANTS_CACHE      # noqa: B018 (present?)
    except (ImportError, AttributeError):      # a Hypothesis without local constants
        return
    monkeypatch.setattr(providers, "_get_local_constants", lambda: empty)
    monkeypatch.setattr(providers, "CONSTANTS_CACHE", LRUCache(1024))


def write_tiny_model(d: Path, hidden: int = 16, vth: float = 1.0, gain: float = 1.0, seed: int = 0,
                     timesteps: int = 8, holdout: int = 100) -> Path:
    """A model folder for sklearn digits (64 inputs): factory file, real state_dict, model.yaml.

    ``gain`` scales torch's default initial weights, so small untrained nets still spike."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "net.py").write_text(textwrap.dedent(f"""
        from torch import nn
        from neurocomp.nn import LIF

        def build(hidden={hidden}):
            return nn.Sequential(nn.Linear(64, hidden, bias=False), LIF(hidden, du=0.25, dv=0.1, vth={vth}),
                                 nn.Linear(hidden, 10, bias=False), LIF(10, du=0.25, dv=0.1, vth={vth}))
    """))
    from torch import nn
    from neurocomp.nn import LIF
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, hidden, bias=False), LIF(hidden, du=0.25, dv=0.1, vth=vth),
                          nn.Linear(hidden, 10, bias=False), LIF(10, du=0.25, dv=0.1, vth=vth))
    with torch.no_grad():
        model[0].weight.mul_(gain)
        model[2].weight.mul_(gain)
    torch.save(model.state_dict(), d / "weights.pt")
    (d / "model.yaml").write_text(textwrap.dedent(f"""
        neurocomp: 1
        name: tiny
        source: {{kind: torch, factory: net.py:build, weights: weights.pt}}
        input: {{encoding: rate, timesteps: {timesteps}}}
        dataset: {{name: digits, holdout: {holdout}}}
        quantize: {{calibration_samples: 20}}
        verify: {{samples: 3}}
    """))
    return d


def write_small_diehl_cook(d: Path, test_samples: int = 12) -> Path:
    """models/diehl_cook shrunk to seconds (10 neurons, 16 training digits): its model.yaml in ``d``."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.yaml").write_text(textwrap.dedent(f"""
        neurocomp: 1
        name: dc_small
        source: {{kind: brian2, script: {REPO / 'models/diehl_cook/net.py'}, kwargs: {{n_exc: 10}}}}
        input: {{encoding: rate, max_rate: 0.5, timesteps: 15}}
        dataset: {{name: digits, holdout: 100}}
        learning: {{samples: 16, label_samples: 12, test_samples: {test_samples}, rest_steps: 5}}
    """))
    return d / "model.yaml"


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path)


def quantize_stream(net, fmt, stream, headroom=2.0, seed=0):
    """The one quantiser on a raw calibration stream ``[steps, n_in]`` (one sample of all its steps):
    calibrate, quantise every population, then every learning rule."""
    from neurocomp.ir.schedule import STREAM, Schedule
    from neurocomp.passes import quantize
    return quantize(net, fmt, stream[None], Schedule(STREAM, len(stream)), headroom=headroom, seed=seed)


def learn_open_loop(proj, stream, post, rule=None):
    """Loihi's learning engine (``rule``, default the projection's own) on given spike trains, open loop:
    ``stream`` [steps, n_pre] and ``post`` [steps, n_post] bool; returns the learned integer weights."""
    from neurocomp.backends.learning_engine import LoihiLearningEngine
    eng = LoihiLearningEngine(rule or proj.plasticity, *proj.synapse.shape, proj.synapse.sign_mode)
    w = proj.synapse.weight.astype(np.int64).copy()
    for t in range(len(stream)):
        w = eng.step(t + 1, w, stream[t], post[t])
    return w
