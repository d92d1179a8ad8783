"""Core mapping and design-rule checks: fits one core, splits over cores, spans chips, refuses what
breaks a limit (naming the layer and the limit); the `neurocomp targets` listing."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neurocomp.errors import TargetError
from neurocomp.ir import Input, LoihiDense, LoihiLIF, Network, Population, Projection
from neurocomp.passes.place import DesignRuleError, Limits, map_network, mapping_report
from neurocomp.targets import load_descriptor

LOIHI2 = load_descriptor("loihi2")


def fixed_net(sizes, weight_bits=8, weight=None, name="net") -> Network:
    """A layered fixed-point network ``sizes[0] -> sizes[1] -> ...`` with small random weights."""
    rng = np.random.default_rng(0)
    pops, projs = [], []
    prev = "in"
    for i, n in enumerate(sizes[1:]):
        n_pre = sizes[i]
        w = rng.integers(-100, 100, (n, n_pre)) if weight is None else np.full((n, n_pre), weight)
        pops.append(Population(f"l{i + 1}", LoihiLIF(n, du=100, dv=100, vth=50)))
        projs.append(Projection(f"w{i + 1}", prev, f"l{i + 1}", LoihiDense(w, num_weight_bits=weight_bits)))
        prev = f"l{i + 1}"
    return Network(name, Input("in", sizes[0]), pops, projs, prev, timesteps=4)


def with_limits(**changes) -> dict:
    desc = copy.deepcopy(LOIHI2)
    for key, value in changes.items():
        desc["limits"][key]["value"] = value
    return desc


def test_loihi2_limits_are_sourced():
    lim = Limits.from_descriptor(LOIHI2)
    assert (lim.cores_per_chip, lim.neurons_per_core, lim.synaptic_memory_per_core) == (128, 8192, 192 * 1024)
    assert lim.weight_bits == 8
    assert all(lim.sources[k].strip() for k in Limits.FIELDS + ("weight_bits",))
    # inherited by the simulator targets: they map as the chip would
    assert Limits.from_descriptor(load_descriptor("loihi-sim")) == lim


def test_fits_one_core_per_layer():
    p = map_network(fixed_net([64, 16, 10]), LOIHI2)
    assert p.cores == {"l1": [(0, 0)], "l2": [(0, 1)]}
    assert (p.cores_used, p.chips_used) == (2, 1)
    l1, l2 = p.layers()
    # 64 input axons x one 64-bit word (16 weights x 8 bits = 128 bits -> 2 words) x 8 bytes
    assert l1["memory_bytes"] == 64 * 2 * 8 and l1["synapses"] == 64 * 16
    assert l2["memory_bytes"] == 16 * 2 * 8 and l2["fan_in"] == 16
    assert l1["fan_out_max"] == 16 * 1  # every hidden neuron -> the output's one core
    assert l2["fan_out_max"] == 0       # the output goes to the host
    assert p.as_dict()["cores"] == {"l1": [[0, 0]], "l2": [[0, 1]]}


def test_memory_splits_a_layer_over_several_cores():
    # 2000 inputs: a core holding k neurons needs 2000 * ceil(8k / 64) * 8 bytes <= 192 KB -> k <= 96
    net = fixed_net([2000, 200, 10])
    p = map_network(net, LOIHI2)
    assert p.cores["l1"] == [(0, 0), (0, 1), (0, 2)]
    assert p.cores["l2"] == [(0, 3)]
    blocks = [a.neurons for a in p.allocations if a.population == "l1"]
    assert blocks == [len(b) for b in np.array_split(np.arange(200), 3)] == [67, 67, 66]
    row = p.layers()[0]
    assert row["cores"] == 3 and row["memory_utilisation_peak"] <= 1.0
    assert row["memory_bytes"] == sum(2000 * -(-k * 8 // 64) * 8 for k in blocks)
    # 96 neurons would still fit one core, 97 would not: the split is forced by memory, not neurons
    assert 2000 * -(-96 * 8 // 64) * 8 <= LOIHI2["limits"]["synaptic_memory_per_core"]["value"]
    assert 2000 * -(-97 * 8 // 64) * 8 > LOIHI2["limits"]["synaptic_memory_per_core"]["value"]
    # per-neuron cores agree with the contiguous-block convention the energy model reads
    nc = p.neuron_cores("l1")
    assert nc.shape == (200, 2) and nc[0].tolist() == [0, 0] and nc[-1].tolist() == [0, 2]
    assert np.bincount(nc[:, 1]).tolist() == [67, 67, 66]


def test_narrow_weights_pack_more_neurons_per_core():
    wide = map_network(fixed_net([2000, 200, 10], weight_bits=8, weight=4), LOIHI2)
    narrow = map_network(fixed_net([2000, 200, 10], weight_bits=2, weight=4), LOIHI2)
    assert len(narrow.cores["l1"]) < len(wide.cores["l1"])


def test_spans_several_chips():
    desc = with_limits(cores_per_chip=4, neurons_per_core=32)
    p = map_network(fixed_net([64, 150, 40, 10]), desc)
    assert [len(p.cores[n]) for n in ("l1", "l2", "l3")] == [5, 2, 1]
    assert p.chips_used == 2
    assert p.cores["l1"] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    assert p.cores["l3"] == [(1, 3)]
    assert p.layers()[0]["chips"] == [0, 1]
    # l1's neurons fan out to both of l2's cores
    assert p.layers()[0]["fan_out_max"] == 30 * 2


def test_fan_out_limit_splits_the_source_layer():
    # memory splits l2 (24 neurons, 100 inputs, 1600 bytes/core -> 16 per core) over 2 cores, so each
    # l1 neuron needs 2 output axons: 100 on one core = 200 > 128 -> l1 splits into 2 cores of 50
    net = fixed_net([8, 100, 24])
    loose = map_network(net, with_limits(synaptic_memory_per_core=1600))
    assert [len(loose.cores[n]) for n in ("l1", "l2")] == [1, 2]
    assert loose.layers()[0]["fan_out_max"] == 200
    tight = map_network(net, with_limits(synaptic_memory_per_core=1600, fan_out_per_core=128))
    assert [len(tight.cores[n]) for n in ("l1", "l2")] == [2, 2]
    assert tight.layers()[0]["fan_out_max"] == 100 <= 128


@pytest.mark.parametrize("desc, net, words", [
    (LOIHI2, fixed_net([5000, 8, 2]), ["layer 'l1'", "fan-in 5000", "limits.fan_in_per_core=4096"]),
    (LOIHI2, fixed_net([64, 16, 10], weight_bits=9), ["'w1'", "layer 'l1'", "9 bits", "fixed_point.weight_bits"]),
    (LOIHI2, fixed_net([64, 16, 10], weight=300), ["'w1'", "[300, 300]", "[-256, 255]"]),
    (with_limits(chips=1, cores_per_chip=4, neurons_per_core=32), fixed_net([64, 150, 40, 10]),
     ["needs 8 cores", "l1: 5", "limits.chips=1", "limits.cores_per_chip=4"]),
    (with_limits(synaptic_memory_per_core=1024), fixed_net([2000, 4, 2]),
     ["layer 'l1'", "16000 bytes", "limits.synaptic_memory_per_core=1024"]),
    (with_limits(fan_out_per_core=2, neurons_per_core=1), fixed_net([4, 4, 3]),
     ["layer 'l1'", "3 output axons", "limits.fan_out_per_core=2"]),
])
def test_design_rule_violations_name_layer_and_limit(desc, net, words):
    with pytest.raises(DesignRuleError) as e:
        map_network(net, desc)
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)
    # compile keeps going on a simulator target and records the violation; strict (the chip) raises
    assert words[-1] in mapping_report(net, desc)["error"]
    with pytest.raises(DesignRuleError):
        mapping_report(net, desc, strict=True)


def test_descriptor_without_limits_or_sources_is_refused():
    with pytest.raises(TargetError, match="no limits: section"):
        map_network(fixed_net([4, 2]), load_descriptor("float"))
    assert mapping_report(fixed_net([4, 2]), load_descriptor("float")) is None
    desc = copy.deepcopy(LOIHI2)
    desc["limits"]["chips"]["source"] = " "
    with pytest.raises(TargetError, match=r"limits\.chips\.source missing"):
        map_network(fixed_net([4, 2]), desc)
    desc = with_limits(neurons_per_core=0)
    with pytest.raises(TargetError, match=r"limits\.neurons_per_core\.value must be a positive integer"):
        map_network(fixed_net([4, 2]), desc)


def _cli(*args):
    """The installed console script, as a user runs it."""
    exe = Path(sys.executable).parent / "neurocomp"
    return subprocess.run([str(exe), *args], capture_output=True, text=True)


def test_targets_command_lists_support_and_limits():
    r = _cli("targets", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert {"cpu", "float", "loihi-sim", "loihi2"} <= set(rows)
    assert "hil" in rows["loihi-sim"]["supports"] and "mapping" in rows["loihi2"]["supports"]
    assert rows["loihi2"]["runs_here"].startswith("no") and "lava-loihi" in rows["loihi2"]["runs_here"]
    assert rows["loihi2"]["limits"]["cores_per_chip"]["value"] == 128
    assert "hil" not in rows["float"]["supports"]
    r = _cli("targets", "loihi2")
    assert r.returncode == 0 and "Loihi 2 brief" in r.stdout and "fan_in_per_core" in r.stdout
    r = _cli("targets", "nope")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown target 'nope'" in r.stderr
