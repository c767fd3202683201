"""NetMax (the proxy of docs/algorithm.md, "Baselines"): one neighbour drawn with probability ∝ its link speed, redrawn each
iteration; all its layers; ½(w_i + w_j)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mpls_celery.core.strategies.base import Plan, WorkerView
from mpls_celery.core.strategies.single_peer import whole_model_from_one


@dataclass(frozen=True)
class NetMax:
    name: str = "netmax"

    def plan(self, view: WorkerView, rng: np.random.Generator) -> Plan:
        return whole_model_from_one(view, rng, view.bandwidth)
