"""Conv SNN throughput on models/mnist_cnn, measured side by side in one run:

* **cpu** — neurocomp's compiled fixed-point engine (:class:`neurocomp.backends.conv.ConvPopulationKernel`
  for the conv populations, ``LifPopulationKernel`` for the dense ones), layer by layer over a batch;
* **lava** — the same fixed-point network as Lava processes (``RingBuffer -> Conv/Dense -> LIFReset``
  per layer, samples back to back) run by Lava's runtime with ``Loihi2SimCfg(select_tag="fixed_pt")``,
  on a few samples (Lava runs ~tens of steps per second here);
* **torch** — the float32 torch model itself (``models/mnist_cnn/net.py``, no grad) at the same batch.

It prints sample-steps/s for each and the ratios cpu/lava and cpu/torch, checks that cpu and Lava
agree spike for spike on the samples Lava ran, and prints the engine's per-layer choice (scatter or
GEMM) with both paths' times on the real spike trains, which is how the choice was calibrated.

    python benchmarks/bench_conv.py [--batch 256] [--lava-samples 3] [--threads 2]

Measured (2 cores shared with other jobs, load ~3; committed weights, batch 256 x 25 steps):
cpu 3058 sample-steps/s, torch float32 923, Lava 12.1 (3 samples) -> cpu/lava 252x, cpu/torch 3.3x;
cpu equal to Lava on every spike. Engine paths on the real spike trains: conv1 (input density 0.129)
scatter 6768 vs GEMM 6236 sample-steps/s, conv2 (lif1 density 0.045) scatter 2727 vs GEMM 2822 —
near the crossover, where the choice hardly matters.

The fixed-point network comes from a small quantisation here (per layer the largest scale the
8-bit weights, the 17-bit threshold and the 24-bit u/v allow; conv weights through
``conv.quantize_conv``) until the pipeline's quantiser takes Conv; it is the same network on every
target, which is all a throughput comparison needs.
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


def quantize(net, calibration):
    """Float IR -> fixed-point IR, one scale per population (see module docstring)."""
    from neurocomp.backends import conv as cv
    from neurocomp.backends import fixed_point as fxp
    from neurocomp.ir import LoihiLIF, Population, Projection
    from neurocomp.ir.synapses import Conv
    from neurocomp.passes.quantize import _sign_mode, quantize_dense
    from neurocomp.targets import FixedPointFormat, load_descriptor

    fmt = FixedPointFormat.from_descriptor(load_descriptor("loihi2"))
    cal = cv.simulate_layered(net, calibration, engine="float", probe=True)
    pops, projs = [], []
    for pop in net.populations:
        (proj,) = net.incoming(pop.name)
        n, w = pop.neuron, proj.synapse.weight
        peak = max(np.abs(cal[pop.name][2][0]).max(), np.abs(cal[pop.name][2][1]).max(), n.vth)
        limits = [(2 ** 17 - 1) / n.vth, (2 ** 23 - 1) / (64 * 2.0 * peak)]
        if isinstance(proj.synapse, Conv):
            limits.append(cv.max_conv_scale(w))
        else:
            mixed = int(_sign_mode(w) == fxp.MIXED)
            limits.append((2 ** (8 - mixed) - 1) * 2.0 ** (fmt.weight_exp_max + mixed) / np.abs(w).max())
        scale = min(limits)
        syn = cv.quantize_conv(proj.synapse, scale) if isinstance(proj.synapse, Conv) else \
            quantize_dense(w, scale, fmt, 8)
        lif = LoihiLIF(pop.size, int(np.clip(round(n.du * 4096) - 1, 0, 4095)), int(round(n.dv * 4096)),
                       int(round(n.vth * scale)), np.rint(n.bias * scale * 64).astype(np.int64), 0)
        pops.append(Population(pop.name, lif, shape=pop.shape))
        projs.append(Projection(proj.name, proj.source, proj.target, syn))
    return net.replace(populations=pops, projections=projs)


def run_lava(net, spikes):
    """The fixed network as Lava processes: flat LIFReset populations (reset offsets staggered by
    depth), Lava Conv processes reached through reshape/transpose virtual ports, Dense processes;
    returns each population's spikes ``[samples, T, n]`` and the wall time of the run."""
    from neurocomp.backends import conv as cv
    from neurocomp.backends.lava import ensure_lava_runtime
    from neurocomp.ir.synapses import LoihiConv
    ensure_lava_runtime()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIFReset
    from lava.utils.weightutils import SignMode

    samples, T, n_in = spikes.shape
    depth = net.depths()
    total = samples * T + max(depth.values())
    data = np.zeros((n_in, total), dtype=np.int32)
    data[:, : samples * T] = spikes.reshape(samples * T, n_in).T
    src = Source(data=data)
    ports, lifs, sinks = {net.input.name: src.s_out}, {}, {}
    for pop in net.execution_order():
        n = pop.neuron
        lifs[pop.name] = LIFReset(shape=(pop.size,), du=n.du, dv=n.dv, vth=n.vth, bias_mant=n.bias_mant.astype(np.int32),
                                  bias_exp=n.bias_exp, reset_interval=T, reset_offset=(1 + depth[pop.name]) % T)
        ports[pop.name] = lifs[pop.name].s_out
        sinks[pop.name] = Sink(shape=(pop.size,), buffer=total)
        lifs[pop.name].s_out.connect(sinks[pop.name].a_in)
    for proj in net.projections:
        syn = proj.synapse
        if isinstance(syn, LoihiConv):
            conv = Conv(**cv.lava_conv_kwargs(syn, net.shape_of(proj.source)))
            cv.connect_into_conv(ports[proj.source], conv, net.shape_of(proj.source))
            cv.connect_out_of_conv(conv, lifs[proj.target].a_in, net.shape_of(proj.target))
        else:
            dense = Dense(weights=syn.weight.astype(np.int32), num_weight_bits=syn.num_weight_bits,
                          weight_exp=syn.weight_exp, sign_mode=SignMode(syn.sign_mode))
            ports[proj.source].connect(dense.s_in)
            dense.a_out.connect(lifs[proj.target].a_in)
    start = time.perf_counter()
    try:
        src.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        seconds = time.perf_counter() - start
        out = {}
        for name, sink in sinks.items():
            d = depth[name]
            out[name] = sink.data.get()[:, d: d + samples * T].T.reshape(samples, T, -1).astype(bool)
    finally:
        src.stop()
    return out, seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lava-samples", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=ROOT / "models/mnist_cnn/weights.pt")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from neurocomp.backends import conv as cv
    from neurocomp.data import load_split
    from neurocomp.frontends.torch import module_to_ir
    from neurocomp.ir import LoihiLIF, RateEncoding
    from neurocomp.ir.encodings import encode
    from neurocomp.ir.synapses import LoihiConv

    T = 25
    model = load_model(args.weights)
    net = module_to_ir(model, 784, "mnist_cnn", T, RateEncoding(1.0), input_shape=(1, 28, 28))
    split = load_split("mnist5k", holdout=1000, seed=0)
    fixed = quantize(net, encode(split.x_train[:50], RateEncoding(1.0), T, seed=1))
    x = encode(split.x_test[: args.batch], RateEncoding(1.0), T, seed=0)
    print(f"models/mnist_cnn: {[p.shape for p in net.populations]}, batch {args.batch} x {T} steps, "
          f"{args.threads} threads")

    cv.simulate_layered(fixed, x[:4], engine="jit")                    # compile / load the kernels
    t0 = time.perf_counter()
    cpu = cv.simulate_layered(fixed, x, engine="jit")
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
    lava, t_lava = run_lava(fixed, x[:k])
    lava_rate = k * T / t_lava
    same = all(np.array_equal(lava[p.name], cpu[p.name][0][:k]) for p in fixed.populations)

    print(f"cpu   (neurocomp fixed point) {cpu_rate:10.1f} sample-steps/s")
    print(f"torch (float32, same batch)   {torch_rate:10.1f} sample-steps/s")
    print(f"lava  (Conv + LIF processes)  {lava_rate:10.1f} sample-steps/s   ({k} samples)")
    print(f"cpu / lava  = {cpu_rate / lava_rate:8.1f} x")
    print(f"cpu / torch = {cpu_rate / torch_rate:8.2f} x")
    print(f"cpu == lava on every spike of the {k} samples: {same}")

    print("per conv layer, both engine paths on the real spike trains:")
    emitted = {fixed.input.name: x}
    emitted.update({name: r[0] for name, r in cpu.items()})
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
