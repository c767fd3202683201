"""Who may pull from whom: a symmetric adjacency. Ring, random G(N, p) redrawn until connected,
full, or explicit edges."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mpls_celery.core.errors import CoreValueError


@dataclass(frozen=True)
class Topology:
    adjacency: NDArray[np.bool_]

    @property
    def size(self) -> int:
        return int(self.adjacency.shape[0])

    def neighbours(self, worker: int) -> tuple[int, ...]:
        return tuple(int(j) for j in np.flatnonzero(self.adjacency[worker]))

    def edges(self) -> list[tuple[int, int]]:
        rows, cols = np.nonzero(np.triu(self.adjacency, 1))
        return [(int(i), int(j)) for i, j in zip(rows, cols, strict=True)]

    def hops_from(self, source: int) -> NDArray[np.int64]:
        """BFS distances; -1 where unreachable."""
        dist = np.full(self.size, -1, dtype=np.int64)
        dist[source] = 0
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for nxt in self.neighbours(node):
                if dist[nxt] < 0:
                    dist[nxt] = dist[node] + 1
                    queue.append(nxt)
        return dist

    @property
    def connected(self) -> bool:
        return self.size <= 1 or bool(np.all(self.hops_from(0) >= 0))

    @property
    def diameter(self) -> int | None:
        """None when disconnected."""
        if not self.connected:
            return None
        return max((int(self.hops_from(i).max()) for i in range(self.size)), default=0)

    def degree_stats(self) -> dict[str, float]:
        degrees = self.adjacency.sum(axis=1)
        return {"min": int(degrees.min()), "mean": float(degrees.mean()), "max": int(degrees.max())}


def from_edges(size: int, edges: Iterable[tuple[int, int]]) -> Topology:
    if size < 1:
        raise CoreValueError(f"topology needs at least 1 worker (got {size})")
    adjacency = np.zeros((size, size), dtype=bool)
    for i, j in edges:
        if not (0 <= i < size and 0 <= j < size):
            raise CoreValueError(f"edge ({i}, {j}) names a worker outside 0..{size - 1}")
        if i != j:
            adjacency[i, j] = adjacency[j, i] = True
    return Topology(adjacency)


def ring(size: int) -> Topology:
    return from_edges(size, [(i, (i + 1) % size) for i in range(size)] if size > 1 else [])


def full(size: int) -> Topology:
    return from_edges(size, [(i, j) for i in range(size) for j in range(i + 1, size)])


def random_graph(size: int, p: float = 0.5, seed: int = 0, max_draws: int = 10_000) -> Topology:
    """Each pair linked with probability p; redrawn until connected."""
    if not 0.0 < p <= 1.0:
        raise CoreValueError(f"edge probability p must be in (0, 1] (got {p})")
    rng = np.random.default_rng(seed)
    for _ in range(max_draws):
        upper = np.triu(rng.random((size, size)) < p, 1)
        topo = Topology(upper | upper.T)
        if topo.connected:
            return topo
    raise CoreValueError(f"no connected random graph with N={size}, p={p} after {max_draws} draws")


def from_adjacency(matrix: NDArray[np.int64] | list[list[int]]) -> Topology:
    adjacency = np.asarray(matrix).astype(bool)
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise CoreValueError("adjacency must be a square matrix")
    if not np.array_equal(adjacency, adjacency.T):
        raise CoreValueError("adjacency must be symmetric")
    np.fill_diagonal(adjacency, False)
    return Topology(adjacency)
