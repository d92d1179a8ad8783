"""What Lava's reset-to-zero costs a converted ANN, and what mitigates it: accuracy of the float SNN
with reset to zero (Lava's LIF) and with reset by subtraction (conversion theory's neuron, a what-if),
per normalisation choice and threshold scale, per timesteps.

    python models/mnist_ann/reset_study.py [--samples 500] [--timesteps 16 32 64]

Uses neurocomp's own converter (:func:`neurocomp.frontends.ann.convert`) and the compile's what-if
simulator (:func:`neurocomp.pipeline.conversion.simulate_if`, whose zero reset is tested equal to the
float target) on the first held-out samples; the fixed-point numbers for the configuration model.yaml
ships are the compile's (``report.json["conversion"]``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIGS = [("max", 100.0, 1.0), ("percentile", 99.99, 1.0), ("percentile", 99.9, 1.0), ("percentile", 99.0, 1.0),
           ("percentile", 99.9, 1.5), ("percentile", 99.9, 0.9), ("percentile", 99.9, 0.8),
           ("percentile", 99.9, 0.7), ("percentile", 99.9, 0.6), ("max", 100.0, 0.7)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--timesteps", type=int, nargs="+", default=[16, 32, 64])
    args = ap.parse_args(argv)

    from neurocomp.data import load_split
    from neurocomp.frontends import ann
    from neurocomp.ir import encode
    from neurocomp.pipeline.conversion import simulate_if
    from neurocomp.spec import input_encoding, load_spec

    spec = load_spec(HERE / "model.yaml")
    model = ann.build_ann(spec)
    layers = ann.ann_layers(model, (1, 28, 28))
    x_cal = ann.calibration_samples(spec)
    split = load_split("mnist5k", spec.dataset.holdout, spec.dataset.seed)
    x, y = split.x_test[:args.samples], split.y_test[:args.samples]
    acc_ann = float(np.mean(ann.module_outputs(model, x, (1, 28, 28)).argmax(1) == y))
    print(f"ANN {100 * acc_ann:.1f}% on {len(y)} held-out samples; float SNN accuracy (%), reset to zero / "
          f"by subtraction, T = {args.timesteps}")
    enc = input_encoding(spec)
    for how, p, scale in CONFIGS:
        net, _ = ann.convert(layers, x_cal, "study", max(args.timesteps), enc, (1, 28, 28), how, p, scale)
        cells = []
        for T in args.timesteps:
            levels = encode(x, enc, T)
            acc = []
            for reset in ("zero", "subtract"):
                c = simulate_if(net, levels, reset=reset)
                pred = np.where(c.sum(1) == 0, -1, c.argmax(1))
                acc.append(100 * float(np.mean(pred == y)))
            cells.append(f"{acc[0]:5.1f} / {acc[1]:5.1f}")
        label = f"{how}{'' if how == 'max' else f' {p:g}'} x {scale:g}"
        print(f"{label:22s} " + "   ".join(f"T={T}: {c}" for T, c in zip(args.timesteps, cells)), flush=True)


if __name__ == "__main__":
    main()
