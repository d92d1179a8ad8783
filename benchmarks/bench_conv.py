"""Conv SNN throughput on models/mnist_cnn, measured side by side in one run:

* **cpu** — the ``cpu`` target (its batch engine: :class:`neurocomp.backends.conv.ConvPopulationKernel`
  for the conv populations, ``LifPopulationKernel`` for the dense ones), layer by layer over a batch;
* **lava** — the ``loihi-sim`` target: the same fixed-point network as the Lava processes neurocomp
  builds (``RingBuffer -> Conv/Dense -> LIFReset``, samples back to back) run by Lava's runtime with
  ``Loihi2SimCfg(select_tag="fixed_pt")``, on a few samples (Lava runs ~tens of steps per second here);
* **torch** — the float32 torch model itself (``models/mnist_cnn/net.py``, no grad) at the same batch.

It prints sample-steps/s for each and the ratios cpu/lava and cpu/torch, checks that cpu and Lava
agree spike for spike on the samples Lava ran, and prints the engine's per-layer choice (scatter or
GEMM) with both paths' times on the real spike trains, which is how the choice was calibrated.

    python benchmarks/bench_conv.py [--batch 256] [--lava-samples 3] [--threads 2]

Measured through the targets themselves (2 cores shared with other jobs, load ~6; committed weights,
batch 256 x 25 steps): cpu 1837 sample-steps/s, torch float32 693, Lava 2.9 (steady state, 4 vs 1
samples; every population recorded) -> cpu/lava 640x, cpu/torch 2.65x; cpu equal to Lava on every
spike. Engine paths on the real spike trains: conv1 (input density 0.129) scatter 8198 vs GEMM 5420
sample-steps/s, conv2 (lif1 density 0.045) scatter 2406 vs GEMM 2463 — near the crossover, where the
choice hardly matters. (Measured earlier with a hand-built Lava graph recording nothing but spikes, at
load ~3: cpu 3058, torch 923, Lava 12.1.)

The fixed-point network is the pipeline's own (``neurocomp.passes.quantize``, calibrated on 50
training digits, as ``neurocomp compile`` does), the same on every target.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models" / "mnist_cnn"))


def load_model(weights: Path):
    from net import build
    model = build()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lava-samples", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=ROOT / "models/mnist_cnn/weights.pt")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from neurocomp.backends import conv as cv
    from neurocomp.backends import get_backend
    from neurocomp.data import load_split
    from neurocomp.frontends.torch import module_to_ir
    from neurocomp.ir import LoihiLIF, RateEncoding
    from neurocomp.ir.encodings import encode
    from neurocomp.ir.schedule import BATCHED, Schedule
    from neurocomp.ir.synapses import LoihiConv
    from neurocomp.passes import quantize
    from neurocomp.targets import FixedPointFormat, load_descriptor

    T = 25
    model = load_model(args.weights)
    net = module_to_ir(model, 784, "mnist_cnn", T, RateEncoding(1.0), input_shape=(1, 28, 28))
    split = load_split("mnist5k", holdout=1000, seed=0)
    fmt = FixedPointFormat.from_descriptor(load_descriptor("loihi2"))
    fixed = quantize(net, fmt, encode(split.x_train[:50], RateEncoding(1.0), T, seed=1)).fixed
    sched = Schedule(BATCHED, T)
    cpu_target, lava_target = get_backend("cpu"), get_backend("loihi-sim")
    x = encode(split.x_test[: args.batch], RateEncoding(1.0), T, seed=0)
    print(f"models/mnist_cnn: {[p.shape for p in net.populations]}, batch {args.batch} x {T} steps, "
          f"{args.threads} threads")

    cpu_target.run(fixed, x[:4], sched)                                   # compile / load the kernels
    t0 = time.perf_counter()
    cpu = cpu_target.run(fixed, x, sched, record=True)
    t_cpu = time.perf_counter() - t0
    cpu_rate = args.batch * T / t_cpu

    xt = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        model(xt[:4])
        t0 = time.perf_counter()
        model(xt)
        t_torch = time.perf_counter() - t0
    torch_rate = args.batch * T / t_torch

    k = args.lava_samples
    # Lava's steady state: a k-sample run minus a 1-sample run (start-up and compile cancel out)
    t0 = time.perf_counter()
    lava_target.run(fixed, x[:1], sched)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    lava = lava_target.run(fixed, x[:k], sched, record=True)
    t_lava = time.perf_counter() - t0
    lava_rate = (k - 1) * T / max(t_lava - t_one, 1e-9)
    same = all(np.array_equal(lava.spikes[p.name], cpu.spikes[p.name][:k]) for p in fixed.populations)

    print(f"cpu   (neurocomp fixed point) {cpu_rate:10.1f} sample-steps/s")
    print(f"torch (float32, same batch)   {torch_rate:10.1f} sample-steps/s")
    print(f"lava  (Conv + LIF processes)  {lava_rate:10.1f} sample-steps/s   (steady state: {k} vs 1 samples; "
          f"{k * T / t_lava:.1f} with start-up)")
    print(f"cpu / lava  = {cpu_rate / lava_rate:8.1f} x")
    print(f"cpu / torch = {cpu_rate / torch_rate:8.2f} x")
    print(f"cpu == lava on every spike of the {k} samples: {same}")

    print("per conv layer, both engine paths on the real spike trains:")
    emitted = {fixed.input.name: x}
    emitted.update(cpu.spikes)
    for pop in fixed.execution_order():
        (proj,) = fixed.incoming(pop.name)
        if not isinstance(proj.synapse, LoihiConv):
            continue
        src = emitted[proj.source]
        kernel = {m: cv.ConvPopulationKernel(pop.neuron, [(proj.synapse, fixed.shape_of(proj.source))], mode=m)
                  for m in ("scatter", "gemm")}
        times = {}
        for m, kern in kernel.items():
            kern.run([src[:2]])
            t0 = time.perf_counter()
            kern.run([src])
            times[m] = time.perf_counter() - t0
        auto = cv.ConvPopulationKernel(pop.neuron, [(proj.synapse, fixed.shape_of(proj.source))]).choose(src)
        print(f"  {pop.name:14s} input density {src.mean():.3f}: scatter {args.batch * T / times['scatter']:9.0f}, "
              f"gemm {args.batch * T / times['gemm']:9.0f} sample-steps/s; auto picks {auto}")
    assert isinstance(fixed.populations[0].neuron, LoihiLIF)


if __name__ == "__main__":
    main()
