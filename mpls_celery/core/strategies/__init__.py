"""Strategy registry: every algorithm is selectable by name."""

from __future__ import annotations

from collections.abc import Callable

from mpls_celery.catalog import STRATEGY_NAMES
from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.strategies.adpsgd import AdPsgd
from mpls_celery.core.strategies.appg import Appg
from mpls_celery.core.strategies.base import (
    Plan,
    Strategy,
    WorkerView,
    make_plan,
    no_pull,
    uses_rng,
)
from mpls_celery.core.strategies.mpls import Mpls
from mpls_celery.core.strategies.mpls_layer import mpls_layer
from mpls_celery.core.strategies.mpls_peer import mpls_peer
from mpls_celery.core.strategies.netmax import NetMax
from mpls_celery.core.strategies.rand_mpls import RandMpls

_FACTORIES: dict[str, Callable[[float, float, bool], Strategy]] = {
    "mpls": lambda t1, t2, fill: Mpls(t1, t2, fill=fill),
    "mpls-peer": mpls_peer,
    "mpls-layer": mpls_layer,
    "rand-mpls": lambda t1, t2, fill: RandMpls(),
    "appg": lambda t1, t2, fill: Appg(),
    "netmax": lambda t1, t2, fill: NetMax(),
    "ad-psgd": lambda t1, t2, fill: AdPsgd(),
}


def make_strategy(name: str, tau1: float = 0.5, tau2: float = 0.5, fill: bool = True) -> Strategy:
    """`fill` switches Algorithm 1's phase 2 for the MPLS family (default on: docs/algorithm.md, "Step 7: list scheduling (Algorithm 1)")."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise CoreValueError(
            f"unknown algorithm {name!r}; choose one of: {', '.join(STRATEGY_NAMES)}"
        ) from None
    return factory(tau1, tau2, fill)


__all__ = [
    "STRATEGY_NAMES", "Plan", "Strategy", "WorkerView", "make_plan", "make_strategy", "no_pull",
    "uses_rng",
]  # fmt: skip
