"""The launcher's evaluations: every worker's published head on its own test slice while the run
goes (the whole test set at the end), plus the model averaged over the workers, scored by the
core's one scorer. A worker whose head cannot be read is left out of the means and recorded as
null — never scored 0 — and the refusal is counted."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mpls_celery.core.layering import State
from mpls_celery.core.scoring import score_workers
from mpls_celery.errors import InvalidState
from mpls_celery.experiment import Experiment
from mpls_celery.runtime.state.decode import Refusals
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.layout import Layout
from mpls_celery.runtime.worker.model_io import load_head
from mpls_celery.telemetry.records import EvalRecord
from mpls_celery.telemetry.states import NodeState

log = logging.getLogger(__name__)


@dataclass
class Evaluator:
    store: RunStore
    exp: Experiment
    layout: Layout
    eval_samples: int
    refusals: Refusals

    def head_states(self) -> list[dict[str, torch.Tensor] | None]:
        """Every worker's current head as a model state; None where nothing readable is
        published (and counted when something unreadable is)."""
        out: list[dict[str, torch.Tensor] | None] = []
        for worker in range(self.exp.config.workers):
            model = self.exp.new_model()
            try:
                head = load_head(self.store, self.layout, self.exp.layers, worker, model)
            except InvalidState as exc:
                log.warning("evaluation skips worker %s: %s", worker, exc)
                self.refusals.add("heads", str(exc))
                head = None
            out.append(model.state_dict() if head is not None else None)
        return out

    def evaluate(
        self,
        t: float,
        nodes: Sequence[NodeState],
        full: bool = False,
        states: Sequence[State | None] | None = None,
    ) -> EvalRecord | None:
        """Of `states` (the workers' heads, read now unless given); None when no worker has a
        readable model yet."""
        test = self.exp.test_data
        size = len(test) if full else self.eval_samples
        states = self.head_states() if states is None else states
        scores = score_workers(states, self.exp.new_model(), test.x, test.y, size)
        if scores is None:
            return None
        losses = [n.loss for n in nodes if n.loss is not None]
        return EvalRecord.from_scores(
            self.exp.config.algorithm,
            round(t, 3),
            epoch=sum(n.k for n in nodes),
            scores=scores,
            mean_loss=float(np.mean(losses)) if losses else 0.0,
        )
