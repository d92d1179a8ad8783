"""NIR in and out.

* import: snnTorch's own ``export_to_nir`` file and graphs built with nir's API in snnTorch's
  conventions give exactly snnTorch's spikes (float IR, neurocomp's float simulator / Lava's stream
  timing); dt from model.yaml, metadata or the r = tau/dt convention; old files without v_reset;
  conv/pool/scale/flatten mapped to the same linear maps nir's nodes define; refusals name the node;
* export: nir.read (with type checks) reads it, a re-import gives the very same fixed-point network,
  an edited file falls back to its floats, snnTorch's ``import_from_nir`` runs it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir")
snn = pytest.importorskip("snntorch")
import snntorch.utils  # noqa: E402

from neurocomp.backends.batch_engine import simulate  # noqa: E402
from neurocomp.errors import FrontendError  # noqa: E402
from neurocomp.frontends.nir import graph_to_ir, read_graph  # noqa: E402
from neurocomp.ir import RateEncoding  # noqa: E402
from neurocomp.ir.serialize import network_to_bytes  # noqa: E402

DT = 1e-4
T, B = 30, 32


def _spikes(seed, n, T=T, B=B, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B, n), generator=g) < p).float()


def _lif(n, beta, thr=1.0, **kw):
    tau = DT / (1 - beta)
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n), v_threshold=np.full(n, thr), **kw)


def _write_read(tmp_path, graph, name="g.nir"):
    path = tmp_path / name
    nir.write(path, graph)
    return read_graph(path)


def test_snntorch_own_export_imports_to_snntorchs_spikes(tmp_path):
    """snnTorch 1.0.0's export_to_nir (per-neuron parameters: the form that passes nir 1.0.8's type check)."""
    from snntorch.export_nir import export_to_nir
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(20, 40), snn.Leaky(beta=torch.full((40,), 0.8), threshold=torch.full((40,), 0.7),
                                     reset_mechanism="zero", init_hidden=True),
        nn.Linear(40, 5, bias=False), snn.Leaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5),
                                                reset_mechanism="zero", init_hidden=True)).eval()
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.mul_(2.5)
    graph = _write_read(tmp_path, export_to_nir(model, torch.zeros(20)))
    net, details = graph_to_ir(graph, "exp", T, RateEncoding())
    assert details["dt_from"].startswith("exporters' convention") and details["dt"] == pytest.approx(DT)
    assert [type(p.synapse).__name__ for p in net.projections] == ["Dense", "Dense"]
    x = _spikes(1, 20)
    snntorch.utils.reset(model)
    with torch.no_grad():
        ref = torch.stack([model(x[t]) for t in range(T)]).numpy().transpose(1, 0, 2) > 0
    got = simulate(net, x.numpy().transpose(1, 0, 2) > 0, record=True)
    assert ref.sum() > 100
    assert np.array_equal(got.spikes[net.output], ref), np.sum(got.spikes[net.output] != ref)


def test_cubalif_and_recurrent_subgraph_equal_snntorch(tmp_path):
    """Input -> Affine -> [LIF <-> Linear] subgraph (snnTorch's RLeaky export form) -> Linear -> CubaLIF, built
    with nir's API in snnTorch's conventions, against snn.RLeaky / snn.Synaptic (reset_delay=False)."""
    from test_snntorch_frontend import _stream_float
    torch.manual_seed(3)
    n1, n2 = 24, 6
    w1, b1 = torch.randn(n1, 16) * 0.8, torch.zeros(n1)
    w_rec = torch.randn(n1, n1) * 0.3
    w2 = torch.randn(n2, n1) * 0.9
    alpha, beta1, beta2 = 0.6, 0.85, 0.9
    tau_syn, tau_mem = DT / (1 - alpha), DT / (1 - beta2)
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([n1])), "lif": _lif(n1, beta1),
                              "w_rec": nir.Linear(weight=w_rec.numpy()), "output": nir.Output(output_type=np.array([n1]))},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([16])),
        "fc1": nir.Affine(weight=w1.numpy(), bias=b1.numpy()),
        "rlif": sub,
        "fc2": nir.Linear(weight=w2.numpy()),
        "cuba": nir.CubaLIF(tau_syn=np.full(n2, tau_syn), tau_mem=np.full(n2, tau_mem), r=np.full(n2, tau_mem / DT),
                            v_leak=np.zeros(n2), v_threshold=np.full(n2, 0.8), w_in=np.full(n2, tau_syn / DT)),
        "output": nir.Output(output_type=np.array([n2]))},
        edges=[("input", "fc1"), ("fc1", "rlif"), ("rlif", "fc2"), ("fc2", "cuba"), ("cuba", "output")])
    net, _ = graph_to_ir(_write_read(tmp_path, graph), "rec", T, RateEncoding())
    assert {p.name for p in net.recurrent_projections()} == {"rlif.w_rec"}
    cuba = net.population("cuba").neuron
    assert cuba.du == pytest.approx(1 - alpha) and cuba.dv == pytest.approx(1 - beta2)

    lif1 = snn.RLeaky(beta=beta1, linear_features=n1, reset_mechanism="zero", reset_delay=False)
    lif2 = snn.Synaptic(alpha=alpha, beta=beta2, threshold=0.8, reset_mechanism="zero", reset_delay=False)
    with torch.no_grad():
        lif1.recurrent.weight.copy_(w_rec)
        lif1.recurrent.bias.zero_()
    x = _spikes(4, 16)
    spk1, mem1 = lif1.init_rleaky()
    syn2, mem2 = lif2.init_synaptic()
    ref = {"rlif.lif": [], "cuba": []}
    with torch.no_grad():
        for t in range(T):
            spk1, mem1 = lif1(x[t] @ w1.T + b1, spk1, mem1)
            spk2, syn2, mem2 = lif2(spk1 @ w2.T, syn2, mem2)
            ref["rlif.lif"].append(spk1.numpy() > 0)
            ref["cuba"].append(spk2.numpy() > 0)
    depth = net.depths()
    stream = np.concatenate([x.numpy() > 0, np.zeros((max(depth.values()),) + x.shape[1:], bool)])
    got = _stream_float(net, stream)
    for pop, r in ref.items():
        r = np.stack(r)
        mine = got[pop][depth[pop]: depth[pop] + T]
        assert r.any() and np.array_equal(mine, r), f"{pop}: {np.sum(mine != r)} spikes differ"


def _tiny(tmp_path, lif=None, metadata=None):
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])), "fc": nir.Linear(weight=np.ones((3, 4))),
                                "lif": lif if lif is not None else _lif(3, 0.9),
                                "output": nir.Output(output_type=np.array([3]))},
                         edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata=metadata or {})
    return _write_read(tmp_path, graph)


def test_dt_from_spec_then_metadata_then_convention(tmp_path):
    g = _tiny(tmp_path, metadata={"dt": 5e-5})
    _, d = graph_to_ir(g, "t", 5, RateEncoding(), dt=2e-5)
    assert (d["dt"], d["dt_from"]) == (2e-5, "model.yaml source.dt")
    net, d = graph_to_ir(g, "t", 5, RateEncoding())
    assert (d["dt"], d["dt_from"]) == (5e-5, "graph metadata dt")
    # forward Euler: dv = dt / tau exactly, the input gain r*dt/tau folded into the weights
    tau = DT / (1 - 0.9)
    assert net.population("lif").neuron.dv == pytest.approx(5e-5 / tau, rel=1e-12)
    assert np.allclose(net.projection("fc").synapse.weight, (tau / DT) * 5e-5 / tau)
    _, d = graph_to_ir(_tiny(tmp_path), "t", 5, RateEncoding())
    assert d["dt"] == pytest.approx(DT) and d["dt_from"] == "exporters' convention r = tau/dt"


def test_missing_or_inconsistent_dt_asks_for_it(tmp_path):
    if_graph = _tiny(tmp_path, lif=nir.IF(r=np.ones(3), v_threshold=np.ones(3)))
    with pytest.raises(FrontendError, match="no dt: the graph has no LIF/CubaLIF.*set source.dt"):
        graph_to_ir(if_graph, "t", 5, RateEncoding())
    net, _ = graph_to_ir(if_graph, "t", 5, RateEncoding(), dt=1e-3)       # IF: v += r*dt*I
    assert net.population("lif").neuron.dv == 0 and np.allclose(net.projection("fc").synapse.weight, 1e-3)
    norse_like = _lif(3, 0.9)
    norse_like.r = np.ones(3)                  # r = 1 (Norse's convention): tau/r is not a dt below tau
    with pytest.raises(FrontendError, match="set source.dt"):
        graph_to_ir(_tiny(tmp_path, lif=norse_like), "t", 5, RateEncoding())
    with pytest.raises(FrontendError, match="dt/tau = .* > 1 .* forward Euler"):
        graph_to_ir(_tiny(tmp_path), "t", 5, RateEncoding(), dt=1.0)


def test_old_file_without_v_reset_reads_as_reset_to_zero(tmp_path):
    import h5py
    path = tmp_path / "old.nir"
    nir.write(path, nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])),
                                        "fc": nir.Linear(weight=np.ones((3, 4))), "lif": _lif(3, 0.9),
                                        "output": nir.Output(output_type=np.array([3]))},
                                 edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    with h5py.File(path, "a") as f:
        del f["node/nodes/lif/v_reset"]          # as nir < 1.0.6 wrote it
    with h5py.File(path, "r") as f:
        assert "v_reset" not in f["node/nodes/lif"]
    net, _ = graph_to_ir(read_graph(path), "old", 5, RateEncoding())
    assert net.population("lif").neuron.vth == 1.0


def test_conv_pool_scale_flatten_map_to_the_linear_maps_nir_defines(tmp_path):
    """Conv2d and SumPool2d between spiking nodes become IR Conv synapses; Scale + AvgPool2d + Flatten +
    Affine (a chain) becomes one Dense matrix; both reproduce torch's own evaluation of the NIR nodes."""
    import torch.nn.functional as F
    rng = np.random.default_rng(0)
    wc = rng.normal(size=(4, 1, 3, 3))
    scale = rng.uniform(0.5, 2.0, size=(4, 3, 3))
    wa = rng.normal(size=(5, 4))
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([1, 8, 8])),
        "conv": nir.Conv2d(input_shape=(8, 8), weight=wc, stride=1, padding=0, dilation=1, groups=1,
                           bias=np.zeros(4)),
        "lif1": nir.LIF(tau=np.full((4, 6, 6), 1e-3), r=np.full((4, 6, 6), 10.0), v_leak=np.zeros((4, 6, 6)),
                        v_threshold=np.ones((4, 6, 6))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "lif2": nir.LIF(tau=np.full((4, 3, 3), 1e-3), r=np.full((4, 3, 3), 10.0), v_leak=np.zeros((4, 3, 3)),
                        v_threshold=np.ones((4, 3, 3))),
        "scale": nir.Scale(scale=scale),
        "avg": nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([3, 3]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 1, 1])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=wa, bias=np.zeros(5)),
        "lif3": _lif(5, 0.9),
        "output": nir.Output(output_type=np.array([5]))},
        edges=[("input", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "lif2"), ("lif2", "scale"),
               ("scale", "avg"), ("avg", "flat"), ("flat", "fc"), ("fc", "lif3"), ("lif3", "output")])
    net, _ = graph_to_ir(_write_read(tmp_path, graph), "cnn", 5, RateEncoding())
    conv, pool, dense = (net.projection(n).synapse for n in ("conv", "pool", "lif2->lif3"))
    assert type(conv).__name__ == "Conv" and type(pool).__name__ == "Conv" and type(dense).__name__ == "Dense"
    assert net.population("lif1").shape == (4, 6, 6) and net.population("lif2").shape == (4, 3, 3)
    x = torch.from_numpy(rng.integers(0, 2, size=(3, 1, 8, 8)).astype(np.float64))
    as_ir = F.conv2d(x, torch.from_numpy(conv.weight), stride=conv.stride, padding=conv.padding)
    assert torch.allclose(as_ir, F.conv2d(x, torch.from_numpy(wc)))
    s = torch.from_numpy(rng.integers(0, 2, size=(3, 4, 6, 6)).astype(np.float64))
    as_ir = F.conv2d(s, torch.from_numpy(pool.weight), stride=pool.stride, groups=pool.groups)
    assert torch.allclose(as_ir, F.avg_pool2d(s, 2) * 4)
    s2 = rng.integers(0, 2, size=(3, 4, 3, 3)).astype(np.float64)
    want = (F.avg_pool2d(torch.from_numpy(s2 * scale), 3).reshape(3, -1).numpy() @ wa.T)
    assert np.allclose(s2.reshape(3, -1) @ dense.weight.T, want)


def _graph_with(extra_nodes, edges, tmp_path):
    nodes = {"input": nir.Input(input_type=np.array([4])), "fc": nir.Linear(weight=np.ones((3, 4))),
             "output": nir.Output(output_type=np.array([3])), **extra_nodes}
    return _write_read(tmp_path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))


REFUSALS = [
    ({"li": nir.LI(tau=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.zeros(3))},
     [("input", "fc"), ("fc", "li"), ("li", "output")], r"NIR node 'li' \(LI\) is a non-spiking membrane readout"),
    ({"cli": nir.CubaLI(tau_syn=np.full(3, 1e-3), tau_mem=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.zeros(3))},
     [("input", "fc"), ("fc", "cli"), ("cli", "output")], r"'cli' \(CubaLI\) is a non-spiking"),
    ({"lif": _lif(3, 0.9, v_reset=np.full(3, -0.5))}, [("input", "fc"), ("fc", "lif"), ("lif", "output")],
     r"NIR node 'lif' \(LIF\): v_reset=-0.5"),
    ({"lif": _lif(3, 0.9), "d": nir.Delay(delay=np.ones(3))},
     [("input", "fc"), ("fc", "d"), ("d", "lif"), ("lif", "output")], r"NIR node 'd': type Delay cannot be mapped"),
    ({"lif": _lif(3, 0.9), "ro": nir.Linear(weight=np.ones((3, 3)))},
     [("input", "fc"), ("fc", "lif"), ("lif", "ro"), ("ro", "output")], r"Output 'output' is fed by ro \(Linear\)"),
    ({"lif": nir.LIF(tau=np.array([1e-3, 2e-3, 1e-3]), r=np.full(3, 10.0), v_leak=np.zeros(3),
                     v_threshold=np.ones(3))},
     [("input", "fc"), ("fc", "lif"), ("lif", "output")], r"node 'lif' \(LIF\): per-neuron tau values differ"),
    ({"a": _lif(3, 0.9), "w": nir.Linear(weight=np.ones((3, 3))), "b": _lif(3, 0.9), "skip": nir.Linear(weight=np.ones((3, 4)))},
     [("input", "fc"), ("fc", "a"), ("a", "w"), ("w", "b"), ("input", "skip"), ("skip", "b"), ("b", "output")],
     r"edge 'input' -> 'b' skips 1 layer"),
]


@pytest.mark.parametrize("nodes, edges, expect", REFUSALS, ids=[e for _, _, e in REFUSALS])
def test_unsupported_is_refused_naming_the_node(tmp_path, nodes, edges, expect):
    with pytest.raises(FrontendError, match=expect) as e:
        graph_to_ir(_graph_with(nodes, edges, tmp_path), "bad", 5, RateEncoding(), dt=DT)
    assert "\n" not in str(e.value)


# -- export ---------------------------------------------------------------------------------------------
def _small_fixed(du=0.4, bias=True):
    """A small quantised network: 20 -> 16 (a current decay du < 1: CubaLIF in NIR; du = 1: LIF) -> 6."""
    from neurocomp.ir import LIF, Dense, Input, Network, Population, Projection
    from neurocomp.passes import quantize
    from neurocomp.targets import FixedPointFormat, load_descriptor
    rng = np.random.default_rng(1)
    pops = [Population("h", LIF(16, du=du, dv=0.1, vth=1.0, bias=rng.uniform(0, 0.05, 16) * bias)),
            Population("o", LIF(6, du=1.0, dv=0.2, vth=1.0))]
    projs = [Projection("w1", "input", "h", Dense(rng.normal(0, 0.6, (16, 20)))),
             Projection("w2", "h", "o", Dense(rng.normal(0, 0.8, (6, 16))))]
    net = Network("small", Input("input", 20, RateEncoding()), pops, projs, "o", 20)
    cal = rng.random((20, 20, 20)) < 0.3
    fixed = quantize(net, FixedPointFormat.from_descriptor(load_descriptor("cpu")), cal).fixed
    return fixed


def test_export_reads_back_with_type_checks_and_reimports_to_the_same_integers(tmp_path):
    from neurocomp.export.nir import write_nir
    fixed = _small_fixed()
    summary = write_nir(fixed, tmp_path / "x.nir", dt=2e-4)
    assert summary["nodes"]["h"] == "CubaLIF" and summary["nodes"]["o"] == "LIF"
    graph = nir.read(tmp_path / "x.nir")                  # type_check=True: nir's own check
    assert float(graph.metadata["dt"]) == 2e-4
    back, details = graph_to_ir(read_graph(tmp_path / "x.nir"), fixed.name, fixed.timesteps, fixed.input.encoding)
    assert details["fixed_point"] is True
    assert network_to_bytes(back) == network_to_bytes(fixed)
    # an edited file no longer matches its integers: the floats are imported (and say why)
    import h5py
    with h5py.File(tmp_path / "x.nir", "a") as f:
        f["node/nodes/w1/weight"][0, 0] += 1.0
    edited, details = graph_to_ir(read_graph(tmp_path / "x.nir"), fixed.name, fixed.timesteps, fixed.input.encoding)
    assert not edited.is_fixed_point and "no longer match" in details["neurocomp_metadata_ignored"]


def test_export_floats_reproduce_the_fixed_point_parameters(tmp_path):
    """The float parameters alone (metadata stripped) give Lava's decays, threshold and per-spike weights."""
    from neurocomp.backends import fixed_point as fxp
    from neurocomp.export.nir import to_nir
    fixed = _small_fixed()
    graph = to_nir(fixed, dt=1e-4)
    graph.metadata.pop("neurocomp_version")
    floated, _ = graph_to_ir(_write_read(tmp_path, graph), fixed.name, fixed.timesteps, fixed.input.encoding)
    for pop in fixed.populations:
        f = floated.population(pop.name).neuron
        assert f.du == pytest.approx((pop.neuron.du + 1) / 4096) and f.dv == pytest.approx(pop.neuron.dv / 4096)
        assert f.vth == pytest.approx(pop.neuron.vth)
        assert np.allclose(f.bias, fxp.effective_bias(pop.neuron) / 64)
    for proj in fixed.projections:
        assert np.allclose(floated.projection(proj.name).synapse.weight,
                           fxp.effective_weights(proj.synapse) * 2.0 ** proj.synapse.weight_exp)


def test_snntorch_import_from_nir_runs_our_export_like_the_cpu_target(tmp_path):
    from snntorch.import_nir import import_from_nir

    from neurocomp.export.nir import write_nir
    fixed = _small_fixed(du=1.0, bias=False)  # LIF nodes without v_leak: snnTorch imports them as Leaky
    write_nir(fixed, tmp_path / "x.nir")
    model = import_from_nir(nir.read(tmp_path / "x.nir"))
    x = _spikes(7, 20, T=fixed.timesteps, B=64)
    state, outs = None, []
    with torch.no_grad():
        for t in range(fixed.timesteps):
            o, state = model(x[t], state)
            outs.append(o)
    counts = torch.stack(outs).sum(0).numpy()
    ours = simulate(fixed, x.numpy().transpose(1, 0, 2) > 0)
    assert counts.sum() > 50
    # snnTorch runs the floats (no Lava truncation): the same output counts on nearly every sample
    same = np.mean(np.all(counts == ours.counts[fixed.output], axis=1))
    assert same >= 0.9, same


def test_cli_export_nir(tmp_path):
    import subprocess
    import sys

    from neurocomp.ir import save_network
    fixed = _small_fixed()
    (tmp_path / "build").mkdir()
    save_network(fixed, tmp_path / "build" / "network.npz")
    r = subprocess.run([sys.executable, "-m", "neurocomp", "export", str(tmp_path / "build"), "--format", "nir",
                        "--out", str(tmp_path / "x.nir"), "--dt", "0.001"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert float(nir.read(tmp_path / "x.nir").metadata["dt"]) == 0.001
    r = subprocess.run([sys.executable, "-m", "neurocomp", "export", str(tmp_path), "--format", "nir",
                        "--out", str(tmp_path / "y.nir")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "not a neurocomp build directory" in r.stderr and "Traceback" not in r.stderr


def test_example_mlp_nir_file_imports_to_the_native_network():
    """models/snntorch_mlp/model.nir (snnTorch's own export) and the module itself: the same float
    spike counts on the held-out digits (the NIR floats went through float32 and 1e-4-s time constants)."""
    from pathlib import Path

    from neurocomp.data import load_split
    from neurocomp.frontends import import_network
    from neurocomp.ir.encodings import encode
    from neurocomp.spec import load_spec

    here = Path(__file__).resolve().parents[1] / "models" / "snntorch_mlp"
    split = load_split("mnist5k", holdout=1000, seed=0)
    native = import_network(load_spec(here / "model.yaml"), split.x_test.shape[1:]).network
    from_nir = import_network(load_spec(here / "nir.yaml"), split.x_test.shape[1:]).network
    spikes = encode(split.x_test, native.input.encoding, native.timesteps, seed=0)
    a, b = simulate(native, spikes), simulate(from_nir, spikes)
    assert np.array_equal(a.counts[native.output], b.counts[from_nir.output])
