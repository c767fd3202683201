"""AD-PSGD (pull-only): one neighbour uniformly at random; all layers; ½(w_i + w_j)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpls_celery.core.strategies.base import Plan, WorkerView
from mpls_celery.core.strategies.single_peer import whole_model_from_one


@dataclass(frozen=True)
class AdPsgd:
    name: str = "ad-psgd"

    def plan(self, view: WorkerView, rng: np.random.Generator) -> Plan:
        return whole_model_from_one(view, rng, np.ones(len(view.peers)))
