"""The 2-pixel motion-direction data set, latency coded: ``python make_data.py`` writes ``motion.npz``.

A "dot" crosses two neighbouring pixels. Under ``input.encoding: latency`` a pixel of value ``x`` spikes
once, at step ``round((1 - x) * (timesteps - 1))``, so a sample is the pair of values whose spike steps
are the dot's arrival times: ``x = [1.0, 1 - lag / (timesteps - 1)]`` (pixel 0 first, pixel 1 ``lag``
steps later) is the dot moving left -> right (label 0); the swapped pair is right -> left (label 1).
Every sample starts its crossing at step ``onset`` (0..``max_onset``) and takes ``lag`` steps between the
pixels (``lags``): the two classes differ only in the order, never in which pixel is on or how far apart.
Seeded: the same file every time.
"""
from pathlib import Path

import numpy as np

TIMESTEPS = 16        # input.timesteps of model.yaml: x -> spike step round((1 - x) * 15)
LAGS = (2, 3, 4)      # steps between the two pixels' spikes
MAX_ONSET = 4         # the first pixel's spike step: 0..MAX_ONSET
SAMPLES = 600


def make(samples=SAMPLES, seed=0):
    rng = np.random.default_rng(seed)
    last = TIMESTEPS - 1
    y = np.arange(samples) % 2                               # balanced: 0 = left -> right, 1 = right -> left
    rng.shuffle(y)
    onset = rng.integers(0, MAX_ONSET + 1, samples)
    lag = rng.choice(LAGS, samples)
    first, second = (last - onset) / last, (last - onset - lag) / last   # values whose latency is the step
    x = np.where(y[:, None] == 0, np.stack([first, second], 1), np.stack([second, first], 1))
    return x.astype(np.float64), y.astype(np.int64)


if __name__ == "__main__":
    x, y = make()
    out = Path(__file__).with_name("motion.npz")
    np.savez_compressed(out, x=x, y=y)
    print(f"{out}: {len(x)} samples, {int((y == 0).sum())} left->right, {int((y == 1).sum())} right->left")
