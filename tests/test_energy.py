"""Energy reports: activity counted from backend results against hand-computed networks (both
schedules) and NeuroBench's synop definition, the Loihi energy/time model, the baselines, descriptor
validation through the CLI, and the HTML page in a real headless Chromium."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from neurocomp import energy as en
from neurocomp.backends import fixed_point as fxp, get_backend
from neurocomp.backends.batch_engine import simulate
from conftest import write_tiny_model
from neurocomp.errors import NeurocompError
from neurocomp.ir import Input, LoihiDense, LoihiLearning, LoihiLIF, Network, Population, Projection
from neurocomp.ir.schedule import Schedule

REPO = Path(__file__).resolve().parents[1]


def run(net: Network, spikes: np.ndarray, schedule: Schedule = None, **kw):
    """The one backend run energy counts on: spikes recorded, u/v probed (cpu; float for a float net)."""
    schedule = schedule or Schedule("batched", spikes.shape[1])
    target = "cpu" if net.is_fixed_point else "float"
    return get_backend(target).run(net, spikes, schedule, record=True, probe=True, **kw)


def measure_activity(net: Network, spikes: np.ndarray, placements=None):
    """Activity of ``net`` on batched ``spikes``: one backend run, counted."""
    return en.count_activity(net, run(net, spikes), placements)


# ------------------------------------------------------------------------ a hand-computed network
def hand_net(bias_b: int = 0) -> Network:
    """in(3) -> A(2) -> B(1). du = dv = 4095 make u and v forget each step (u = a << 6, v ~ u), so
    every spike can be worked out by hand. Mixed sign mode drops the lowest weight bit (Lava's
    weightutils), so A's weights act as [[12, 0, 4], [0, 0, 6]]: the 1 becomes a *zero* weight and
    must not count as a synaptic op."""
    A = LoihiLIF(2, du=4095, dv=4095, vth=10)                    # spikes when a << 6 > 640, i.e. a > 10
    B = LoihiLIF(1, du=4095, dv=4095, vth=10, bias_mant=bias_b)
    return Network("hand", Input("in", 3), [Population("A", A), Population("B", B)],
                   [Projection("inA", "in", "A", LoihiDense(np.array([[12, 0, 5], [1, 0, 7]]))),
                    Projection("AB", "A", "B", LoihiDense(np.array([[20, 20]])))], "B", 3)


def hand_spikes() -> np.ndarray:
    """Sample 0: t0 all inputs, t1 input 1 (zero weights only), t2 input 0. Sample 1: silent."""
    s = np.zeros((2, 3, 3), dtype=bool)
    s[0, 0] = [1, 1, 1]
    s[0, 1] = [0, 1, 0]
    s[0, 2] = [1, 0, 0]
    return s


def test_hand_network_spikes_as_worked_out():
    """The premise of the hand counts: A0 fires at t0 (a=16) and t2 (a=12), A1 never (a=6), B follows A0."""
    net = hand_net()
    assert fxp.effective_weights(net.projections[0].synapse).tolist() == [[12, 0, 4], [0, 0, 6]]
    res = simulate(net, hand_spikes(), record=True)
    assert res.spikes["A"][0].astype(int).tolist() == [[1, 0], [0, 0], [1, 0]]
    assert res.spikes["B"][0, :, 0].astype(int).tolist() == [1, 0, 1]
    assert not res.spikes["A"][1].any() and not res.spikes["B"][1].any()


def test_activity_counts_match_hand_computation():
    net = hand_net()
    dev = en.load_device("loihi")
    act = measure_activity(net, hand_spikes(), {"loihi": (en.device_placement(net, dev), dev)})
    A, B = act.layer("A"), act.layer("B")
    # synops = nonzero input x nonzero *effective* weight, per step, summed over samples
    assert A.synops.tolist() == [3, 0, 1]          # t0: in0->A0, in2->A0, in2->A1; t1: in1 has no weights
    assert B.synops.tolist() == [1, 0, 1]
    assert (A.synapses, A.dense_synapses, B.synapses, B.dense_synapses) == (3, 6, 2, 2)
    # active = input, or state entering the step, or bias; the rest of the 2 x 3 x n updates are inactive
    assert A.active_updates.tolist() == [2, 2, 1]  # t1: both carry u from t0; t2: only A0 has input
    assert A.inactive_updates.tolist() == [2, 2, 3]
    assert B.active_updates.tolist() == [1, 1, 1]
    assert B.inactive_updates.tolist() == [1, 1, 1]
    assert A.spikes.tolist() == [1, 0, 1] and B.spikes.tolist() == [1, 0, 1]
    assert act.input_spikes.tolist() == [3, 1, 1]
    assert not A.learning_updates.any()
    # default placement: A on core 0, B on core 1, same tile: one message per A spike, no hops;
    # B is the output population, its spikes go to the host (not counted)
    rc = act.routing["loihi"]
    assert rc.messages["A"].tolist() == [1, 0, 1] and not rc.hops_ew["A"].any() and not rc.hops_ns["A"].any()
    assert not rc.messages["B"].any()


def test_bias_makes_every_update_active():
    net = hand_net(bias_b=1)
    act = measure_activity(net, hand_spikes())
    assert act.layer("B").active_updates.tolist() == [2, 2, 2]
    assert not act.layer("B").inactive_updates.any()


def test_loihi_energy_and_time_match_hand_computation():
    net = hand_net()
    dev = en.load_device("loihi")
    act = measure_activity(net, hand_spikes(), {"loihi": (en.device_placement(net, dev), dev)})
    r = en.neuromorphic_energy(dev, act, "loihi")
    pJ, ns = 1e-12, 1e-9
    b = r["breakdown"]
    # per inference = totals / 2 samples
    assert b["synops"] == pytest.approx(3 * 23.6 * pJ)
    assert b["neuron_updates_active"] == pytest.approx(4 * 81 * pJ)
    assert b["neuron_updates_inactive"] == pytest.approx(5 * 52 * pJ)
    assert b["spike_messages"] == pytest.approx(1 * 1.7 * pJ)
    assert b["learning"] == 0
    # time: per step the slower of A's and B's core, plus barrier sync for 1 tile (113 ns)
    s0 = (3 * 3.5 + 2 * 8.4) + (2 * 8.4) + (1 * 3.5 + 8.4 + 5.3) + 3 * 113     # sample 0: A's core is slower
    s1 = 3 * (2 * 5.3) + 3 * 113                                              # sample 1: all inactive
    assert act.routing["loihi"].sample_seconds.tolist() == pytest.approx([s0 * ns, s1 * ns])
    assert r["seconds_per_inference"] == pytest.approx((s0 + s1) / 2 * ns)
    assert b["static"] == pytest.approx(0.104 * (s0 + s1) / 2 * ns)
    total = sum(b.values())
    assert r["joules_per_inference"] == pytest.approx(total)
    assert r["dynamic_joules_per_inference"] + r["static_joules_per_inference"] == pytest.approx(total)
    assert r["joules_per_spike"] == pytest.approx(total / 2)       # 4 spikes over 2 samples
    assert r["joules_per_synop"] == pytest.approx(total / 3)
    assert sum(lay["energy_j"]["total"] for lay in r["per_layer"]) == pytest.approx(r["dynamic_joules_per_inference"])


def fanout_net() -> Network:
    """in(1) -> A(1), firing every step (bias) -> B(3) with weights [6, 0, 8]: A's spikes need the cores
    of B0 and B2 only."""
    A = LoihiLIF(1, du=4095, dv=4095, vth=1, bias_mant=200, bias_exp=0)
    B = LoihiLIF(3, du=4095, dv=0, vth=100_000)
    return Network("fan", Input("in", 1), [Population("A", A), Population("B", B)],
                   [Projection("inA", "in", "A", LoihiDense(np.array([[0]]))),
                    Projection("AB", "A", "B", LoihiDense(np.array([[6], [0], [8]])))], "B", 4)


@pytest.mark.parametrize("b_cores, msgs, ew, ns, off_chip", [
    ([(0, 1), (0, 2), (0, 3)], 2, 0, 0, 0),       # same tile as A (cores 0-3)
    ([(0, 4), (0, 5), (0, 6)], 2, 2, 0, 0),       # next tile east: 1 hop per message
    ([(0, 36), (0, 37), (0, 38)], 2, 2, 2, 0),    # tile 9 = (1, 1): 1 E-W + 1 N-S hop per message
    ([(0, 1), (0, 5), (0, 5)], 2, 1, 0, 0),       # B0 local, B2 one tile east
    ([(0, 1), (0, 1), (0, 1)], 1, 0, 0, 0),       # one destination core: one message
    ([(1, 4), (1, 5), (1, 6)], 2, 2, 0, 2),       # another chip: counted as chip crossings
])
def test_messages_and_hops_follow_the_placement(b_cores, msgs, ew, ns, off_chip):
    net = fanout_net()
    dev = en.load_device("loihi")
    cm = en.device_placement(net, dev, {"A": [(0, 0)], "B": b_cores})
    act = measure_activity(net, np.zeros((1, 4, 1), dtype=bool), {"k": (cm, dev)})
    spikes = act.layer("A").spikes.sum()
    assert spikes == 4
    rc = act.routing["k"]
    assert rc.messages["A"].sum() == msgs * spikes
    assert rc.hops_ew["A"].sum() == ew * spikes
    assert rc.hops_ns["A"].sum() == ns * spikes
    assert rc.chip_crossings["A"].sum() == off_chip * spikes
    r = en.neuromorphic_energy(dev, act, "k")
    assert r["breakdown"]["spike_messages"] == pytest.approx((msgs * 1.7 + ew * 3.0 + ns * 4.0) * 4 * 1e-12)


def test_default_placement_splits_populations_by_neurons_per_core():
    rng = np.random.default_rng(0)
    net = Network("big", Input("in", 4), [Population("h", LoihiLIF(2500, 100, 100, 50)),
                                          Population("o", LoihiLIF(3, 100, 100, 50))],
                  [Projection("p1", "in", "h", LoihiDense(rng.integers(-50, 50, (2500, 4)))),
                   Projection("p2", "h", "o", LoihiDense(rng.integers(-50, 50, (3, 2500))))], "o", 2)
    cm1 = en.device_placement(net, en.load_device("loihi"))   # 1024 neurons per core
    assert sorted(set(cm1.global_cores_of("h").tolist())) == [0, 1, 2]
    assert np.bincount(cm1.global_cores_of("h")).max() <= 1024
    assert cm1.global_cores_of("o").tolist() == [3, 3, 3]
    cm2 = en.device_placement(net, en.load_device("loihi2"))  # 8192 per core (from loihi2.yaml limits:)
    assert set(cm2.global_cores_of("h").tolist()) == {0} and set(cm2.global_cores_of("o").tolist()) == {1}


def test_mapping_placement_is_used_exactly_when_available():
    from neurocomp.passes import place as mapping
    from neurocomp.targets import load_descriptor
    net = fanout_net()
    placement = mapping.map_network(net, load_descriptor("loihi2"))
    dev = en.load_device("loihi2")
    cm = en.device_placement(net, dev, placement)
    for p in net.populations:
        want = placement.neuron_cores(p.name)
        assert cm.global_cores_of(p.name).tolist() == (want[:, 0] * 128 + want[:, 1]).tolist()
    pl, note = en.mapping_placement(net, dev)
    assert pl is not None and note == ""


def test_learning_hook_counts_pairwise_stdp_updates():
    """A plastic projection (``Projection.plasticity`` set) pays one update per synapse a pre spike fans out
    to and one per synapse a post spike fans in from (pairwise STDP, Davies 2018's 'synaptic update')."""
    from dataclasses import replace
    base = hand_net()
    stdp = LoihiLearning(terms=(("x0", ("y1",), -1, 0), ("y0", ("x1",), 1, 0)),
                         x1_impulse=16, x1_tau=8, y1_impulse=16, y1_tau=8)  # Lava-style pair STDP
    net = base.replace(projections=(replace(base.projections[0], plasticity=stdp), base.projections[1]))
    dev = en.load_device("loihi")
    act = measure_activity(net, hand_spikes(), {"loihi": (en.device_placement(net, dev), dev)})
    A = act.layer("A")
    assert A.plastic and not act.layer("B").plastic
    # pre: the synops (3, 0, 1); post: A0 (fan-in 2 nonzero synapses) fires at t0 and t2
    assert A.learning_updates.tolist() == [3 + 2, 0, 1 + 2]
    r = en.neuromorphic_energy(dev, act, "loihi")
    assert r["breakdown"]["learning"] == pytest.approx(8 / 2 * 120e-12)


# ----------------------------------------------------------------------------- stream schedule
def hand_recurrent_net() -> Network:
    """in(2) -> A(2) one-to-one (+20), A -> A mutual inhibition (-20). du = dv = 4095: u and v forget
    each step, so A fires exactly one step after a +20 arrives (a = 20 > vth 10) and never on -20."""
    A = LoihiLIF(2, du=4095, dv=4095, vth=10)
    return Network("hand_rec", Input("in", 2), [Population("A", A)],
                   [Projection("inA", "in", "A", LoihiDense(np.array([[20, 0], [0, 20]]))),
                    Projection("AA", "A", "A", LoihiDense(np.array([[0, -20], [-20, 0]])))], "A", 3)


def test_stream_counts_a_recurrent_net_by_hand():
    """Two samples x 3 steps as one stream (no rest). Step 0: in0 fires -> A0 fires at step 1 ->
    inhibits A1 at step 2. Step 2: in0 and in1 fire -> A0, A1 fire at step 3 -> inhibit each other at
    step 4. A sits at depth 1, so its windows are steps 1-3 and 4-6 (6 is past the stream: silent).
    Synops, counted at the receiving step: step 1: 1 (in0->A0), 2: 1 (A0->A1, recurrent: A's own
    train one step earlier), 3: 2 (in->A), 4: 2 (A0->A1, A1->A0) -> windows [1, 1, 2] + [2, 0, 0]."""
    net = hand_recurrent_net()
    samples = np.zeros((2, 3, 2), dtype=bool)
    samples[0, 0, 0] = True
    samples[0, 2] = True
    res = run(net, samples, Schedule("stream", 3))
    assert res.stream["A"].astype(int).tolist() == [[0, 0], [1, 0], [0, 0], [1, 1], [0, 0], [0, 0]]
    dev = en.load_device("loihi")
    act = en.count_activity(net, res, {"loihi": (en.device_placement(net, dev), dev)})
    (A,) = act.layers
    assert act.samples == 2 and act.timesteps == 3 and act.schedule == "stream"
    assert A.synops.tolist() == [1 + 2, 1 + 0, 2 + 0]
    assert A.spikes.tolist() == [1, 0, 2]                  # steps 1 and 3 of the first window
    assert act.input_spikes.tolist() == [1, 0, 2]          # the input (depth 0) owns steps 0-2, 3-5
    assert (A.synapses, A.dense_synapses) == (4, 8)
    # active: u != 0 after the step or state entering it. Window 1: A0 gets +20 (steps 1, 3), A1 -20
    # (step 2) and +20 (step 3); window 2 (steps 4-6): both get -20 at step 4 and carry it into step 5,
    # which continues window 1's step 3 too: the stream does not reset. A1 at step 1 and both at step 6 idle.
    assert A.active_updates.tolist() == [1 + 2, 2 + 2, 2 + 0]
    assert A.inactive_updates.tolist() == [1, 0, 2] and not A.learning_updates.any()
    # A's spikes go to its own core (recurrent): one message per spike
    assert act.routing["loihi"].messages["A"].tolist() == [1, 0, 2]
    r = en.neuromorphic_energy(dev, act, "loihi")
    assert r["breakdown"]["synops"] == pytest.approx(6 / 2 * dev["synop"])
    # the dense baseline steps the whole network: (2x2 + 2x2) MACs and 2 neuron updates per step
    assert en.StreamWorkload.of(net, 3).op_counts() == {"macs": 3 * 8, "neuron_updates": 3 * 2}


def test_stream_and_batched_schedules_are_counted_alike():
    """The hand network forgets its state every step, so on the stream schedule (no resets) it spikes
    exactly as batched: the same code counts the same synops, spikes, messages and time per step.
    Only where a window ends with u/v nonzero does the next window's first step count active on the
    stream (the state carries over) where the batched schedule resets it."""
    net = hand_net()
    dev = en.load_device("loihi")
    acts = {kind: en.count_activity(net, run(net, hand_spikes(), Schedule(kind, 3)),
                                    {"loihi": (en.device_placement(net, dev), dev)})
            for kind in ("batched", "stream")}
    b, s = acts["batched"], acts["stream"]
    assert s.input_spikes.tolist() == b.input_spikes.tolist()
    for name in ("A", "B"):
        lb, ls = b.layer(name), s.layer(name)
        assert lb.synops.tolist() == ls.synops.tolist() and lb.spikes.tolist() == ls.spikes.tolist()
        assert b.routing["loihi"].messages[name].tolist() == s.routing["loihi"].messages[name].tolist()
    # sample 0 ends with A0 (u = 12 << 6) and B (u = 20 << 6) charged: sample 1's step 0 is active on the stream
    assert b.layer("A").active_updates.tolist() == [2, 2, 1] and s.layer("A").active_updates.tolist() == [3, 2, 1]
    assert b.layer("B").active_updates.tolist() == [1, 1, 1] and s.layer("B").active_updates.tolist() == [2, 1, 1]


def test_learning_run_counts_active_updates_exactly():
    """A projection that learns on the stream: its weights move, so the synops and learning updates
    cover every synapse, and the active updates come from the probed u/v — exact, not the old upper
    bound (all active). Potentiation only, weights stay positive and their row sums below 64, so
    with du = dv = 4095 a neuron is active exactly at a step where an input spike arrives and at the
    step after (u = 64 a < 4096 decays to 0 in one step)."""
    rule = LoihiLearning(terms=(("y0", ("x1",), 1, -5),), x1_impulse=16, x1_tau=4)
    net = Network("learn", Input("in", 3), [Population("A", LoihiLIF(2, du=4095, dv=4095, vth=10))],
                  [Projection("inA", "in", "A", LoihiDense(np.array([[6, 6, 6], [3, 4, 5]]), sign_mode=2),
                              plasticity=rule)], "A", 6)
    samples = np.random.default_rng(5).random((5, 6, 3)) < 0.35
    res = run(net, samples, Schedule("stream", 6, rest=2), learn=True)
    w = res.weights["inA"]
    assert (w >= net.projections[0].synapse.weight).all() and w.sum(axis=1).max() < 64   # the premise
    assert (w != net.projections[0].synapse.weight).any()                                # it learned
    act = en.count_activity(net, res)
    (A,) = act.layers
    assert A.plastic and act.learning_epochs == {"inA": res.learning_updates["inA"]}
    stream = res.input_spikes                        # [40, 3]; A (depth 1) at step s receives step s - 1
    arrives = np.zeros(41, dtype=bool)
    arrives[1:] = stream.any(axis=1)
    active = arrives[1:] | arrives[:-1]              # A's steps 1..40: input now or one step before
    both = np.repeat(active[:, None], 2, axis=1).reshape(5, 8, 2)
    assert A.active_updates.tolist() == both.sum(axis=(0, 2)).tolist()
    assert A.active_updates.sum() < 5 * 8 * 2        # not everything (the old bound)
    pre = stream.reshape(5, 8, 3).sum(axis=(0, 2))   # every pre spike reaches all 2 synapses ...
    post = res.spikes["A"].sum(axis=(0, 2))          # ... and every post spike updates all 3 of its own
    assert A.synops.tolist() == (2 * pre).tolist()
    assert A.learning_updates.tolist() == (2 * pre + 3 * post).tolist()


def test_counting_needs_recorded_and_probed_results():
    net = hand_net()
    res = get_backend("cpu").run(net, hand_spikes(), Schedule("batched", 3), record=True)
    with pytest.raises(NeurocompError, match=r"lacks u/v of A, B; count activity on a run with record=True, probe=True"):
        en.count_activity(net, res)


def test_baseline_workload_follows_the_network():
    """Batched (layered and static): the equivalent ANN (one dense pass); a stream — recurrent, or
    state carried from sample to sample — the network stepped densely, a window's steps per inference."""
    layered = en.estimate_energy(hand_net(), run(hand_net(), hand_spikes(), Schedule("batched", 3)),
                                 baseline="gpu", measure=False).data
    assert "workload" not in layered["baselines"]["gpu"] and layered["baselines"]["gpu"]["macs"] == 8
    streamed = en.estimate_energy(hand_net(), run(hand_net(), hand_spikes(), Schedule("stream", 3)),
                                  baseline="gpu", measure=False).data
    assert streamed["baselines"]["gpu"]["workload"]["steps_per_inference"] == 3
    rec_net = hand_recurrent_net()
    rec = en.estimate_energy(rec_net, run(rec_net, np.zeros((2, 3, 2), dtype=bool), Schedule("stream", 3, rest=1)),
                             baseline="gpu", measure=False).data
    assert rec["baselines"]["gpu"]["workload"]["steps_per_inference"] == 4 and rec["baselines"]["gpu"]["macs"] == 4 * 8


# ----------------------------------------------------------------------------------- baselines
def test_equivalent_ann_and_op_model():
    net = hand_net()
    layers = en.equivalent_ann(net)
    assert [layer.weight.shape for layer in layers] == [(2, 3), (1, 2)]
    ops = en.ann_op_counts(layers)
    assert ops == {"macs": 8, "neuron_updates": 3}
    gpu = en.load_device("gpu-titan-black")
    b = en.conventional_energy(gpu, layers, np.zeros(3), measure=False)
    assert b["op_model_joules_per_inference"] == pytest.approx((8 + 3) * 0.3e-9)
    assert b["arithmetic_floor_joules_per_inference"] == pytest.approx(8 * 4.6e-12)
    lat = (2 * 2 + 2) * 9.6e-6                        # 2 kernels per layer + 2 copies, one launch each
    assert b["latency_s"] == pytest.approx(lat) and not b["measured"]
    assert b["time_power_joules_per_inference"] == pytest.approx(lat * 250)
    assert b["time_power_range_joules"] == pytest.approx([lat * 10, lat * 250])


def test_gpu_baseline_says_whether_it_measured():
    import torch
    layers = en.equivalent_ann(hand_net())
    b = en.conventional_energy(en.load_device("gpu-titan-black"), layers, np.zeros(3), measure=True)
    if torch.cuda.is_available():
        assert b["measured"] and b["latency_measured"]
    else:
        assert not b["measured"] and "no GPU on this machine" in b["time_power_how"]


def test_cpu_baseline_latency_is_measured_here():
    layers = en.equivalent_ann(hand_net())
    b = en.conventional_energy(en.load_device("cpu-i7-4960x"), layers, np.zeros(3))
    assert b["measured"] and b["latency_measured"]
    assert 0 < b["latency_s"] < 0.1
    if not b["energy_measured"]:  # no RAPL counter: measured latency x the descriptor's power
        assert b["time_power_joules_per_inference"] == pytest.approx(b["latency_s"] * 130.0)
        assert "latency measured on this machine" in b["time_power_how"]


# ---------------------------------------------------------------------------- NeuroBench check
@pytest.mark.slow
def test_synops_match_neurobench_definition_on_mnist_example():
    """NeuroBench's SynapticOperations, implemented independently the way it does it — forward hooks on
    the real torch module's nn.Linear layers, a binary copy of each layer (nonzero weight -> 1, no
    bias) applied to the binarised layer input, summed and divided by samples — must equal our count
    on the float IR. Then the same hooks replayed on the quantised network's effective weights
    (where quantisation zeroes small weights) must equal our count on the fixed-point network."""
    import torch
    import torch.nn.functional as F
    from neurocomp.data import load_split
    from neurocomp.ir.encodings import encode
    from neurocomp.frontends.torch import build_module, module_to_ir
    from neurocomp.spec import input_encoding as spec_encoding
    from neurocomp.passes.calibrate import calibrate
    from neurocomp.passes.quantize import quantize_network
    from neurocomp.spec import load_spec
    from neurocomp.targets import FixedPointFormat, load_descriptor

    spec = load_spec(REPO / "models/mnist_mlp/model.yaml")
    module = build_module(spec.source.factory, spec.resolve(spec.source.weights), spec.base_dir,
                          spec.source.kwargs).double()
    split = load_split(spec.dataset.name, spec.dataset.holdout, spec.dataset.seed, spec.base_dir)
    enc_net = module_to_ir(module, 784, spec.name, spec.input.timesteps, spec_encoding(spec))
    spikes = encode(split.x_test[:24], spec_encoding(spec), spec.input.timesteps, seed=spec.input.seed)

    def neurobench_synops(linears, feed):
        """Hooks on each nn.Linear: effective synops = binary layer applied to binary inputs."""
        total, inputs = [0.0], {}

        def hook(mod, args, out):
            x = args[0]
            inputs.setdefault(mod, []).append(x.detach())
            bin_w = (mod.weight != 0).to(x.dtype)
            total[0] += float(F.linear((x != 0).to(x.dtype), bin_w).sum())

        handles = [lin.register_forward_hook(hook) for lin in linears]
        try:
            with torch.no_grad():
                feed()
        finally:
            for h in handles:
                h.remove()
        return total[0] / len(spikes), inputs

    # float: the real trained module, float64, same input spikes
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    nb_float, seen = neurobench_synops(linears, lambda: module(torch.from_numpy(spikes.astype(np.float64))))
    ours_float = measure_activity(enc_net, spikes)
    assert sum(lc.synops.sum() for lc in ours_float.layers) / len(spikes) == pytest.approx(nb_float, rel=0, abs=1e-9)
    # the premise: our simulator produced the same hidden spikes the torch module did
    hidden = enc_net.populations[0].name
    sim_hidden = simulate(enc_net, spikes, record=True).spikes[hidden]
    assert np.array_equal(seen[linears[1]][0].numpy() != 0, sim_hidden)
    assert nb_float > 0

    # fixed point: the deployed network; NeuroBench hooks on Linear layers holding its effective weights,
    # fed with each layer's recorded input spikes
    fmt = FixedPointFormat.from_descriptor(load_descriptor("loihi2"))
    peaks = calibrate(enc_net, fmt, spikes, Schedule("batched", spikes.shape[1])).peaks
    fixed = quantize_network(enc_net, fmt, peaks).fixed
    rec = simulate(fixed, spikes, record=True)
    qlin = []
    for proj in fixed.projections:
        w = fxp.effective_weights(proj.synapse)
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.astype(np.float64)))
        qlin.append((lin, proj.source))
    srcs = {fixed.input.name: spikes, **rec.spikes}
    nb_fixed, _ = neurobench_synops([lin for lin, _ in qlin], lambda: [
        lin(torch.from_numpy(srcs[src].astype(np.float64))) for lin, src in qlin])
    ours_fixed = measure_activity(fixed, spikes)
    assert sum(lc.synops.sum() for lc in ours_fixed.layers) / len(spikes) == pytest.approx(nb_fixed, rel=0, abs=1e-9)
    # not vacuous: quantisation zeroed weights that were nonzero in float, so the counts must differ
    zeroed = sum(int(((fxp.effective_weights(p.synapse) == 0) & (q.synapse.weight != 0)).sum())
                 for p, q in zip(fixed.projections, enc_net.projections))
    assert zeroed > 0


# ------------------------------------------------------------------------- descriptors via the CLI
def _cli():
    from neurocomp.cli.main import cli  # importing it registers every cmd_* module's command
    return cli


def _write_variant(tmp_path: Path, base: str, edit, name: str) -> Path:
    doc = yaml.safe_load((REPO / "targets" / f"{base}.yaml").read_text())
    edit(doc["energy"])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_shipped_device_descriptors_are_valid_and_sourced():
    for name in ("loihi", "loihi2", "gpu-titan-black", "cpu-i7-4960x"):
        dev = en.load_device(name)
        assert dev.figures and all(f.source for f in dev.figures.values())
        assert all(f.value >= 0 for f in dev.figures.values())
    assert "reused" in en.load_device("loihi2").figures["synop"].source   # Loihi 2 says it borrows Loihi 1's
    assert set(en.energy_devices()) >= {"loihi", "loihi2", "gpu-titan-black", "cpu-i7-4960x"}


@pytest.mark.parametrize("base, edit, option, message", [
    ("loihi", lambda e: e.pop("synop"), "--devices", "energy.synop: missing"),
    ("loihi", lambda e: e["hop_ns"].update(value=-4.0e-12), "--devices", "energy.hop_ns.value: must be a finite number >= 0"),
    ("loihi", lambda e: e["static_power"].pop("source"), "--devices", "energy.static_power.source: missing"),
    ("loihi", lambda e: e["mesh"].pop("tiles_x"), "--devices", "energy.mesh.tiles_x: missing"),
    ("loihi", lambda e: e.update(device_class="quantum"), "--devices", "energy.device_class: 'quantum'"),
    ("gpu-titan-black", lambda e: e["active_power"].update(value=-250.0), "--baseline", "energy.active_power.value: must be a finite number >= 0"),
    ("gpu-titan-black", lambda e: e.pop("latency_model"), "--baseline", "energy.latency_model: missing"),
    ("gpu-titan-black", lambda e: None, "--devices", "--devices takes neuromorphic devices"),
])
def test_bad_descriptor_is_a_one_line_error_exit_2(tmp_path, base, edit, option, message):
    path = _write_variant(tmp_path, base, edit, "bad")
    out = tmp_path / "out"
    res = CliRunner().invoke(_cli(), ["energy", str(tmp_path / "no-build"), option, str(path), "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and message in lines[0], res.output
    assert not out.exists()


def test_unknown_device_is_a_one_line_error_exit_2(tmp_path):
    res = CliRunner().invoke(_cli(), ["energy", str(tmp_path), "--devices", "loihi,loihi9"])
    assert res.exit_code == 2
    assert res.output.strip().startswith("error: unknown device 'loihi9'") and "loihi2" in res.output
    res = CliRunner().invoke(_cli(), ["energy", str(tmp_path), "--baseline", "tpu"])
    assert res.exit_code == 2 and "unknown device 'tpu'" in res.output


# ------------------------------------------------------------------------------ end to end + HTML
@pytest.fixture(scope="module")
def tiny_build(tmp_path_factory):
    """A compiled build of a small digits network, with --energy folded into its compile report."""
    from neurocomp.pipeline import compile_model
    d = write_tiny_model(tmp_path_factory.mktemp("tiny"), hidden=24, vth=0.5, gain=3.0, seed=1,
                         timesteps=10, holdout=60)
    report = compile_model(d / "model.yaml", target="cpu", out=d / "build", energy=True)
    return d / "build", report


@pytest.mark.slow
def test_compile_energy_and_energy_command_end_to_end(tiny_build, tmp_path):
    build, compile_report = tiny_build
    on_disk = json.loads((build / "report.json").read_text())
    summary = on_disk["energy"]
    assert set(summary["devices"]) == {"loihi", "loihi2"} and summary["samples"] == 60
    assert summary["baseline"]["device"] == "gpu-titan-black"

    out = tmp_path / "energy"
    res = CliRunner().invoke(_cli(), ["energy", str(build), "--baseline", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads((out / "energy.json").read_text())
    assert data["samples"] == 60 and data["baseline"]["device"] == "cpu-i7-4960x" and data["baseline"]["measured"]
    for name in ("loihi", "loihi2"):
        d = data["devices"][name]
        assert d["joules_per_inference"] == pytest.approx(sum(d["breakdown"].values()))
        assert d["joules_per_spike"] == pytest.approx(d["joules_per_inference"] / d["spikes_per_inference"])
        assert d["joules_per_synop"] == pytest.approx(d["joules_per_inference"] / d["synops_per_inference"])
        assert [lay["population"] for lay in d["per_layer"]] == [p["name"] for p in on_disk["layers"]]
        assert data["ratios"][name]["time_power"] == pytest.approx(
            data["baseline"]["time_power_joules_per_inference"] / d["joules_per_inference"])
        # the compile summary counted the same activity on the same split
        assert summary["devices"][name]["dynamic_joules_per_inference"] == pytest.approx(d["dynamic_joules_per_inference"])
    assert data["activity"]["synaptic_operations"]["Effective_ACs"] == pytest.approx(summary["synaptic_operations"])
    for key in ("loihi.synop", "loihi2.static_power", "cpu-i7-4960x.active_power", "gpu-titan-black.mac"):
        assert data["sources"][key]
    page = (out / "energy.html").read_text()
    assert page.count("data:image/png;base64,") == 4
    assert "src=\"http" not in page and "href=\"http" not in page and "<script" not in page
    assert "x less than" in res.output and "dominates" in res.output


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium); this test renders energy.html headless")
    return exe


def _chromium_args(exe: str, profile: Path) -> list:
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]


@pytest.mark.slow
def test_html_report_renders_in_headless_chromium(tmp_path):
    from PIL import Image
    from neurocomp.report.common import fmt_si
    from neurocomp.report.energy_page import COLOURS, render_energy_html

    exe = _chromium()
    rng = np.random.default_rng(3)
    net = Network("render", Input("in", 60), [Population("hidden", LoihiLIF(30, 600, 300, 120)),
                                              Population("out", LoihiLIF(8, 600, 300, 60))],
                  [Projection("w1", "in", "hidden", LoihiDense(rng.integers(-40, 110, (30, 60)))),
                   Projection("w2", "hidden", "out", LoihiDense(rng.integers(-40, 110, (8, 30))))], "out", 16)
    report = en.estimate_energy(net, run(net, rng.random((40, 16, 60)) < 0.15), baseline="gpu")
    page = tmp_path / "energy.html"
    page.write_text(render_energy_html(report.data, report.activity.raster))

    shot = tmp_path / "shot.png"
    subprocess.run(_chromium_args(exe, tmp_path / "p1") + [f"--screenshot={shot}", "--window-size=1200,2000",
                                                           page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (2000, 1200)
    assert img.std() > 20, "screenshot is blank"

    def pixels_of(hex_colour: str, tol: int = 8) -> int:
        rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(img - rgb).max(axis=2) <= tol).sum())

    # the bars were drawn: synop bars (per-layer and device comparison), time x power and op-model bars
    for comp in ("synops", "time_power", "op_model", "static"):
        assert pixels_of(COLOURS[comp]) > 400, f"no {comp} bars ({COLOURS[comp]}) in the screenshot"

    dom = subprocess.run(_chromium_args(exe, tmp_path / "p2") + ["--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<img") == 4
    for name, d in report.data["devices"].items():
        assert f'data-value="{float(d["joules_per_inference"])!r}"' in dom
        assert fmt_si(d["joules_per_inference"]) in dom
    base = report.data["baseline"]
    assert f'data-value="{float(base["time_power_joules_per_inference"])!r}"' in dom
    assert "Davies et al." in dom and "Degnan" in dom
