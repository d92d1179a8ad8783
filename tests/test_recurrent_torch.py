"""A recurrent torch network (``neurocomp.nn.RecurrentLIF``) through the one pipeline: the front end
equals the module's own forward pass, and the compile runs it on the stream schedule with the cpu
target equal to Lava spike for spike."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from neurocomp import nn as ncnn
from neurocomp.backends.stream_engine import run_stream
from neurocomp.frontends.torch import module_to_ir
from neurocomp.ir import RateEncoding
from neurocomp.ir.encodings import encode
from neurocomp.ir.schedule import STREAM, Schedule

NET_PY = '''
import torch
from torch import nn
from neurocomp import nn as ncnn


def build():
    """64 pixels -> 24 recurrent LIF (lateral inhibition and excitation) -> 10 LIF."""
    return nn.Sequential(nn.Linear(64, 24, bias=False), ncnn.RecurrentLIF(24, du=0.3, dv=0.1, vth=1.0),
                         nn.Linear(24, 10, bias=False), ncnn.LIF(10, du=0.3, dv=0.1, vth=1.0))
'''


def _fresh():
    return nn.Sequential(nn.Linear(64, 24, bias=False), ncnn.RecurrentLIF(24, du=0.3, dv=0.1, vth=1.0),
                         nn.Linear(24, 10, bias=False), ncnn.LIF(10, du=0.3, dv=0.1, vth=1.0))


def _weights(seed=0):
    """Seeded weights on a 2**-6 grid (float sums stay exact, so float and torch agree bit for bit)."""
    g = torch.Generator().manual_seed(seed)
    q = lambda shape, lo, hi: torch.round((torch.rand(shape, generator=g) * (hi - lo) + lo) * 64) / 64  # noqa: E731
    state = _fresh().state_dict()
    state.update({"0.weight": q((24, 64), -0.25, 0.3), "1.recurrent.weight": q((24, 24), -0.5, 0.25),
                  "2.weight": q((10, 24), -0.5, 0.35)})
    return state


def _module(state):
    m = _fresh()
    m.load_state_dict(state)
    return m.double().eval()


def test_recurrent_lif_front_end_equals_the_modules_forward():
    """The IR (a self-projection on the hidden population) run by the float stream engine gives the
    module's own spikes in every layer, step for step, sample by sample."""
    module = _module(_weights())
    net = module_to_ir(module, 64, "rec", 30, RateEncoding(max_rate=0.6))
    assert [p.name for p in net.recurrent_projections()] == ["lif1_recurrent"] and not net.is_layered
    x = np.random.default_rng(1).random((5, 64))
    spikes = encode(x, net.input.encoding, 30, seed=3)
    with torch.no_grad():
        h_seq = module[0](torch.from_numpy(spikes.astype(np.float64)))
        hidden = module[1](h_seq)
        out = module[3](module[2](hidden))
    for k in range(len(spikes)):   # 2 rest steps: the output (depth 2) finishes the sample's last step
        stream = np.concatenate([spikes[k], np.zeros((2, 64), bool)])
        res = run_stream(net, stream, learn=False, schedule=Schedule(STREAM, 30, rest=2))
        assert np.array_equal(res.spikes["lif1"][0][:30], hidden[k].numpy() > 0), k
        assert np.array_equal(res.spikes["lif3"][0][:30], out[k].numpy() > 0), k
    rate = lambda s: float(s.mean())  # noqa: E731
    assert 0.05 < rate(hidden) < 0.6 and 0.02 < rate(out) < 0.6, (rate(hidden), rate(out))  # neither silent nor saturated


@pytest.mark.slow
def test_recurrent_torch_network_compiles_on_the_stream_schedule_lava_equal_to_cpu(tmp_path):
    from neurocomp.pipeline import compile_model, load_build
    from neurocomp.pipeline.verify import verify_build

    (tmp_path / "net.py").write_text(NET_PY)
    torch.save(_weights(), tmp_path / "weights.pt")
    (tmp_path / "model.yaml").write_text(textwrap.dedent("""
        neurocomp: 1
        name: rec
        source: {kind: torch, factory: net.py:build, weights: weights.pt}
        input: {encoding: rate, max_rate: 0.6, timesteps: 20}
        dataset: {name: digits, holdout: 100}
        learning: {test_samples: 8, rest_steps: 6}
    """))
    report = compile_model(tmp_path / "model.yaml", target="loihi-sim", out=tmp_path / "build")
    assert report["schedule"] == {"kind": "stream", "timesteps": 20, "rest": 6}
    assert report["agreement"]["target_vs_cpu"]["eval_identical_spike_trains"] is True
    assert report["accuracy"]["reference"] == "float" and report["learning"]["test_samples"] == 8
    rep = verify_build(load_build(tmp_path / "build"), samples=4, targets=["float", "cpu", "loihi-sim"])
    assert rep["cpu_matches_loihi_sim"] is True and rep["pairs"]["cpu vs loihi-sim"]["identical"]
    assert all(row["spikes_per_sample"]["cpu"] > 0 for row in rep["layers"])
