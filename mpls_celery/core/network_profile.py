"""Link speeds and compute speeds of N workers, static or dynamic, as pure queries.

Noise and random outages come from a counter-based hash of (seed, link, time slot), so the trace
is the same for every algorithm run on it, symmetric per link, and needs no mutable RNG state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpls_celery.core.errors import CoreValueError

MBIT = 1e6 / 8  # bytes per second in one Mbit/s
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Outage:
    """Link a–b is down for start <= t < end (seconds from run start)."""

    a: int
    b: int
    start: float
    end: float


@dataclass(frozen=True)
class NetworkProfile:
    name: str
    base_rate: FloatArray  # (N, N) bytes/s, symmetric
    compute_speed: FloatArray  # (N,) relative throughput; 1.0 = the reference device
    noise_sigma: float = 0.0  # log-normal σ multiplying each link's rate per time slot
    slot_seconds: float = 1.0  # the time slot noise and random outages are drawn for
    outage_prob: float = 0.0  # probability a link is down during one slot
    outages: tuple[Outage, ...] = ()
    seed: int = 0
    devices: tuple[str, ...] = field(default=())  # human description per worker
    step_seconds: tuple[tuple[str, float], ...] = ()  # model → one SGD step at speed 1.0

    def __post_init__(self) -> None:
        n = self.base_rate.shape[0]
        if self.base_rate.shape != (n, n) or self.compute_speed.shape != (n,):
            raise CoreValueError("profile needs an (N, N) rate matrix and N compute speeds")
        if np.any(self.compute_speed <= 0):
            raise CoreValueError("compute speeds must be > 0")
        if self.noise_sigma < 0 or not 0 <= self.outage_prob < 1 or self.slot_seconds <= 0:
            raise CoreValueError("noise_sigma >= 0, 0 <= outage_prob < 1, slot_seconds > 0")

    @property
    def size(self) -> int:
        return int(self.base_rate.shape[0])

    def slot(self, t: float) -> int:
        return int(t // self.slot_seconds)

    def link_speeds(self, worker: int, peers: ArrayLike, t: float) -> FloatArray:
        """Bytes/s from each peer to `worker` at time t (noise applied)."""
        others = np.asarray(peers, dtype=np.int64)
        base = self.base_rate[worker, others]
        if self.noise_sigma == 0 or others.size == 0:
            plain: FloatArray = base.astype(np.float64)
            return plain
        normal = _normal(self.seed, worker, others, self.slot(t))
        noisy: FloatArray = base * np.exp(self.noise_sigma * normal)
        return noisy

    def link_speed(self, i: int, j: int, t: float = 0.0) -> float:
        return float(self.link_speeds(i, [j], t)[0])

    def start_seconds(self, worker: int) -> float:
        return 0.0

    def links_up(self, worker: int, peers: ArrayLike, t: float) -> NDArray[np.bool_]:
        others = np.asarray(peers, dtype=np.int64)
        up: NDArray[np.bool_] = self.base_rate[worker, others] > 0
        if self.outage_prob > 0 and others.size:
            up &= _uniform(self.seed, worker, others, self.slot(t), stream=2) >= self.outage_prob
        for o in self.outages:
            if o.start <= t < o.end:
                up &= ~(((others == o.a) & (worker == o.b)) | ((others == o.b) & (worker == o.a)))
        return up

    def is_up(self, i: int, j: int, t: float = 0.0) -> bool:
        return bool(self.links_up(i, [j], t)[0])

    def compute(self, worker: int) -> float:
        return float(self.compute_speed[worker])

    def compute_seconds(self, worker: int, t: float, reference: float) -> float:
        """One iteration's training on this worker, given its duration on the reference device."""
        return reference / self.compute(worker)

    def overhead_seconds(self, worker: int, t: float) -> float:
        """Per-iteration time outside training and pulling (none in a modelled network)."""
        return 0.0

    def planning_speeds(self, worker: int, peers: ArrayLike, t: float) -> FloatArray:
        """The speeds a worker plans with: in a modelled network, the true ones."""
        return self.link_speeds(worker, peers, t)

    def realized_pull_seconds(
        self, worker: int, peers: ArrayLike, sizes: FloatArray, t: float
    ) -> FloatArray | None:
        """(S,) seconds the transfers of a pull really take, when that differs from what the
        plan computed from the speeds it was given; None in a modelled network (it does not)."""
        return None

    def reference_step_seconds(self, model: str) -> float | None:
        return dict(self.step_seconds).get(model)

    def with_compute(self, speeds: ArrayLike) -> NetworkProfile:
        return replace(self, compute_speed=np.asarray(speeds, dtype=np.float64))


class SimNetwork(Protocol):
    """What the simulator asks of a network: a modelled profile or a recorded run's replay."""

    def start_seconds(self, worker: int) -> float: ...

    def links_up(self, worker: int, peers: ArrayLike, t: float) -> NDArray[np.bool_]: ...

    def compute_seconds(self, worker: int, t: float, reference: float) -> float: ...

    def overhead_seconds(self, worker: int, t: float) -> float: ...

    def planning_speeds(self, worker: int, peers: ArrayLike, t: float) -> FloatArray: ...

    def realized_pull_seconds(
        self, worker: int, peers: ArrayLike, sizes: FloatArray, t: float
    ) -> FloatArray | None: ...


_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser, vectorised (wrapping uint64 arithmetic is intended)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _uniform(
    seed: int, worker: int, peers: NDArray[np.int64], slot: int, stream: int
) -> FloatArray:
    lo = np.minimum(peers, worker).astype(np.uint64)
    hi = np.maximum(peers, worker).astype(np.uint64)
    key = _mix(np.full(peers.shape, seed, dtype=np.uint64))
    for part in (lo, hi, np.full(peers.shape, slot, dtype=np.int64).astype(np.uint64)):
        key = _mix(key ^ part)
    key = _mix(key ^ np.uint64(stream))
    return ((key >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def _normal(seed: int, worker: int, peers: NDArray[np.int64], slot: int) -> FloatArray:
    """Box-Muller over two hashed uniforms."""
    u1 = _uniform(seed, worker, peers, slot, stream=0)
    u2 = _uniform(seed, worker, peers, slot, stream=1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def uniform_profile(size: int, mbit: float = 100.0, compute: float = 1.0) -> NetworkProfile:
    rate = np.full((size, size), mbit * MBIT)
    np.fill_diagonal(rate, 0.0)
    return NetworkProfile("uniform", rate, np.full(size, compute))


def random_profile(
    size: int, low_mbit: float = 5.0, high_mbit: float = 100.0, seed: int = 0
) -> NetworkProfile:
    if not 0 < low_mbit <= high_mbit:
        raise CoreValueError("random profile needs 0 < low_mbit <= high_mbit")
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.uniform(low_mbit, high_mbit, (size, size)), 1)
    rate = (upper + upper.T) * MBIT
    compute = rng.uniform(0.5, 1.0, size)
    return NetworkProfile("random", rate, compute, seed=seed)


def rooms_profile(
    name: str,
    room_of: list[str],
    room_mbit: dict[str, float],
    compute: ArrayLike,
    devices: tuple[str, ...] = (),
    hops: int = 2,
) -> NetworkProfile:
    """Wi-Fi through one access point: link i–j runs at min(r_i, r_j) / hops."""
    try:
        rates = np.array([room_mbit[r] for r in room_of], dtype=np.float64) * MBIT
    except KeyError as exc:
        raise CoreValueError(f"profile {name}: unknown room {exc.args[0]!r}") from None
    link = np.minimum(rates[:, None], rates[None, :]) / hops
    np.fill_diagonal(link, 0.0)
    return NetworkProfile(name, link, np.asarray(compute, dtype=np.float64), devices=devices)
