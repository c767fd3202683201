"""MPLS: peer selection (link speed × data divergence) times layer selection (peers' recent
per-layer progress), scheduled by Algorithm 1. The ablations switch one factor to uniform."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mpls_celery.core.aggregate import Weighting
from mpls_celery.core.schedule import schedule_layers
from mpls_celery.core.selection import layer_probabilities, peer_probabilities
from mpls_celery.core.strategies.base import Plan, WorkerView, make_plan, no_pull


@dataclass(frozen=True)
class Mpls:
    uses_rng: ClassVar[bool] = False  # deterministic: no generator to seed
    tau1: float = 0.5
    tau2: float = 0.5
    use_peer_selection: bool = True
    use_layer_selection: bool = True
    name: str = "mpls"
    fill: bool = True  # Algorithm 1 phase 2

    def plan(self, view: WorkerView, rng: np.random.Generator) -> Plan:
        s = len(view.peers)
        if s == 0:
            return no_pull(view)
        p = (
            peer_probabilities(view.bandwidth, view.divergence, self.tau1, self.tau2)
            if self.use_peer_selection
            else np.full(s, 1.0 / s)
        )
        q = (
            layer_probabilities(view.progress)
            if self.use_layer_selection
            else np.full((s, view.n_layers), 1.0 / s)
        )
        y = schedule_layers(view.layer_bytes, view.bandwidth, p, q, self.fill)
        return make_plan(view, y, Weighting.UNIFORM)
