"""What one local iteration of one worker *means*, once, for both engines: build the worker's view
of its peers, plan the pull, mix the pulled layers into the model, and say what progress to publish
and which test samples to score. The simulator and the Celery node supply only time, transport and
storage (docs/algorithm.md, "Iteration semantics"; every option here applies to every algorithm alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from numpy.typing import NDArray

from mpls_celery.core.aggregate import LayerTensors, Weighting, average_from_sums
from mpls_celery.core.errors import CoreValueError
from mpls_celery.core.layering import Layer, State, layer_progress
from mpls_celery.core.link_model import pull_times
from mpls_celery.core.semantics import LinkModel, Mixing, ProgressWindow, Semantics
from mpls_celery.core.strategies.base import Plan, Strategy, WorkerView

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Progress:
    """Published with each version: g(l) of that version (Eq. 5) and the running sum of g
    over all the worker's versions, from which a puller takes any window it needs."""

    last: FloatArray
    total: FloatArray

    @classmethod
    def zero(cls, n_layers: int) -> Progress:
        return cls(np.zeros(n_layers), np.zeros(n_layers))

    def after(self, new: State, old: State, layers: Sequence[Layer]) -> Progress:
        g = layer_progress(new, old, layers)
        return Progress(g, self.total + g)


@dataclass(frozen=True)
class PeerReport:
    """What a reachable peer shows the puller: its current progress and its link speed."""

    worker: int
    progress: Progress
    bandwidth: float  # bytes/s from the peer to the puller (measured or from a profile)


@dataclass
class WorkerStep:
    """One worker's iteration logic. Its only state is what it saw of each peer's running progress
    sum at its last aggregation (for the since-last-pull window)."""

    worker: int
    strategy: Strategy
    semantics: Semantics
    layer_bytes: FloatArray
    divergence: FloatArray  # (N,) DD from this worker to every worker
    _seen: dict[int, FloatArray] = field(default_factory=dict)

    def view(self, peers: Sequence[PeerReport]) -> WorkerView:
        n_layers = self.layer_bytes.shape[0]
        ids = np.array([p.worker for p in peers], dtype=np.int64)
        rows = [self._window(p) for p in peers]
        return WorkerView(
            peers=tuple(int(p) for p in ids),
            bandwidth=np.array([p.bandwidth for p in peers], dtype=np.float64),
            divergence=self.divergence[ids],
            progress=np.array(rows, dtype=np.float64).reshape(len(peers), n_layers),
            layer_bytes=self.layer_bytes,
        )

    def _window(self, peer: PeerReport) -> FloatArray:
        if self.semantics.progress_window is ProgressWindow.VERSION:
            return peer.progress.last
        total = peer.progress.total
        before = self._seen.get(peer.worker)
        self._seen[peer.worker] = total
        if before is None or before.shape != total.shape:
            return total  # first aggregation: the window starts at the run's start
        # a peer that restarted from an older version may report a smaller sum: no progress
        return np.maximum(total - before, 0.0)

    def plan(self, view: WorkerView, rng: np.random.Generator) -> Plan:
        plan = self.strategy.plan(view, rng)
        if self.semantics.links is LinkModel.SHARED and plan.y.size:
            plan = replace(plan, delay=float(self.pull_seconds(view, plan).max(initial=0.0)))
        return plan

    def pull_seconds(self, view: WorkerView, plan: Plan) -> FloatArray:
        """(S,) seconds until the pull from each peer of the view completes under the link model."""
        return pull_times(
            plan.peer_bytes(self.layer_bytes),
            view.bandwidth,
            self.semantics.links is LinkModel.SHARED,
        )

    def premix(
        self,
        start: Sequence[LayerTensors],
        sums: Sequence[Mapping[str, torch.Tensor] | None],
        counts: Sequence[int],
        weighting: Weighting,
    ) -> list[dict[str, torch.Tensor]] | None:
        """The part of the mix that needs no trained layers — Eq. 1 over the start, under
        average-then-step (None under train-then-average): a node computes it while it trains."""
        if self.semantics.mixing is Mixing.TRAIN_THEN_AVERAGE:
            return None
        return average_from_sums(start, sums, counts, weighting)

    def mix(
        self,
        start: Sequence[LayerTensors],
        trained: Sequence[LayerTensors],
        sums: Sequence[Mapping[str, torch.Tensor] | None],
        counts: Sequence[int],
        weighting: Weighting,
        premixed: list[dict[str, torch.Tensor]] | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """The worker's layers after this iteration, from the layers it started with, its layers
        after local training, and per layer the sum and count of the pulled copies;
        `premixed`: what `premix` gave for the same start, sums and counts (used up here)."""
        if self.semantics.mixing is Mixing.TRAIN_THEN_AVERAGE:
            return average_from_sums(trained, sums, counts, weighting)
        if premixed is None:
            premixed = average_from_sums(start, sums, counts, weighting)
        return add_local_update(premixed, start, trained, counts)


@torch.no_grad()
def add_local_update(
    averaged: Sequence[LayerTensors],
    start: Sequence[LayerTensors],
    trained: Sequence[LayerTensors],
    counts: Sequence[int],
) -> list[dict[str, torch.Tensor]]:
    """averaged + (trained − start) layer by layer, in place on `averaged` (the caller's own
    copies); a layer nothing was pulled for is exactly the trained layer."""
    if not len(averaged) == len(start) == len(trained) == len(counts):
        raise CoreValueError("averaged, start, trained and counts need one entry per layer")
    out: list[dict[str, torch.Tensor]] = []
    for avg, s, t, count in zip(averaged, start, trained, counts, strict=True):
        if count == 0:
            out.append({key: value.detach().clone() for key, value in t.items()})
        else:
            out.append({key: value.add_(t[key] - s[key]) for key, value in avg.items()})
    return out


def eval_slice(worker: int, n_test: int, size: int) -> torch.Tensor:
    """The test samples worker i is scored on while running: disjoint slices for the first
    n_test // size workers, so the mean over workers covers the test set."""
    size = min(size, n_test)
    return (worker * size + torch.arange(size)) % n_test
