"""The one shape every algorithm has: what a worker knows in, a pull plan out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from mpls_celery.core.aggregate import Weighting
from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.schedule import pull_delay


@dataclass(frozen=True)
class WorkerView:
    """What worker i knows at one aggregation. A peer that is down is simply not in `peers`."""

    peers: tuple[int, ...]
    bandwidth: NDArray[np.float64]  # (S,) bytes/s, measured or from the network profile
    divergence: NDArray[np.float64]  # (S,) label-histogram L1 distance to each peer
    progress: NDArray[np.float64]  # (S, L) g_s(l), each peer's recent per-layer movement
    layer_bytes: NDArray[np.float64]  # (L,) M_l as sent

    def __post_init__(self) -> None:
        s, n_layers = len(self.peers), self.layer_bytes.shape[0]
        if self.bandwidth.shape != (s,) or self.divergence.shape != (s,):
            raise CoreValueError("bandwidth and divergence need one entry per reachable peer")
        if self.progress.shape != (s, n_layers):
            raise CoreValueError(f"progress must be (S, L) = {(s, n_layers)}")

    @property
    def n_layers(self) -> int:
        return int(self.layer_bytes.shape[0])


@dataclass(frozen=True)
class Plan:
    """y[s, l] = 1: pull layer l from peers[s]; then average with `weighting`."""

    peers: tuple[int, ...]
    y: NDArray[np.int64]
    weighting: Weighting
    delay: float = field(default=0.0)

    def layers_by_peer(self) -> dict[int, list[int]]:
        """Peer id → layer indices to pull (only peers that contribute something)."""
        out: dict[int, list[int]] = {}
        for s, peer in enumerate(self.peers):
            layers = np.flatnonzero(self.y[s]).tolist()
            if layers:
                out[peer] = layers
        return out

    def bytes_pulled(self, layer_bytes: NDArray[np.float64]) -> float:
        return float((self.y * layer_bytes[None, :]).sum()) if self.y.size else 0.0

    def peer_bytes(self, layer_bytes: NDArray[np.float64]) -> NDArray[np.float64]:
        """(S,) bytes to pull from each peer of the view."""
        sizes: NDArray[np.float64] = (self.y * layer_bytes[None, :]).sum(axis=1).astype(np.float64)
        return sizes


def make_plan(view: WorkerView, y: NDArray[np.int64], weighting: Weighting) -> Plan:
    return Plan(view.peers, y, weighting, pull_delay(y, view.layer_bytes, view.bandwidth))


def no_pull(view: WorkerView) -> Plan:
    """S = 0: nothing to aggregate; keep the local model."""
    y = np.zeros((len(view.peers), view.n_layers), dtype=np.int64)
    return Plan(view.peers, y, Weighting.UNIFORM, 0.0)


class Strategy(Protocol):
    """A strategy may also say `uses_rng = False` when its plan never draws from `rng` (then the
    runtime does not seed a generator for every iteration; without it, one is seeded)."""

    @property
    def name(self) -> str: ...

    def plan(self, view: WorkerView, rng: np.random.Generator) -> Plan: ...


def uses_rng(strategy: Strategy) -> bool:
    return bool(getattr(strategy, "uses_rng", True))
