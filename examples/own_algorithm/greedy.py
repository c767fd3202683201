"""An algorithm of your own, run beside MPLS and the baselines: each iteration, pull every layer
from the fastest reachable peer and average it in (a greedy-bandwidth baseline).

`factory()` (here the class itself) returns an object whose `plan(view, rng)` returns a Plan.
The view holds what MPLS plans with (docs/algorithm.md): the reachable peers, their link speeds
(bytes/s), label divergences, per-layer progress g and each layer's size on the wire."""

from __future__ import annotations

import numpy as np

from mpls_celery.core.aggregate import Weighting
from mpls_celery.core.strategies import Plan, WorkerView, make_plan, no_pull


class FastestPeer:
    name = "fastest-peer"
    uses_rng = False  # it never draws from rng: the runtime need not seed one each iteration

    def plan(self, view: WorkerView, rng: np.random.Generator) -> Plan:
        if not view.peers:
            return no_pull(view)
        y = np.zeros((len(view.peers), view.n_layers), dtype=np.int64)  # y[peer, layer] = 1: pull
        y[int(np.argmax(view.bandwidth))] = 1
        return make_plan(view, y, Weighting.UNIFORM)
