"""A seeded stratified train/test split, index for index the one scikit-learn's
`train_test_split(..., stratify=labels, random_state=seed)` makes (its StratifiedShuffleSplit
algorithm, BSD-3-Clause, restated in NumPy): the splits of every dataset stay what they were,
without importing scikit-learn — over a second of CPU in every process that loads data.
`tests/data/test_stratified.py` holds it to scikit-learn's on many label sets."""

from __future__ import annotations

from math import ceil

import numpy as np
from numpy.typing import NDArray


def stratified_split(
    labels: NDArray[np.int64], test_size: int | float, seed: int = 0
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Sorted train and test indices keeping class proportions; ValueError (one line) where the
    labels cannot be split so."""
    n = len(labels)
    n_test = ceil(test_size * n) if isinstance(test_size, float) else int(test_size)
    n_train = n - n_test
    if not 0 < n_test < n:
        raise ValueError(f"a test split of {test_size} leaves no sample on one side of {n}")
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError(f"classes {classes[counts < 2].tolist()} have one sample; each needs 2")
    if min(n_train, n_test) < len(classes):
        raise ValueError(f"{len(classes)} classes need at least as many samples on each side")
    by_class = np.split(np.argsort(inverse, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    train_counts = _approximate_mode(counts, n_train, rng)
    test_counts = _approximate_mode(counts - train_counts, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for members, n_tr, n_te in zip(by_class, train_counts, test_counts, strict=True):
        shuffled = members.take(rng.permutation(len(members)), mode="clip")
        train.extend(shuffled[:n_tr])
        test.extend(shuffled[n_tr : n_tr + n_te])
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(test, dtype=np.int64))


def _approximate_mode(
    counts: NDArray[np.int64], draws: int, rng: np.random.RandomState
) -> NDArray[np.int64]:
    """Per-class shares of `draws`, floored, the remainder given to the largest fractions (ties
    broken by `rng`, consumed exactly as scikit-learn does)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), need)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    shares: NDArray[np.int64] = floored.astype(np.int64)
    return shares
