"""``neurocomp run``, ``verify`` and ``energy`` on Brian2 (stream) builds, and ``compile --energy`` for
them: the learned network frozen on the compile's evaluation stream, cpu vs Lava spike for spike,
and activity counted on the stream simulator (checked by hand on a tiny recurrent network)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from neurocomp.cli.main import cli

from conftest import write_small_diehl_cook

REPO = Path(__file__).resolve().parents[1]

TINY_SCRIPT = '''
from brian2 import NeuronGroup, SpikeGeneratorGroup, Synapses, defaultclock, ms, mV
import numpy as np

def build(steps=300, seed=1):
    """4 inputs -> 3 LIF neurons through pair STDP, mutual inhibition between the neurons."""
    defaultclock.dt = 1 * ms
    rng = np.random.default_rng(seed)
    k, i = np.nonzero(rng.random((steps, 4)) < 0.15)
    inp = SpikeGeneratorGroup(4, i, k * defaultclock.dt, name="inp")
    exc = NeuronGroup(3, "dv/dt = -v/(10*ms) : volt", threshold="v > 10*mV", reset="v = 0*mV",
                      method="exact", name="exc")
    stdp = Synapses(inp, exc, """w : volt
                                 dapre/dt = -apre/(20*ms) : volt (event-driven)
                                 dapost/dt = -apost/(20*ms) : volt (event-driven)""",
                    on_pre="""v_post += w
                              apre += 0.5*mV
                              w = clip(w + apost, 0*mV, 8*mV)""",
                    on_post="""apost += -0.5*mV
                               w = clip(w + apre, 0*mV, 8*mV)""", name="stdp")
    stdp.connect()
    stdp.w = rng.uniform(3, 6, len(stdp)) * mV
    lat = Synapses(exc, exc, on_pre="v_post -= 6*mV", name="lateral")
    lat.connect(condition="i != j")
    return [inp, exc, stdp, lat]
'''


@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    """A plastic, recurrent Brian2 network replaying its own spikes, compiled for cpu with --energy."""
    from neurocomp.pipeline import compile_model

    d = tmp_path_factory.mktemp("tiny")
    (d / "net.py").write_text(TINY_SCRIPT)
    (d / "model.yaml").write_text("neurocomp: 1\nname: tiny_stream\nsource: {kind: brian2, script: net.py}\n"
                                  "input: {encoding: rate, timesteps: 1}\n")
    report = compile_model(d / "model.yaml", target="cpu", out=d / "build", energy=True)
    return d / "build", report


@pytest.fixture(scope="module")
def dc_build(tmp_path_factory):
    """models/diehl_cook shrunk to seconds (10 neurons, 16 training digits), compiled for cpu."""
    from neurocomp.pipeline import compile_model

    d = tmp_path_factory.mktemp("dc")
    write_small_diehl_cook(d, test_samples=24)
    report = compile_model(d / "model.yaml", target="cpu", out=d / "build")
    return d / "build", report


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# ------------------------------------------------------------------------------------------ run
@pytest.mark.slow
def test_run_cpu_reproduces_the_compiles_accuracy(dc_build, tmp_path):
    build, report = dc_build
    ln = report["learning"]
    assert len(ln["assignments"]) == 10   # the compile keeps its readout for run
    # --quiet keeps the output parseable
    res = invoke("run", build, "--target", "cpu", "--record", "--quiet", "--out", tmp_path / "run")
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    # the same stream (labelling samples first, then the held-out ones), the same readout
    assert run["accuracy"] == ln["accuracy"] and run["samples"] == ln["test_samples"] == 24
    assert run["warmup_samples"] == ln["label_samples"] and run["timesteps"] == 20
    assert set(run["spikes_per_layer"]) == {"exc", "inh", "tonic"}
    assert run["spikes_per_layer"]["tonic"]["per_sample"] == 20   # the tonic neuron fires every step
    spikes = np.load(tmp_path / "run" / "spikes.npz")
    assert spikes["exc"].shape == (run["stream_steps"], 10) == (36 * 20, 10)
    assert int(spikes["exc"][12 * 20:].sum()) == run["spikes_per_layer"]["exc"]["total"]
    # a stream build runs on the stream targets only: one line, exit 2
    bad = CliRunner().invoke(cli, ["run", str(build), "--target", "float", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "cpu, loihi-sim" in bad.output and not (tmp_path / "x").exists()


# --------------------------------------------------------------------------------------- verify
@pytest.mark.slow
def test_verify_tiny_stream_build_cpu_identical_to_lava(tiny_build, tmp_path):
    build, _ = tiny_build
    res = invoke("verify", build, "--targets", "float,cpu,loihi-sim", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "verify.json").read_text())
    assert rep["stream"] and rep["cpu_matches_loihi_sim"] is True
    assert rep["pairs"]["cpu vs loihi-sim"]["identical"]
    (exc,) = rep["layers"]
    assert exc["spikes_per_sample"]["cpu"] == exc["spikes_per_sample"]["loihi-sim"] > 0
    # float = the Brian2 script itself with the learned weights: compared by per-neuron counts
    assert exc["spikes_per_sample"]["float"] > 0
    assert exc["compare"]["float vs cpu"]["count_correlation"] is not None


@pytest.mark.slow
def test_verify_detects_a_lava_run_that_differs(tiny_build, tmp_path, monkeypatch):
    """Lava runs the build with one neuron's learned input weights zeroed (a real Lava run of a
    different network): that neuron can no longer fire, so verify must name the population, that
    neuron and the step of its first spike on cpu, and exit 1."""
    import dataclasses

    import neurocomp.pipeline.verify as pv
    from neurocomp.pipeline import load_build

    build, _ = tiny_build
    b = load_build(build)
    cpu = pv.run_target(b, "cpu", b.plan()).stream["exc"]
    first_step, neuron = (int(x[0]) for x in np.nonzero(cpu))     # the first spike, lowest neuron
    real_run_target = pv.run_target

    def tampered(b, target, plan, progress=None):
        if target != "loihi-sim":
            return real_run_target(b, target, plan, progress)
        w = {p.name: p.synapse.weight.copy() for p in b.fixed.projections if p.plasticity is not None}
        w["stdp"][neuron, :] = 0
        from neurocomp.backends.learning_engine import with_weights
        return real_run_target(dataclasses.replace(b, fixed=with_weights(b.fixed, w)), target, plan)

    monkeypatch.setattr(pv, "run_target", tampered)
    res = invoke("verify", build, "--targets", "cpu,loihi-sim", "--out", tmp_path)
    assert res.exit_code == 1
    assert "first differ in population 'exc'" in res.output
    rep = json.loads((tmp_path / "verify.json").read_text())
    assert rep["cpu_matches_loihi_sim"] is False
    first = rep["pairs"]["cpu vs loihi-sim"]["first_layer"]
    assert first["layer"] == "exc" and first["neuron"] == neuron and first["step"] == first_step


# --------------------------------------------------------------------------------------- energy
@pytest.mark.slow
def test_compile_energy_and_energy_command_on_stream_builds(tiny_build, dc_build, tmp_path):
    build, report = tiny_build
    assert report["energy"]["devices"]["loihi"]["joules_per_inference"] > 0
    saved = json.loads((build / "report.json").read_text())
    assert saved["energy"] == json.loads(json.dumps(report["energy"]))
    assert saved["replay"] == json.loads(json.dumps(report["replay"]))   # the compile's report kept whole
    dc, _ = dc_build
    res = invoke("energy", dc, "--samples", "8", "--baseline", "cpu", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "energy.json").read_text())
    assert data["samples"] == 8 and data["timesteps"] == 20
    assert {lay["population"] for lay in data["devices"]["loihi"]["per_layer"]} == {"exc", "inh", "tonic"}
    assert data["baseline"]["workload"]["steps_per_inference"] == 20
    learn = data["learning"]
    assert learn["samples"] == 8 and learn["learning_updates_per_sample"] > 0
    assert learn["devices"]["loihi"]["breakdown"]["learning"] > 0
    assert (tmp_path / "energy.html").read_text().startswith("<!DOCTYPE html>")


def test_verify_loads_the_brian2_script_with_the_compiles_overrides(tmp_path):
    """A build compiled with overrides (a sweep point, ``compile_model(overrides=...)``) is verified
    against the Brian2 script as compiled: here 6 excitatory neurons instead of the spec's 10."""
    from neurocomp.pipeline import compile_model

    write_small_diehl_cook(tmp_path / "dc", test_samples=4)
    compile_model(tmp_path / "dc" / "model.yaml", target="cpu", out=tmp_path / "build",
                  overrides={"source.kwargs.n_exc": 6})
    res = invoke("verify", tmp_path / "build", "--targets", "float,cpu", "--out", tmp_path / "v")
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "v" / "verify.json").read_text())
    exc = next(layer for layer in rep["layers"] if layer["name"] == "exc")
    assert exc["spikes_per_sample"]["float"] > 0          # the 6-neuron script ran (with 10 it is refused)
