"""Host-in-the-loop runtime: streamed samples through Lava's io Injector/Extractor equal the golden cpu
run spike for spike; `neurocomp hil` reports agreement/latency/throughput, catches a differing sample,
stops cleanly on Ctrl-C; the loihi2 target builds Loihi2HwCfg or says it needs lava-loihi."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from neurocomp.backends.batch_engine import simulate
from neurocomp.ir.encodings import encode
from neurocomp.errors import TargetError
from neurocomp.ir import Input, LoihiDense, LoihiLIF, Network, Population, Projection, RateEncoding
from neurocomp.backends.lava_runtime import NetworkRuntime, run_config
from conftest import write_tiny_model

HIL_KEYS = {"target", "samples", "agreement", "accuracy", "latency_ms", "throughput_per_s", "mismatches"}


def chain(sizes, timesteps, seed=0) -> Network:
    """A layered fixed-point network with enough excitation and bias that every layer spikes."""
    rng = np.random.default_rng(seed)
    pops, projs, prev = [], [], "in"
    for i, n in enumerate(sizes[1:]):
        w = rng.integers(-60, 160, (n, sizes[i]))
        pops.append(Population(f"l{i + 1}", LoihiLIF(n, du=700, dv=300, vth=60,
                                                     bias_mant=rng.integers(0, 40, n), bias_exp=3)))
        projs.append(Projection(f"w{i + 1}", prev, f"l{i + 1}", LoihiDense(w, num_weight_bits=8, weight_exp=0)))
        prev = f"l{i + 1}"
    return Network("chain", Input("in", sizes[0], RateEncoding(0.6)), pops, projs, prev, timesteps)


def assert_identical(outs, golden, first_index=0):
    for k, out in enumerate(outs):
        assert out.index == first_index + k
        for name, train in out.spikes.items():
            np.testing.assert_array_equal(train, golden.spikes[name][k], err_msg=f"sample {out.index} {name}")
        assert out.prediction == golden.predictions[k]
        assert out.latency_s > 0


@pytest.mark.slow
def test_streamed_samples_equal_the_cpu_run_spike_for_spike():
    net = chain([20, 12, 8, 5], timesteps=5)
    rng = np.random.default_rng(1)
    spikes = rng.random((4, 5, 20)) < 0.4
    features = rng.random((2, 20))
    everything = [p.name for p in net.populations]
    golden = simulate(net, spikes, record=True)
    assert all(golden.counts[n].sum() > 0 for n in everything), "test network must be active"
    with NetworkRuntime(net, record=everything, input_seed=7) as rt:
        first = list(rt.stream(spikes))  # ends with a flush: the clock is off the window grid now
        # host-side encoding of feature vectors, stream positions 4 and 5 seed their random streams
        second = list(rt.stream(features))
    assert_identical(first, golden)
    enc = encode(features, net.input.encoding, 5, seed=7, indices=np.array([4, 5]))
    assert_identical(second, simulate(net, enc, record=True), first_index=4)
    # the same network as the batch loihi-sim target sees it, run_batch -> RunResult
    with NetworkRuntime(chain([20, 12, 8, 5], timesteps=5)) as rt:
        res = rt.run_batch(spikes)
    np.testing.assert_array_equal(res.counts["l3"], golden.counts["l3"])


@pytest.mark.slow
def test_network_deeper_than_its_sample_window():
    # depth 3 > T = 2: a sample's output completes two windows after its input started
    net = chain([6, 5, 4, 3], timesteps=2, seed=3)
    spikes = np.random.default_rng(2).random((5, 2, 6)) < 0.5
    golden = simulate(net, spikes, record=True)
    with NetworkRuntime(net, record=[p.name for p in net.populations]) as rt:
        completed = []
        for s in spikes:
            completed += rt.submit(s)
        assert len(completed) == 3  # two samples still in flight
        completed += rt.flush()
    assert_identical(completed, golden)


# ------------------------------------------------------------------------------- loihi2 target
def test_loihi2_without_lava_loihi_is_a_one_line_target_error():
    from neurocomp.backends import get_backend
    from neurocomp.ir.schedule import BATCHED, Schedule
    net = chain([4, 3], timesteps=2)
    for call in (lambda: run_config("loihi2"), lambda: NetworkRuntime(net, target="loihi2"),
                 lambda: get_backend("loihi2").run(net, np.zeros((1, 2, 4)), Schedule(BATCHED, 2))):
        with pytest.raises(TargetError) as e:
            call()
        msg = str(e.value)
        assert "lava-loihi" in msg and "--target loihi-sim" in msg and "\n" not in msg


def test_loihi2_builds_the_hardware_run_config(monkeypatch):
    """Stand in for the chip only: pretend lava-loihi is importable, check the run configuration the
    runtime would hand to Lava (no run)."""
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg
    from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
    from lava.proc.io.injector import Injector, PyLoihiInjectorModel

    import neurocomp.backends.loihi2 as loihi2
    monkeypatch.setattr(loihi2, "loihi2_available", lambda: True)
    rt = NetworkRuntime(chain([4, 3], timesteps=2), target="loihi2")
    cfg = rt.run_cfg
    assert type(cfg) is Loihi2HwCfg
    assert cfg.select_tag == "fixed_pt" and cfg.select_sub_proc_model is False
    assert cfg.exception_proc_model_map == {Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel}
    sim = run_config("loihi-sim")
    assert type(sim) is Loihi2SimCfg and sim.select_tag == "fixed_pt"
    assert sim.exception_proc_model_map == cfg.exception_proc_model_map
    # lava-loihi "installed" but without its chip adapters: a clear error, not an ImportError
    with pytest.raises(TargetError, match="embedded_io"):
        loihi2.chip_adapters()


# ---------------------------------------------------------------------------------- neurocomp hil
@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory) -> Path:
    """A compiled build of a small digits network (64-16-10, 8 steps), compiled on the cpu target."""
    from neurocomp.pipeline import compile_model

    # stronger than torch's default init, so the output layer spikes
    d = write_tiny_model(tmp_path_factory.mktemp("hil_model"), gain=6.0)
    out = d / "build"
    compile_model(d / "model.yaml", target="cpu", out=out)
    return out


def _neurocomp(*args):
    exe = Path(sys.executable).parent / "neurocomp"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_hil_cli_agrees_with_cpu_and_reports_timing(tiny_build, tmp_path):
    from neurocomp.pipeline import load_build
    out = tmp_path / "hil"
    r = _neurocomp("hil", str(tiny_build), "--target", "loihi-sim", "--samples", "4", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((out / "hil.json").read_text())
    assert HIL_KEYS <= set(rep)
    assert rep["target"] == "loihi-sim" and rep["samples"] == rep["requested"] == 4 and rep["complete"]
    assert rep["agreement"] == 1.0 and rep["mismatches"] == []
    assert 0 < rep["latency_ms"]["median"] <= rep["latency_ms"]["p95"] and rep["throughput_per_s"] > 0
    # accuracy is the streamed predictions against the labels: recompute it from the golden run
    build = load_build(tiny_build)
    spikes, labels = build.held_out(4)
    golden = simulate(build.fixed, spikes)
    assert golden.counts[build.fixed.output].sum() > 0, "test build must spike"
    assert rep["accuracy"] == pytest.approx(golden.accuracy(labels))
    assert "spike-identical" in r.stdout and "samples/s" in r.stdout


@pytest.mark.slow
def test_hil_reports_a_sample_that_differs_from_the_golden_run(tiny_build, tmp_path, monkeypatch):
    """The check can fail: a golden run with one spike flipped (sample 1, step 2, neuron 0 of the
    output) must come back as exactly that mismatch, exit code 1."""
    from neurocomp.backends import get_backend
    from neurocomp.cli.main import cli
    from neurocomp.pipeline import load_build

    cpu = get_backend("cpu")
    real = cpu.run

    def golden_with_one_flipped_spike(net, spikes_in, *a, **kw):
        res = real(net, spikes_in, *a, **kw)
        res.spikes[net.output][1, 2, 0] ^= True
        return res

    monkeypatch.setattr(cpu, "run", golden_with_one_flipped_spike)
    out = tmp_path / "hil"
    res = CliRunner().invoke(cli, ["hil", str(tiny_build), "--samples", "3", "--out", str(out), "-q"])
    assert res.exit_code == 1, res.output
    rep = json.loads((out / "hil.json").read_text())
    assert rep["agreement"] == pytest.approx(2 / 3)
    (m,) = rep["mismatches"]
    output = load_build(tiny_build).fixed.output
    assert m["sample"] == 1 and m["first_difference"] == {"population": output, "step": 2, "neurons": [0]}


@pytest.mark.slow
def test_hil_ctrl_c_writes_the_partial_result_and_exits_130(tiny_build, tmp_path, monkeypatch):
    import neurocomp.pipeline as runtime
    from neurocomp.cli.main import cli

    real = runtime.hardware_in_the_loop

    def interrupted_after_first_sample(*a, on_sample=None, **kw):
        def hook(out, stats):
            on_sample(out, stats)
            if stats["done"] == 1:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C at the terminal delivers
        return real(*a, on_sample=hook, **kw)

    monkeypatch.setattr(runtime, "hardware_in_the_loop", interrupted_after_first_sample)
    out = tmp_path / "hil"
    res = CliRunner().invoke(cli, ["hil", str(tiny_build), "--samples", "6", "--out", str(out), "-q"])
    assert res.exit_code == 130, res.output
    rep = json.loads((out / "hil.json").read_text())
    assert rep["complete"] is False and 1 <= rep["samples"] < 6 and rep["requested"] == 6
    assert rep["agreement"] == 1.0


def test_hil_loihi2_without_lava_loihi_exits_2_and_writes_nothing(tiny_build, tmp_path):
    from neurocomp.cli.main import cli
    out = tmp_path / "hil"
    res = CliRunner().invoke(cli, ["hil", str(tiny_build), "--target", "loihi2", "--out", str(out)])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "lava-loihi" in lines[0] and "--target loihi-sim" in lines[0]
    assert not out.exists()
