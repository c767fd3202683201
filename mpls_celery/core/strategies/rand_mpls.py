"""Rand-MPLS: each layer from one neighbour drawn uniformly, independently per layer; Eq. 1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpls_celery.core.aggregate import Weighting
from mpls_celery.core.strategies.base import Plan, WorkerView, make_plan, no_pull


@dataclass(frozen=True)
class RandMpls:
    name: str = "rand-mpls"

    def plan(self, view: WorkerView, rng: np.random.Generator) -> Plan:
        s = len(view.peers)
        if s == 0:
            return no_pull(view)
        y = np.zeros((s, view.n_layers), dtype=np.int64)
        y[rng.integers(0, s, size=view.n_layers), np.arange(view.n_layers)] = 1
        return make_plan(view, y, Weighting.UNIFORM)
