"""The launcher's evaluations: every worker's published head on its own test slice while the run
goes (the whole test set at the end), plus the model averaged over the workers. A worker whose
head cannot be read is left out of the means and recorded as null — never scored 0."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from torch import nn

from mpls_celery.core.aggregate import average_states
from mpls_celery.core.step import eval_slice
from mpls_celery.core.training import evaluate
from mpls_celery.errors import SnapshotError
from mpls_celery.experiment import Experiment
from mpls_celery.runtime.layout import Layout
from mpls_celery.runtime.model_io import load_head
from mpls_celery.runtime.store import RunStore
from mpls_celery.telemetry.records import EvalRecord

log = logging.getLogger(__name__)


@dataclass
class Evaluator:
    store: RunStore
    exp: Experiment
    layout: Layout
    eval_samples: int

    def head_models(self) -> list[nn.Module | None]:
        """Every worker's current head as a model; None where nothing readable is published."""
        out: list[nn.Module | None] = []
        for worker in range(self.exp.config.workers):
            model = self.exp.new_model()
            try:
                head = load_head(self.store, self.layout, self.exp.layers, worker, model)
            except SnapshotError as exc:
                log.warning("evaluation skips worker %s: %s", worker, exc)
                head = None
            out.append(model if head is not None else None)
        return out

    def evaluate(
        self, t: float, epoch: int, mean_loss: float, full: bool = False
    ) -> EvalRecord | None:
        models = self.head_models()
        present = [m for m in models if m is not None]
        if not present:
            return None
        test = self.exp.data.test
        size = len(test) if full else self.eval_samples
        worker_acc: list[float | None] = []
        for worker, model in enumerate(models):
            idx = eval_slice(worker, len(test), size)
            worker_acc.append(
                None if model is None else evaluate(model, test.x[idx], test.y[idx]).accuracy
            )
        averaged = self.exp.new_model()
        averaged.load_state_dict(average_states([m.state_dict() for m in present]))
        scored = [a for a in worker_acc if a is not None]
        return EvalRecord(
            algo=self.exp.config.algorithm,
            t=round(t, 3),
            epoch=epoch,
            mean_acc=float(np.mean(scored)),
            avg_model_acc=evaluate(averaged, test.x, test.y).accuracy,
            mean_loss=mean_loss,
            worker_acc=[None if a is None else round(a, 4) for a in worker_acc],
        )
