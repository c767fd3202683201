"""APPG: every layer from every reachable neighbour, Eq. 1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mpls_celery.core.aggregate import Weighting
from mpls_celery.core.strategies.base import Plan, WorkerView, make_plan


@dataclass(frozen=True)
class Appg:
    uses_rng: ClassVar[bool] = False  # deterministic: no generator to seed
    name: str = "appg"

    def plan(self, view: WorkerView, rng: np.random.Generator) -> Plan:
        y = np.ones((len(view.peers), view.n_layers), dtype=np.int64)
        return make_plan(view, y, Weighting.UNIFORM)
