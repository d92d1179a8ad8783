"""Lava's own process models, run by Lava, against an independent integer reference written here.

The reference below is deliberately naive — Python ints, one neuron at a time, straight from the
semantics documented in Lava 0.10 (lava/proc/lif/models.py, lava/proc/dense/models.py) — and shares
no code with neurocomp.backends.fixed_point. Each sample starts from zero state (what the staggered LIFReset
pipeline in backends/lava.py must deliver), so this also proves no state leaks between samples.
"""
from __future__ import annotations

import numpy as np
import pytest

from neurocomp.backends.lava import run_lava
from neurocomp.backends.batch_engine import simulate
from neurocomp.ir import Input, LoihiDense, LoihiLIF, Network, Population, Projection


def _lava_weights(w, sign_mode, nwb):
    """weightutils.clip_weights(num_bits=8) then truncate_weights(num_weight_bits), element by element."""
    out = []
    mixed = sign_mode == 1
    for row in w:
        r = []
        for x in row:
            x = int(x)
            if sign_mode == 3:
                x = -x
            lo, hi = (-256 if mixed else 0), 255
            x = min(max(x, lo), hi)
            drop = 8 - nwb + (1 if mixed else 0)
            x = (x >> drop) << drop
            r.append(-x if sign_mode == 3 else x)
        out.append(r)
    return out


def _decay(x, keep):
    p = x * keep
    mag = abs(p) >> 12
    return mag if p >= 0 else -mag


def reference_run(net: Network, spikes):
    """({pop: [samples][T][n] bools}, {pop: {"u"|"v": [samples][T][n] ints}}) by the book."""
    pops = [p for p in net.populations]
    weights = {pr.name: _lava_weights(pr.synapse.weight, pr.synapse.sign_mode, pr.synapse.num_weight_bits)
               for pr in net.projections}
    out = {p.name: [] for p in pops}
    states = {p.name: {"u": [], "v": []} for p in pops}
    for sample in spikes:
        u = {p.name: [0] * p.size for p in pops}
        v = {p.name: [0] * p.size for p in pops}
        trains = {p.name: [] for p in pops}
        uv = {p.name: {"u": [], "v": []} for p in pops}
        for t in range(len(sample)):
            emitted = {net.input.name: [bool(x) for x in sample[t]]}
            for p in pops:  # layered: sources come first
                nrn = p.neuron
                a = [0] * p.size
                for pr in net.incoming(p.name):
                    w, s = weights[pr.name], emitted[pr.source]
                    for i in range(p.size):
                        acc = sum(w[i][j] for j in range(len(s)) if s[j])
                        e = pr.synapse.weight_exp
                        a[i] += acc << e if e > 0 else acc >> -e
                fired = []
                for i in range(p.size):
                    uu = _decay(u[p.name][i], 4096 - (nrn.du + 1)) + (a[i] << 6)
                    if uu > 2 ** 23:
                        uu -= 2 ** 24
                    elif uu <= -2 ** 23:
                        uu += 2 ** 24
                    bias = int(nrn.bias_mant[i]) << nrn.bias_exp
                    vv = _decay(v[p.name][i], 4096 - nrn.dv) + uu + bias
                    vv = min(max(vv, -2 ** 23 + 1), 2 ** 23 - 1)
                    f = vv > (nrn.vth << 6)
                    u[p.name][i], v[p.name][i] = uu, (0 if f else vv)
                    fired.append(f)
                emitted[p.name] = fired
                trains[p.name].append(fired)
                uv[p.name]["u"].append(list(u[p.name]))
                uv[p.name]["v"].append(list(v[p.name]))
        for p in pops:
            out[p.name].append(trains[p.name])
            for k in ("u", "v"):
                states[p.name][k].append(uv[p.name][k])
    return ({k: np.array(v, dtype=bool) for k, v in out.items()},
            {k: {x: np.array(y, dtype=np.int64) for x, y in d.items()} for k, d in states.items()})


def _network(rng):
    n_in, n_h, n_o, T = 24, 12, 6, 10
    w1 = rng.integers(-256, 256, (n_h, n_in))              # mixed, full 8-bit, odd values get truncated
    w2 = rng.integers(0, 256, (n_o, n_h))                   # excitatory
    w3 = -rng.integers(0, 256, (n_o, n_h))                  # inhibitory, second projection into the same layer
    return Network(
        "ref", Input("input", n_in),
        [Population("h", LoihiLIF(n_h, du=700, dv=300, vth=40, bias_mant=rng.integers(-60, 120, n_h), bias_exp=3)),
         Population("o", LoihiLIF(n_o, du=4095, dv=0, vth=25, bias_mant=5, bias_exp=1))],
        [Projection("p1", "input", "h", LoihiDense(w1, num_weight_bits=7, weight_exp=-1, sign_mode=1)),
         Projection("p2", "h", "o", LoihiDense(w2, num_weight_bits=8, weight_exp=1, sign_mode=2)),
         Projection("p3", "h", "o", LoihiDense(w3, num_weight_bits=5, weight_exp=0, sign_mode=3))],
        "o", T)


@pytest.mark.slow
def test_lava_matches_independent_reference_spike_for_spike():
    rng = np.random.default_rng(7)
    net = _network(rng)
    spikes = rng.random((4, net.timesteps, net.input.size)) < 0.35
    ref, ref_uv = reference_run(net, spikes)
    lava = run_lava(net, spikes, record=True, probe=True)
    cpu = simulate(net, spikes, record=True, probe=True)
    for name in ("h", "o"):
        assert ref[name].any() and not ref[name].all(), f"{name}: activity must be informative"
        assert np.array_equal(lava.spikes[name], ref[name]), f"Lava vs reference differ in {name}"
        assert np.array_equal(cpu.spikes[name], ref[name]), f"cpu vs reference differ in {name}"
        for var in ("u", "v"):
            assert np.array_equal(lava.states[name][var], ref_uv[name][var]), f"Lava {name}.{var} differs"
            assert np.array_equal(cpu.states[name][var], ref_uv[name][var]), f"cpu {name}.{var} differs"
    # samples differ from each other, so identical trains are not an artefact of a stuck network
    assert len({ref["h"][k].tobytes() for k in range(4)}) == 4
