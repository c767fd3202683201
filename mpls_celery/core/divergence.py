"""A worker whose training blew up (a loss or a weight that is no longer finite, most often from a
learning rate too high or features on a large scale) stops the run in both engines: its NaNs
would reach every peer that mixes its layers, and every number after it would mean nothing. The
engines check what they have anyway — the step's loss, and the published version's progress g
(Eq. 5), which is finite exactly when the version's weights and the previous version's are."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from mpls_celery.core.errors import CoreValueError


class Diverged(CoreValueError):
    """A worker's training is no longer finite."""


def check_finite(
    worker: int, k: int, lr: float, loss: float, g: NDArray[np.float64] | None = None
) -> None:
    """Diverged naming the worker, the iteration and the learning rate."""
    if not math.isfinite(loss):
        what = f"its training loss is {loss}"
    elif g is not None and not bool(np.isfinite(g).all()):
        what = "its weights are no longer finite"
    else:
        return
    raise Diverged(
        f"worker {worker} diverged at iteration {k}: {what} (learning rate {lr:g}; "
        "a smaller --lr, or features on a smaller scale, usually helps)"
    )
