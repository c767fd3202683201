"""Links as a worker sees them: how long a pull from each peer takes under a link model (Eq. 7-8,
and docs/algorithm.md, "Iteration semantics": independent links, or links that share the puller's
inbound rate), and how its speed estimates follow what its transfers measure."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mpls_celery.core.errors import CoreValueError

FloatArray = NDArray[np.float64]


class LinkSpeeds(StrEnum):
    """What a runtime worker plans with as B_s (docs/algorithm.md, "Link speeds")."""

    PROBED = "probed"  # each link timed alone before the first pull: the link's speed
    ACHIEVED = "achieved"  # the EWMA of the rates its pulls got: a share of a busy link


# A smaller transfer is dominated by round-trip time and by a shaper's burst allowance, so it says
# little about bandwidth (a slow link can look fast, a fast one slow); measured speeds ignore it.
MIN_MEASURED_BYTES = 64 * 1024
PRIOR_BPS = 50e6  # a link never measured yet, while nothing else is known either


def blend_speeds(
    known: Mapping[int, float], measured: Mapping[int, float], weight: float = 0.3
) -> dict[int, float]:
    """A worker's link-speed estimates: EWMA of measured transfer speed per peer (a first
    measurement is taken as it is). The runtime plans with these; a replay recomputes them."""
    return {
        peer: speed if peer not in known else (1 - weight) * known[peer] + weight * speed
        for peer, speed in measured.items()
    }


def estimate_or_prior(known: Mapping[int, float], peer: int) -> float:
    """The estimate for `peer`, else the median of the others, else PRIOR_BPS."""
    if peer in known:
        return known[peer]
    return float(np.median(list(known.values()))) if known else PRIOR_BPS


def pull_times(sizes: ArrayLike, rates: ArrayLike, shared: bool) -> FloatArray:
    """(S,) seconds until each peer's `sizes[s]` bytes have arrived (0 where nothing is pulled).

    Independent: bytes / rate. Shared: the flows split the puller's inbound rate — the fastest of
    its links, as behind one access point — max-min fairly, each flow capped by its own link's
    rate; a flow that finishes frees its share for the rest (progressive filling)."""
    size = np.asarray(sizes, dtype=np.float64)
    rate = np.asarray(rates, dtype=np.float64)
    if size.shape != rate.shape or size.ndim != 1:
        raise CoreValueError(f"sizes {size.shape} and rates {rate.shape} must both be (S,)")
    if np.any(size < 0) or np.any(rate[size > 0] <= 0):
        raise CoreValueError("sizes must be >= 0, and a peer pulled from needs a rate > 0")
    done = np.zeros(size.shape)
    if not shared:
        np.divide(size, rate, out=done, where=size > 0)
        return done
    capacity = float(rate.max(initial=0.0))
    left = size.copy()
    active = np.flatnonzero(size > 0)
    now = 0.0
    while active.size:
        flow = fair_rates(rate[active], capacity)
        until = left[active] / flow
        step = float(until.min())
        finished = until <= step * (1 + 1e-9)  # at least one flow ends in every round
        now += step
        left[active] -= flow * step
        done[active[finished]] = now
        active = active[~finished]
    return done


def fair_rates(caps: FloatArray, capacity: float) -> FloatArray:
    """Max-min fair split of `capacity` among flows capped at `caps`."""
    out = np.empty_like(caps)
    remaining, left = capacity, caps.size
    for index in np.argsort(caps, kind="stable"):
        share = remaining / left
        out[index] = min(caps[index], share)
        remaining -= out[index]
        left -= 1
    return out
