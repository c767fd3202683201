"""How a run is scored, once for both engines: every worker's model on its own slice of the test
set (disjoint slices, so the mean covers the test set), and the model averaged over the workers
on all of it (docs/algorithm.md, "Accuracy"). A worker whose model is missing is left out of the
means and scored None — never 0."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mpls_celery.core.aggregate import average_states
from mpls_celery.core.layering import State
from mpls_celery.core.step import eval_slice
from mpls_celery.core.training import Evaluation, evaluate

# Many models, each on its own samples, in one call (the batched engine's): (states, x, y) where
# x[w], y[w] are model w's samples.
EvaluateMany = Callable[[Sequence[State], torch.Tensor, torch.Tensor], list[Evaluation]]


@dataclass(frozen=True)
class Scores:
    worker_acc: list[float | None]
    worker_loss: list[float | None]
    avg_model_acc: float

    @property
    def mean_acc(self) -> float:
        return float(np.mean([a for a in self.worker_acc if a is not None]))

    @property
    def mean_loss(self) -> float:
        return float(np.mean([x for x in self.worker_loss if x is not None]))


def score_workers(
    states: Sequence[State | None],
    scratch: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    samples: int,
    evaluate_many: EvaluateMany | None = None,
) -> Scores | None:
    """Score each worker's state (None: missing) on `samples` test samples of its slice and the
    average of the present ones on the whole test set, in `scratch` (a model of the run's
    architecture, overwritten). None when no worker has a model."""
    present = [s for s in states if s is not None]
    if not present:
        return None
    scored = [(w, s, eval_slice(w, len(y), samples)) for w, s in enumerate(states) if s is not None]
    if evaluate_many is not None:
        idx = torch.stack([chosen for _, _, chosen in scored])
        found = evaluate_many([s for _, s, _ in scored], x[idx], y[idx])
    else:
        found = [evaluate(_loaded(scratch, s), x[chosen], y[chosen]) for _, s, chosen in scored]
    results = {w: result for (w, _, _), result in zip(scored, found, strict=True)}
    accs = [results[w].accuracy if w in results else None for w in range(len(states))]
    losses = [results[w].loss if w in results else None for w in range(len(states))]
    scratch.load_state_dict(average_states(present))
    return Scores(accs, losses, evaluate(scratch, x, y).accuracy)


def _loaded(model: nn.Module, state: State) -> nn.Module:
    model.load_state_dict(state)
    return model
