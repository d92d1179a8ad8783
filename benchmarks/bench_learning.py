"""On-target learning: the cpu stream simulator vs Lava's LearningDense, and learned accuracy vs Brian2.

    .venv/bin/python benchmarks/bench_learning.py                 # speed only, ~1 min
    .venv/bin/python benchmarks/bench_learning.py --seeds 8       # + accuracy over 8 seeds (cpu), ~15 min

Speed: models/diehl_cook (64 inputs, 200 excitatory + 200 inhibitory + 1 tonic neuron, two plastic
projections) learns ``--samples`` digits on Lava (``Loihi2SimCfg(select_tag="fixed_pt")``) and on
the cpu target; the learned weights must be identical. Prints steps/s of each and ``ratio <cpu/lava>``.

Accuracy: learning is chaotic — two runs that differ in one rounding drift apart — so one run's
target-vs-Brian2 gap says little on its own. ``--seeds K`` compiles the example for K
weight-initialisation seeds on the cpu target (bit-identical to Lava, proven above and by tests) and
prints each seed's accuracy on target and in Brian2 (float), then both spreads, the mean gap and the
largest one.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def speed(samples: int) -> None:
    from neurocomp.backends.lava import run_stream_lava
    from neurocomp.backends.stream_engine import run_stream
    from neurocomp.data import load_split
    from neurocomp.ir.encodings import encode
    from neurocomp.frontends.brian2 import load_brian2
    from neurocomp.ir.schedule import to_stream
    from neurocomp.spec import input_encoding as spec_encoding
    from neurocomp.quantize_learning import quantize_stream_network
    from neurocomp.spec import load_spec
    from neurocomp.targets import FixedPointFormat, load_descriptor

    spec = load_spec(REPO / "models/diehl_cook/model.yaml")
    model = load_brian2(spec)
    split = load_split(spec.dataset.name, spec.dataset.holdout, spec.dataset.seed, spec.base_dir)
    stream = to_stream(encode(split.x_train[:samples], spec_encoding(spec), spec.input.timesteps),
                       spec.learning.rest_steps)
    q = quantize_stream_network(model.network, FixedPointFormat.from_descriptor(load_descriptor("loihi2")),
                                stream[: 20 * 60])
    t0 = time.perf_counter()
    cpu = run_stream(q.fixed, stream)
    t_cpu = time.perf_counter() - t0
    t0 = time.perf_counter()
    lava = run_stream_lava(q.fixed, stream)
    t_lava = time.perf_counter() - t0
    same = all(np.array_equal(cpu.weights[k], lava.weights[k]) for k in cpu.weights)
    steps = len(stream)
    print(f"learning {samples} digits = {steps} steps, {sum(p.size for p in q.fixed.populations)} neurons, "
          f"{sum(p.synapse.weight.size for p in q.fixed.projections if p.plasticity)} plastic synapses")
    print(f"lava      {steps / t_lava:8.0f} steps/s  ({t_lava:.1f} s, start-up included)")
    print(f"cpu       {steps / t_cpu:8.0f} steps/s  ({t_cpu:.1f} s)")
    print(f"weights identical: {same}")
    print(f"ratio {t_lava / t_cpu:.1f}")


def accuracy(seeds: int) -> None:
    from neurocomp.pipeline import compile_model

    gaps, accs = [], []
    src = (REPO / "models/diehl_cook/model.yaml").read_text()
    for seed in range(seeds):
        with tempfile.TemporaryDirectory() as d:
            spec = Path(d) / "model.yaml"
            spec.write_text(src.replace("script: net.py", f"script: {REPO / 'models/diehl_cook/net.py'}")
                            .replace("seed: 0}", f"seed: {seed}}}"))
            ln = compile_model(spec, target="cpu", out=Path(d) / "build")["learning"]
        gaps.append(ln["accuracy"] - ln["reference_accuracy"])
        accs.append((ln["accuracy"], ln["reference_accuracy"]))
        print(f"seed {seed}: target {100 * ln['accuracy']:.1f}%  Brian2 {100 * ln['reference_accuracy']:.1f}%  "
              f"gap {100 * gaps[-1]:+.1f} pp")
    accs = 100 * np.array(accs)
    print(f"target {accs[:, 0].mean():.1f} +- {accs[:, 0].std():.1f} %, Brian2 {accs[:, 1].mean():.1f} +- "
          f"{accs[:, 1].std():.1f} % (mean +- sd over seeds)")
    print(f"mean gap {100 * np.mean(gaps):+.1f} pp, sd {100 * np.std(gaps):.1f} pp, largest |gap| "
          f"{100 * np.max(np.abs(gaps)):.1f} pp over {seeds} seeds")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=30, help="digits learned in the speed comparison")
    ap.add_argument("--seeds", type=int, default=0, help="also compare accuracy with Brian2 over this many seeds")
    args = ap.parse_args()
    speed(args.samples)
    if args.seeds:
        accuracy(args.seeds)


if __name__ == "__main__":
    main()
