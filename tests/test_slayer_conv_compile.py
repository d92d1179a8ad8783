"""A lava-dl slayer conv network, trained with slayer's own loop (Assistant, SpikeRate loss), compiles
through the one pipeline: conv, pool, flatten and dense blocks in netx's integer units, cpu equal to
Lava, and the float IR keeps slayer's own accuracy."""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

NET_PY = '''
import torch
import lava.lib.dl.slayer as slayer

NEURON = {"threshold": 1.25, "current_decay": 0.25, "voltage_decay": 0.03, "tau_grad": 0.03,
          "scale_grad": 3, "requires_grad": False}


class ConvNet(torch.nn.Module):
    """1x8x8 digits -> 6C3 (padding 1, stride 2) -> flatten -> 10, slayer's [batch, C, H, W, time].
    (Pool blocks map too — tests/test_conv_frontends.py — but trained here they starve the output.)"""

    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList([
            slayer.block.cuba.Conv(dict(NEURON), 1, 6, 3, padding=1, stride=2, weight_norm=True, delay_shift=False),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(dict(NEURON), 6 * 4 * 4, 10, weight_norm=True, delay_shift=False),
        ])

    def forward(self, spikes):
        for block in self.blocks:
            spikes = block(spikes)
        return spikes


def build():
    return ConvNet()
'''


@pytest.mark.slow
def test_slayer_conv_network_trained_by_slayer_compiles_lava_equal_to_cpu(tmp_path):
    import importlib.util

    import torch
    import lava.lib.dl.slayer as slayer

    from neurocomp.data import load_split
    from neurocomp.ir import RateEncoding
    from neurocomp.ir.encodings import encode
    from neurocomp.pipeline import compile_model

    (tmp_path / "net.py").write_text(NET_PY)
    spec = importlib.util.spec_from_file_location("slayer_conv_net", tmp_path / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    net = mod.build()
    T = 16
    split = load_split("digits", holdout=200, seed=0)

    def layout(x):   # neurocomp [batch, time, 64] -> slayer [batch, 1, 8, 8, time]
        return torch.tensor(x.transpose(0, 2, 1).reshape(len(x), 1, 8, 8, T), dtype=torch.float32)

    error = slayer.loss.SpikeRate(true_rate=0.3, false_rate=0.03, reduction="sum")
    stats = slayer.utils.LearningStats()
    assistant = slayer.utils.Assistant(net, error, torch.optim.Adam(net.parameters(), lr=0.01), stats,
                                       classifier=slayer.classifier.Rate.predict)
    y = torch.tensor(split.y_train)
    for epoch in range(6):
        x = layout(encode(split.x_train[:600], RateEncoding(1.0), T, seed=100 + epoch))
        for i in range(0, 600, 50):
            assistant.train(x[i:i + 50], y[i:i + 50])
    torch.save(net.state_dict(), tmp_path / "weights.pt")
    x_test = encode(split.x_test, RateEncoding(1.0), T, seed=0)
    with torch.no_grad():
        slayer_acc = float((slayer.classifier.Rate.predict(net(layout(x_test))) ==
                            torch.tensor(split.y_test)).float().mean())
    assert slayer_acc > 0.5, slayer_acc     # it learned something: the comparison below means something

    (tmp_path / "model.yaml").write_text(textwrap.dedent(f"""
        neurocomp: 1
        name: slayer_conv
        source: {{kind: slayer, factory: net.py:build, weights: weights.pt}}
        input: {{encoding: rate, max_rate: 1.0, timesteps: {T}}}
        dataset: {{name: digits, holdout: 200}}
        verify: {{samples: 4}}
    """))
    report = compile_model(tmp_path / "model.yaml", target="loihi-sim", out=tmp_path / "build")
    assert report["agreement"]["target_vs_cpu"]["identical_spike_trains"] == 1.0
    acc = report["accuracy"]
    assert abs(acc["float"] - slayer_acc) <= 0.03, (acc, slayer_acc)
    assert abs(acc["cpu"] - acc["float"]) <= 0.03, acc
    kinds = {json.dumps(row["weight_exp"]) for row in report["layers"]}
    assert kinds and np.isfinite([row["scale"] for row in report["layers"]]).all()
