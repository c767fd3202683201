"""A recorded network and compute, played back in the simulator: per link, the speed its
transfers measured in each time slot (else over the whole run, else the run's median link); per
worker, its measured training time and its per-iteration overhead around t (everything of an
iteration that was neither training nor pulling: task hand-offs, publishing, averaging); per link,
the latency every transfer pays besides its bytes (round trips, queues)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.link_model import estimate_or_prior
from mpls_celery.core.network_profile import Outage

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ReplayNetwork:
    name: str
    slot_seconds: float
    link_rate: FloatArray  # (slots, N, N) bytes/s from j to i; NaN: nothing measured then
    base_rate: FloatArray  # (N, N) over the whole run; NaN: never measured
    compute: FloatArray  # (slots, N) training seconds per iteration; NaN: none in that slot
    overhead: FloatArray  # (slots, N) seconds per iteration; NaN: none in that slot
    latency: FloatArray  # (N, N) seconds per transfer from j to i, besides bytes / rate
    # per puller: (times, estimates) — its speed estimates as its transfers updated them
    estimates: tuple[tuple[FloatArray, tuple[dict[int, float], ...]], ...] = ()
    outages: tuple[Outage, ...] = ()
    starts: tuple[float, ...] = ()  # per worker: when its first iteration began

    def start_seconds(self, worker: int) -> float:
        return self.starts[worker] if self.starts else 0.0

    def __post_init__(self) -> None:
        slots, n, _ = self.link_rate.shape
        if self.base_rate.shape != (n, n) or self.compute.shape != (slots, n):
            raise CoreValueError("replay arrays disagree on worker or slot counts")
        if self.overhead.shape != (slots, n) or self.slot_seconds <= 0:
            raise CoreValueError("replay needs (slots, N) overheads and slot_seconds > 0")
        if self.latency.shape != (n, n):
            raise CoreValueError("replay needs an (N, N) latency matrix")

    @property
    def size(self) -> int:
        return int(self.base_rate.shape[0])

    def _slot(self, t: float) -> int:
        return min(int(t // self.slot_seconds), int(self.link_rate.shape[0]) - 1)

    def link_speeds(self, worker: int, peers: ArrayLike, t: float) -> FloatArray:
        others = np.asarray(peers, dtype=np.int64)
        now = self.link_rate[self._slot(t), worker, others]
        fallback = self.base_rate[worker, others]
        speeds: FloatArray = np.where(
            np.isfinite(now), now, np.where(np.isfinite(fallback), fallback, self._median_rate)
        )
        return speeds

    @cached_property
    def _median_rate(self) -> float:
        """For a link that never carried anything measurable: the run's median link."""
        known = self.base_rate[np.isfinite(self.base_rate)]
        return float(np.median(known)) if known.size else 1e6

    def links_up(self, worker: int, peers: ArrayLike, t: float) -> NDArray[np.bool_]:
        others = np.asarray(peers, dtype=np.int64)
        up = np.ones(others.shape, dtype=bool)
        for o in self.outages:
            if o.start <= t < o.end and o.a == worker:
                up &= others != o.b
        return up

    def planning_speeds(self, worker: int, peers: ArrayLike, t: float) -> FloatArray:
        """What the real worker's estimator said at t (its probes, or the EWMA of the speeds its
        own transfers had measured by then): a real worker plans with estimates, not the truth."""
        if not self.estimates:
            return self.link_speeds(worker, peers, t)
        times, values = self.estimates[worker]
        n = int(np.searchsorted(times, t, side="right"))
        known = values[n - 1] if n else {}
        return np.array([estimate_or_prior(known, int(p)) for p in np.asarray(peers)], float)

    def realized_pull_seconds(
        self, worker: int, peers: ArrayLike, sizes: FloatArray, t: float
    ) -> FloatArray | None:
        """Latency plus bytes over the link's measured rate, for each peer pulled from."""
        others = np.asarray(peers, dtype=np.int64)
        rate = self.link_speeds(worker, others, t)
        seconds: FloatArray = np.where(sizes > 0, self.latency[worker, others] + sizes / rate, 0.0)
        return seconds

    def compute_seconds(self, worker: int, t: float, reference: float) -> float:
        return _at(self.compute[:, worker], self._slot(t), reference)

    def overhead_seconds(self, worker: int, t: float) -> float:
        return _at(self.overhead[:, worker], self._slot(t), 0.0)


def _at(series: Sequence[float] | FloatArray, slot: int, default: float) -> float:
    """The value in `slot`, else the nearest slot before it that has one, else the series'
    median, else the default."""
    values = np.asarray(series, dtype=np.float64)
    before = values[: slot + 1][np.isfinite(values[: slot + 1])]
    if before.size:
        return float(before[-1])
    known = values[np.isfinite(values)]
    return float(np.median(known)) if known.size else default
