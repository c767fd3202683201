"""Shared by NetMax and AD-PSGD: the whole model of one drawn neighbour, averaged ½/½."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mpls_celery.core.aggregate import Weighting
from mpls_celery.core.strategies.base import Plan, WorkerView, make_plan, no_pull


def whole_model_from_one(
    view: WorkerView, rng: np.random.Generator, weights: NDArray[np.float64]
) -> Plan:
    if not view.peers:
        return no_pull(view)
    chosen = int(rng.choice(len(view.peers), p=weights / weights.sum()))
    y = np.zeros((len(view.peers), view.n_layers), dtype=np.int64)
    y[chosen, :] = 1
    return make_plan(view, y, Weighting.HALF)
