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


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    """A model folder for sklearn digits (64 inputs): factory file, real state_dict, model.yaml."""
    (tmp_path / "net.py").write_text(textwrap.dedent("""
        from torch import nn
        from neurocomp.nn import LIF

        def build(hidden=16):
            return nn.Sequential(nn.Linear(64, hidden, bias=False), LIF(hidden, du=0.25, dv=0.1),
                                 nn.Linear(hidden, 10, bias=False), LIF(10, du=0.25, dv=0.1))
    """))
    torch.manual_seed(0)
    from torch import nn
    from neurocomp.nn import LIF
    model = nn.Sequential(nn.Linear(64, 16, bias=False), LIF(16, du=0.25, dv=0.1),
                          nn.Linear(16, 10, bias=False), LIF(10, du=0.25, dv=0.1))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "model.yaml").write_text(textwrap.dedent("""
        neurocomp: 1
        name: tiny
        source: {kind: torch, factory: net.py:build, weights: weights.pt}
        input: {encoding: rate, timesteps: 8}
        dataset: {name: digits, holdout: 100}
        quantize: {calibration_samples: 20}
        verify: {samples: 3}
    """))
    return tmp_path
