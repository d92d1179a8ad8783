"""ANN -> SNN conversion (source kind ``ann``): the mapping proven against torch's own forward pass, the
data-based normalisation against activations read from the module with hooks, the converted network
against the ANN's rates, the reset what-if against the float target, and the one-line refusals."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn

from neurocomp.errors import FrontendError
from neurocomp.frontends import ann
from neurocomp.ir import CurrentEncoding, RateEncoding, encode
from neurocomp.ir.encodings import SinusoidEncoding
from neurocomp.ir.schedule import BATCHED, Schedule


def _randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters (inference mode)."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


ARCHS = {
    "mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 20), nn.ReLU(), nn.Dropout(0.3), nn.Linear(20, 10)),
    "mlp_bn_after": lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                          nn.Linear(16, 10)),
    "mlp_bn_before": lambda: nn.Sequential(nn.Flatten(), nn.BatchNorm1d(64), nn.Linear(64, 16), nn.ReLU(),
                                           nn.BatchNorm1d(16), nn.Linear(16, 10), nn.ReLU()),
    "lenet": lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(4, 6, 2),
                                   nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 2 * 2, 10)),
    "conv_pool_relu": lambda: nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.AvgPool2d(2), nn.ReLU(),
                                            nn.Flatten(), nn.Linear(3 * 4 * 4, 12), nn.ReLU(), nn.Linear(12, 10)),
}


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(arch=st.sampled_from(sorted(ARCHS)), seed=st.integers(0, 2 ** 31 - 1))
def test_converted_layers_compute_the_modules_own_forward(arch, seed):
    """The composed layers (one synapse + bias per ReLU) applied in float64 equal torch's forward of the
    module itself, for random weights and BatchNorm statistics."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ARCHS[arch]().eval()
    _randomise_bn(model, gen)
    x = torch.rand((30, 1, 8, 8), generator=gen, dtype=torch.float64)
    layers = ann.ann_layers(model, (1, 8, 8))
    ours = ann.ann_forward(layers, x.reshape(30, -1).numpy())[-1]
    with torch.no_grad():
        theirs = model.double()(x).numpy()
    if layers[-1].relu:
        theirs = np.maximum(theirs, 0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
    assert ann.check_forward(layers, model.float(), x.reshape(30, -1).numpy(), (1, 8, 8)) < 1e-4


def _relu_activations(model: nn.Module, x: torch.Tensor) -> list:
    """Every ReLU's output and the model's output, read with forward hooks (no neurocomp code)."""
    seen = []
    hooks = [m.register_forward_hook(lambda mod, i, o: seen.append(o.detach().reshape(len(x), -1).double().numpy()))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        out = model(x).reshape(len(x), -1).double().numpy()
    for h in hooks:
        h.remove()
    return seen + [out]


@pytest.mark.parametrize("normalize,percentile", [("max", 99.9), ("percentile", 99.0), ("percentile", 99.9)])
def test_normalisation_lambdas_and_scaled_weights(normalize, percentile):
    """lambda_l is the max / percentile of layer l's nonzero activations on the samples (read from the
    module with hooks); weights become W * lambda_{l-1} / lambda_l, biases b / lambda_l, thresholds the
    threshold scale, every neuron integrate-and-fire (du=1, dv=0)."""
    torch.manual_seed(1)
    model = ARCHS["lenet"]().eval()
    x = torch.rand((200, 1, 8, 8))
    layers = ann.ann_layers(model, (1, 8, 8))
    net, details = ann.convert(layers, x.reshape(200, -1).double().numpy(), "t", 10, CurrentEncoding(8), (1, 8, 8),
                               normalize, percentile, threshold_scale=1.5)
    acts = _relu_activations(model, x)
    want = []
    for a in acts:
        pos = a[a > 0]
        want.append(pos.max() if normalize == "max" else np.percentile(pos, percentile))
    got = [row["lambda"] for row in details["layers"]]
    np.testing.assert_allclose(got, want, rtol=1e-5)
    prev = 1.0
    for layer, proj, pop, lam in zip(layers, net.projections, net.populations, got):
        np.testing.assert_allclose(proj.synapse.weight, layer.synapse.weight * prev / lam, rtol=1e-12)
        np.testing.assert_allclose(pop.neuron.bias, (layer.bias if layer.bias is not None else 0) / lam, rtol=1e-12)
        assert (pop.neuron.du, pop.neuron.dv, pop.neuron.vth) == (1.0, 0.0, 1.5)
        prev = lam
    # a rate code's spikes stand for 1 / max_rate of a pixel
    net_r, det_r = ann.convert(layers, x.reshape(200, -1).double().numpy(), "t", 10, RateEncoding(0.5), (1, 8, 8),
                               normalize, percentile)
    assert det_r["input_lambda"] == 2.0
    np.testing.assert_allclose(net_r.projections[0].synapse.weight, layers[0].synapse.weight * 2.0 / got[0])
    # a sinusoid code's white pixel spikes max_freq * dt times per step (here 0.25: lambda 4)
    net_s, det_s = ann.convert(layers, x.reshape(200, -1).double().numpy(), "t", 10, SinusoidEncoding(250.0),
                               (1, 8, 8), normalize, percentile)
    assert det_s["input_lambda"] == pytest.approx(4.0)
    np.testing.assert_allclose(net_s.projections[0].synapse.weight, layers[0].synapse.weight * 4.0 / got[0])


def test_converted_rates_follow_the_ann_activations():
    """With reset by subtraction and many steps, each layer's IF rate is its ANN activation / lambda
    (clipped to [0, 1]) to within the rate resolution — the mapping (weights, biases, thresholds,
    one-step delays) is the ANN's. Output spike counts / T against the ANN's normalised output."""
    from neurocomp.pipeline.conversion import simulate_if
    torch.manual_seed(2)
    model = ARCHS["mlp"]().eval()
    x = torch.rand((40, 1, 8, 8)).reshape(40, -1).double().numpy()
    layers = ann.ann_layers(model, (1, 8, 8))
    net, details = ann.convert(layers, x, "t", 400, CurrentEncoding(12), (1, 8, 8), "max", 100.0)
    T = 400
    levels = encode(x, net.input.encoding, T)
    counts = simulate_if(net, levels, reset="subtract")
    pixels = levels[:, 0].astype(np.float64) / net.input.encoding.levels
    ann_out = ann.ann_forward(layers, pixels)[-1] / details["layers"][-1]["lambda"]
    np.testing.assert_allclose(counts / T, np.clip(ann_out, 0, 1), atol=0.04)


def test_reset_to_zero_what_if_equals_the_float_target():
    """simulate_if(reset='zero') is the float target's own dynamics (the what-if differs only in the
    reset): same output spike counts on a converted conv network."""
    from neurocomp.backends import get_backend
    from neurocomp.pipeline.conversion import simulate_if
    torch.manual_seed(3)
    model = ARCHS["lenet"]().eval()
    x = torch.rand((25, 1, 8, 8)).reshape(25, -1).double().numpy()
    layers = ann.ann_layers(model, (1, 8, 8))
    net, _ = ann.convert(layers, x, "t", 20, CurrentEncoding(8), (1, 8, 8), "percentile", 99.0)
    levels = encode(x, net.input.encoding, 20)
    res = get_backend("float").run(net, levels, Schedule(BATCHED, 20))
    assert np.array_equal(simulate_if(net, levels, reset="zero"), res.counts[net.output])
    assert res.counts[net.output].sum() > 0
    assert not np.array_equal(simulate_if(net, levels, reset="subtract"), res.counts[net.output])


@pytest.mark.parametrize("bad,message", [
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 10)),
     "module '2': nn.MaxPool2d cannot be converted: max pooling"),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Sigmoid(), nn.Linear(10, 10)),
     "module '2': nn.Sigmoid cannot be converted: only nn.ReLU"),
    (lambda: nn.Sequential(nn.Flatten(), nn.ReLU(), nn.Linear(64, 10)),
     "module '1': nn.ReLU without an nn.Linear or nn.Conv2d before it"),
    (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Linear(10, 10)),
     "module '2': nn.Linear after '1' without a ReLU"),
    (lambda: nn.Sequential(nn.Flatten(), nn.LSTM(64, 10)), "layer type LSTM cannot be converted"),
])
def test_unconvertible_layers_are_named(bad, message):
    with pytest.raises(FrontendError, match=message.replace("(", r"\(").replace(".", r"\.")):
        ann.ann_layers(bad().eval(), (1, 8, 8))


def test_spiking_layer_is_sent_to_kind_torch():
    from neurocomp.nn import LIF
    with pytest.raises(FrontendError, match="already an SNN; use source.kind: torch"):
        ann.ann_layers(nn.Sequential(nn.Flatten(), nn.Linear(64, 10), LIF(10)).eval(), (1, 8, 8))


class _Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.fc2(self.relu(self.fc1(x)) + x)     # a skip connection: not the layers in order


def test_forward_that_is_not_the_layers_is_refused():
    model = _Skip().eval()
    x = np.random.default_rng(0).random((20, 64))
    layers = ann.ann_layers(model, (1, 8, 8))
    with pytest.raises(FrontendError, match="differs from its layers applied in registration order"):
        ann.check_forward(layers, model, x, (1, 8, 8))


# ----------------------------------------------------------------------------- model.yaml, CLI
NET_PY = '''
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 10))
'''


def write_ann_model(d, max_pool: bool = False, extra: str = "", train_steps: int = 300):
    """A small ReLU CNN trained on sklearn digits for a few hundred steps (seconds), its model.yaml."""
    from neurocomp.data import load_split
    d.mkdir(parents=True, exist_ok=True)
    (d / "net.py").write_text(NET_PY.replace("nn.AvgPool2d(2)", "nn.MaxPool2d(2)") if max_pool else NET_PY)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 10))
    split = load_split("digits", holdout=200, seed=0)
    xt = torch.tensor(split.x_train, dtype=torch.float32).reshape(-1, 1, 8, 8)
    yt = torch.tensor(split.y_train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(train_steps):
        idx = torch.randint(0, len(xt), (64,), generator=gen)
        loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), d / "weights.pt")
    (d / "model.yaml").write_text(textwrap.dedent("""
        neurocomp: 1
        name: tinyann
        source: {kind: ann, factory: net.py:build, weights: weights.pt}
        convert: {normalize: percentile, percentile: 99.9, timesteps: [8, 32], samples: 200}
        input: {encoding: current, bits: 8, timesteps: 16}
        dataset: {name: digits, holdout: 200}
        verify: {samples: 4}
    """) + extra)
    return d


def _compile(spec, out, target="cpu", *extra):
    from neurocomp.cli.main import cli
    return CliRunner().invoke(cli, ["compile", str(spec), "--target", target, "--out", str(out), "-q", *extra])


def test_max_pooling_model_exits_2_with_one_line(tmp_path):
    d = write_ann_model(tmp_path / "m", max_pool=True, train_steps=1)
    res = _compile(d / "model.yaml", tmp_path / "b")
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert len(line.splitlines()) == 1 and "nn.MaxPool2d cannot be converted: max pooling" in line, line
    assert "Traceback" not in res.output and not (tmp_path / "b").exists()


def test_convert_section_needs_kind_ann(tmp_path):
    from conftest import write_tiny_model
    d = write_tiny_model(tmp_path / "t")
    spec = d / "model.yaml"
    spec.write_text(spec.read_text() + "convert: {normalize: max}\n")
    res = _compile(spec, tmp_path / "b")
    assert res.exit_code == 2
    assert res.output.strip() == (f"error: {spec}: convert: applies to source.kind 'ann' (an ANN converted to "
                                  "spikes), not 'torch'; remove the convert: section")


@pytest.mark.slow
def test_converted_ann_compiles_with_graded_input_and_lava_equals_cpu(tmp_path):
    """A small trained ReLU CNN, converted, graded (current) input, compiled for loihi-sim: the report's
    accuracy-latency curve (ANN / SNN float / SNN fixed per T), Lava identical to cpu spike for spike,
    the first projection graded in the deployed network, energy with the source ANN as baseline, the
    compile page's conversion figure."""
    import json

    from neurocomp.ir import load_network
    d = write_ann_model(tmp_path / "m")
    out = tmp_path / "b"
    res = _compile(d / "model.yaml", out, "loihi-sim", "--energy")
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    conv = report["conversion"]
    assert [r["timesteps"] for r in conv["curve"]] == [8, 16, 32]
    assert conv["ann_accuracy"] > 0.8, conv
    for row in conv["curve"]:
        assert set(row) >= {"ann", "snn_float", "snn_fixed", "snn_float_reset_subtract"}
    at16 = next(r for r in conv["curve"] if r["timesteps"] == 16)
    assert at16["snn_fixed"] == report["accuracy"]["cpu"] and at16["snn_float"] == report["accuracy"]["float"]
    assert conv["curve"][-1]["snn_fixed"] > 0.7, conv
    agree = report["agreement"]["target_vs_cpu"]
    assert agree["identical_spike_trains"] == 1.0 and agree["predictions_equal"] == 1.0, agree
    fixed = load_network(out / "network.npz")
    first = fixed.projections[0]
    assert first.source == "input" and first.synapse.num_message_bits == 8
    assert all(p.synapse.num_message_bits == 0 for p in fixed.projections[1:])
    assert report["ann"]["layers"][0]["lambda"] > 0
    assert report["energy"]["baseline_network"].startswith("the source ANN")
    html = (out / "report.html").read_text()
    assert "fig-conversion" in html and "<div class='section-error'" not in html
