"""Train the slayer digits example with lava-dl's own training loop (seeded, CPU, about 5 minutes).

    python models/slayer_digits/train.py        # writes models/slayer_digits/weights.pt

sklearn's 8x8 digits, the split and rate encoding ``neurocomp compile`` evaluates on (model.yaml:
360 held out, seed 0; 32 steps), slayer's ``SpikeRate`` loss, ``Rate`` classifier and ``Assistant``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lava.lib.dl.slayer as slayer  # noqa: E402

from net import build  # noqa: E402

TIMESTEPS = 32
HOLDOUT = 360
BATCH = 128  # slayer's CPU dynamics loop over time in Python: big batches keep an epoch short


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--out", type=Path, default=HERE / "weights.pt")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from neurocomp.data import load_split
    from neurocomp.ir.encodings import encode
    from neurocomp.ir import RateEncoding

    torch.manual_seed(args.seed)
    split = load_split("digits", holdout=HOLDOUT, seed=0)
    enc = RateEncoding(max_rate=1.0)

    def slayer_layout(x):  # neurocomp [batch, time, features] -> slayer [batch, features, time]
        return torch.tensor(x.transpose(0, 2, 1), dtype=torch.float32)

    x_test = slayer_layout(encode(split.x_test, enc, TIMESTEPS, seed=0))
    y_train, y_test = torch.tensor(split.y_train), torch.tensor(split.y_test)

    net = build()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    error = slayer.loss.SpikeRate(true_rate=0.3, false_rate=0.03, reduction="sum")
    stats = slayer.utils.LearningStats()
    assistant = slayer.utils.Assistant(net, error, optimizer, stats, classifier=slayer.classifier.Rate.predict)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        # fresh Bernoulli draws every epoch; the test encoding is the one compile uses
        x_train = slayer_layout(encode(split.x_train, enc, TIMESTEPS, seed=1000 + epoch))
        perm = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            assistant.train(x_train[idx], y_train[idx])
        with torch.no_grad():
            assistant.test(x_test, y_test)
        print(f"epoch {epoch + 1:3d}: {stats}", flush=True)
        stats.update()
    torch.save(net.state_dict(), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); held-out accuracy {stats.testing.accuracy_log[-1]:.4f}")


if __name__ == "__main__":
    main()
