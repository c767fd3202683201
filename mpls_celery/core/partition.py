"""Split a labelled training set over N workers: IID, the non-IID level χ, or Dirichlet(α).
Deterministic given the seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mpls_celery.core.errors import CoreValueError

PARTITION_KINDS = ("iid", "noniid", "dirichlet")


@dataclass(frozen=True)
class Partition:
    indices: tuple[NDArray[np.int64], ...]  # per worker, into the training set
    histograms: NDArray[np.int64]  # (N, C) label counts per worker

    @property
    def sizes(self) -> NDArray[np.int64]:
        sizes: NDArray[np.int64] = self.histograms.sum(axis=1)
        return sizes


def partition(
    labels: NDArray[np.int64],
    workers: int,
    kind: str = "iid",
    *,
    num_classes: int | None = None,
    chi: float = 0.5,
    alpha: float = 0.5,
    seed: int = 0,
) -> Partition:
    if workers < 1:
        raise CoreValueError(f"workers must be >= 1 (got {workers})")
    if len(labels) < workers:
        raise CoreValueError(f"{len(labels)} samples cannot be split over {workers} workers")
    classes = num_classes or int(labels.max()) + 1
    rng = np.random.default_rng(seed)
    if kind == "iid":
        parts = np.array_split(rng.permutation(len(labels)), workers)
        parts = [p[: len(labels) // workers] for p in parts]
    elif kind == "noniid":
        parts = _dominant_label(labels, workers, classes, chi, rng)
    elif kind == "dirichlet":
        parts = _dirichlet(labels, workers, classes, alpha, rng)
    else:
        raise CoreValueError(
            f"unknown partition {kind!r}; choose one of: {', '.join(PARTITION_KINDS)}"
        )
    indices = tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)
    hist = np.stack([np.bincount(labels[p], minlength=classes) for p in indices])
    return Partition(indices, hist.astype(np.int64))


class _ClassPools:
    """Per-class shuffled index pools; a pool that runs dry is reshuffled (overlap across workers)."""

    def __init__(self, labels: NDArray[np.int64], classes: int, rng: np.random.Generator):
        self._rng = rng
        self._pools = [np.flatnonzero(labels == c) for c in range(classes)]
        self._queues = [rng.permutation(p) for p in self._pools]

    def take(self, label: int, count: int) -> NDArray[np.int64]:
        """`count` distinct indices of `label` (count never exceeds the pool size)."""
        pool = self._pools[label]
        if count > len(pool):
            raise CoreValueError(f"label {label} has {len(pool)} samples, {count} needed")
        chunk = self._queues[label][:count]
        self._queues[label] = self._queues[label][count:]
        if len(chunk) < count:
            fresh = self._rng.permutation(pool)
            fresh = fresh[~np.isin(fresh, chunk)]
            need = count - len(chunk)
            chunk = np.concatenate([chunk, fresh[:need]])
            self._queues[label] = np.concatenate([fresh[need:], self._rng.permutation(chunk)])
        return chunk


def _dominant_label(
    labels: NDArray[np.int64], workers: int, classes: int, chi: float, rng: np.random.Generator
) -> list[NDArray[np.int64]]:
    """A fraction χ of worker i's samples carry label i mod C; the rest are uniform over others."""
    if not 0.0 <= chi <= 1.0:
        raise CoreValueError(f"non-IID level chi must be in [0, 1] (got {chi})")
    pools = _ClassPools(labels, classes, rng)
    size = _feasible_size(labels, workers, classes, chi)
    parts = []
    for worker in range(workers):
        dominant = worker % classes
        n_dominant = round(chi * size)
        others = [c for c in range(classes) if c != dominant]
        counts = np.zeros(classes, dtype=np.int64)
        if others:  # the rest spread uniformly over the other labels; remainder to random ones
            rest = size - n_dominant
            counts[others] = rest // len(others)
            counts[rng.choice(others, size=rest % len(others), replace=False)] += 1
        counts[dominant] += n_dominant
        parts.append(np.concatenate([pools.take(c, int(n)) for c, n in enumerate(counts) if n]))
    return parts


def _feasible_size(labels: NDArray[np.int64], workers: int, classes: int, chi: float) -> int:
    """Equal local sizes, capped so each worker's dominant share exists without repeats."""
    size = len(labels) // workers
    available = np.bincount(labels, minlength=classes)
    sharing = np.bincount(np.arange(workers) % classes, minlength=classes)
    for label in np.flatnonzero(sharing):
        if chi * size > available[label]:
            size = int(available[label] / chi)
    rest = (classes - 1) * (available.min() - 1)
    if classes > 1 and (1 - chi) * size > rest:
        size = int(rest / (1 - chi))
    return max(size, 1)


def _dirichlet(
    labels: NDArray[np.int64], workers: int, classes: int, alpha: float, rng: np.random.Generator
) -> list[NDArray[np.int64]]:
    if alpha <= 0:
        raise CoreValueError(f"dirichlet alpha must be > 0 (got {alpha})")
    parts: list[list[int]] = [[] for _ in range(workers)]
    for c in range(classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        shares = rng.dirichlet(np.full(workers, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
        for worker, chunk in enumerate(np.split(members, cuts)):
            parts[worker].extend(chunk.tolist())
    for worker, part in enumerate(parts):  # no worker may end up empty
        if not part:
            parts[worker] = [int(rng.integers(len(labels)))]
    return [np.asarray(p, dtype=np.int64) for p in parts]
