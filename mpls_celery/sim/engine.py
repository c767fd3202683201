"""Discrete-event simulation in virtual time with real SGD on real data.

Each worker's iteration k starts at t0: it sees each reachable peer's latest version published at
or before t0, its strategy plans the pull, it trains, averages (Eq. 1), and publishes version k+1
at t0 + max(compute, λ) (plus the recorded per-iteration overhead when it replays a real run).
No barrier: every worker runs on its own clock.

Two engines compute the same events. `sequential` trains each worker as its iteration starts.
`batched` defers the local update (it depends only on the start model and the worker's own
batches, drawn at the start as before) and computes every deferred update in one vectorised call
when a value is first needed: the worker's publish, or a pull that sees a trained model. Plans,
pulls and event times are the same; the trained weights differ by float rounding only."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from mpls_celery.core.aggregate import Weighting, stack_copies
from mpls_celery.core.batched_training import Batch, BatchedTrainer
from mpls_celery.core.divergence import check_finite
from mpls_celery.core.layering import Layer, read_layer, snapshot_state, write_layers
from mpls_celery.core.network_profile import FloatArray, SimNetwork
from mpls_celery.core.scoring import score_workers
from mpls_celery.core.semantics import PullSees
from mpls_celery.core.step import PeerReport, Progress, WorkerStep
from mpls_celery.core.strategies import Plan, WorkerView
from mpls_celery.core.training import LocalTrainer
from mpls_celery.experiment import Experiment
from mpls_celery.sim.engine_choice import choose_engine
from mpls_celery.sim.heap import release_free_memory
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record, transfer_links

State = Mapping[str, torch.Tensor]
# Publishes between handing the allocator's free memory back (sim/heap.py): ~10 s of work.
RELEASE_EVERY = 1000


@dataclass(frozen=True)
class SimOptions:
    algorithm: str
    until: float | None = 300.0  # virtual seconds
    epochs: int | None = None  # T: total local iterations over all workers
    eval_every: float = 5.0
    eval_every_epochs: int | None = None  # evaluate every E epochs instead of every eval_every s
    eval_samples: int = 200  # test samples per worker (disjoint slices; the mean is precise)
    step_seconds: float = 0.05  # one SGD step at compute speed 1.0
    target_acc: float | None = None
    stop_at_target: bool = False
    record_links: bool = False  # per-peer transfers in each record, as a runtime run has them
    engine: str = "auto"  # or "sequential" | "batched" (sim/engine_choice.py)
    save_workers: bool = False  # each worker's final model too, beside the averaged one


@dataclass
class _Planned:
    """An iteration planned and pulled for, before its local update (which the batched engine
    defers)."""

    start: State
    batches: list[Batch]
    pulled: list[list[dict[str, torch.Tensor]]]
    weighting: Weighting
    record: IterationRecord


@dataclass
class _Worker:
    step: WorkerStep
    trainer: LocalTrainer
    published: State
    progress: Progress
    rng: np.random.Generator
    k: int = 0
    pending: tuple[State, IterationRecord] | None = None
    trained: State | None = None  # readable by pulls from `trained_at` on (pull_sees: trained)
    trained_at: float = 0.0
    deferred: _Planned | None = None


class Simulation:
    def __init__(self, exp: Experiment, opts: SimOptions, profile: SimNetwork) -> None:
        self.exp, self.opts, self.profile = exp, opts, profile
        cfg = exp.config
        self.workers: list[_Worker] = []
        for i in range(cfg.workers):
            model = exp.new_model()
            local = exp.local_data(i)
            trainer = LocalTrainer(
                model, local.x, local.y, exp.train_config, seed=cfg.seed * 100_003 + i
            )
            self.workers.append(
                _Worker(
                    exp.worker_step(i, opts.algorithm),
                    trainer,
                    snapshot_state(model),
                    Progress.zero(len(exp.layers)),
                    np.random.default_rng([cfg.seed, i]),
                )
            )
        self._scratch = exp.new_model()
        self.engine = choose_engine(opts.engine, self._scratch, exp.device)
        self._batched = (
            BatchedTrainer(exp.new_model(), exp.train_config) if self.engine == "batched" else None
        )
        self.records: list[Record] = []
        self.epoch = 0

    def run(self, on_progress: Callable[[float, int], None] | None = None) -> list[Record]:
        opts = self.opts
        queue = [(self.profile.start_seconds(i), i) for i in range(len(self.workers))]
        heapq.heapify(queue)
        next_eval = 0.0
        by_time = opts.eval_every_epochs is None
        stop_time: float | None = None
        while queue:
            t, i = queue[0]
            if opts.until is not None and t > opts.until:
                stop_time = opts.until
                break
            while next_eval <= t:
                if self._evaluate(next_eval) and opts.stop_at_target:
                    return self.records
                if on_progress:
                    on_progress(next_eval, self.epoch)
                next_eval = next_eval + opts.eval_every if by_time else math.inf
            heapq.heappop(queue)
            worker = self.workers[i]
            if worker.pending is not None or worker.deferred is not None:
                self._publish(worker)
                if self.epoch % RELEASE_EVERY == 0:
                    release_free_memory()
                if not by_time and self.epoch % opts.eval_every_epochs == 0:  # type: ignore[operator]
                    if self._evaluate(t) and opts.stop_at_target:
                        return self.records
                    if on_progress:
                        on_progress(t, self.epoch)
                if opts.epochs is not None and self.epoch >= opts.epochs:
                    stop_time = t
                    break
            duration = self._start_iteration(i, t)
            heapq.heappush(queue, (t + duration, i))
        if stop_time is not None and (not self.records or self._last_eval_time() < stop_time):
            self._evaluate(stop_time)
        return self.records

    def final_states(self) -> list[State]:
        """Every worker's last published model (an update still in flight is not in it)."""
        return [w.published for w in self.workers]

    def _last_eval_time(self) -> float:
        evals = [r.t for r in self.records if isinstance(r, EvalRecord)]
        return evals[-1] if evals else -1.0

    def _peers(self, i: int, t: float) -> list[PeerReport]:
        """The neighbours reachable at t, with what they published and their link speed."""
        neighbours = np.asarray(self.exp.topology.neighbours(i), dtype=np.int64)
        up = self.profile.links_up(i, neighbours, t) if neighbours.size else np.zeros(0, bool)
        peers = neighbours[up]
        speeds = self.profile.planning_speeds(i, peers, t)
        return [
            PeerReport(int(p), self.workers[p].progress, float(b))
            for p, b in zip(peers, speeds, strict=True)
        ]

    def _start_iteration(self, i: int, t: float) -> float:
        worker = self.workers[i]
        step = worker.step
        view = step.view(self._peers(i, t))
        plan = step.plan(view, worker.rng)
        by_peer = plan.layers_by_peer()
        pulled = self._pull(by_peer, t)
        reference = self.opts.step_seconds * self.exp.config.training.local_steps
        compute = self.profile.compute_seconds(i, t, reference)
        worker.trained_at = t + compute
        seconds = self._transfer_seconds(i, view, plan, t)
        delay = plan.delay if seconds is None else float(seconds.max(initial=0.0))
        duration = max(compute, delay) + self.profile.overhead_seconds(i, t)
        record = IterationRecord(
            algo=self.opts.algorithm,
            worker=i,
            k=worker.k,
            t=t + duration,
            epoch=0,  # filled in at publish time
            loss=math.nan,  # filled in once trained
            plan=by_peer,
            bytes_pulled=plan.bytes_pulled(self.exp.layer_bytes),
            pull_seconds=delay,
            compute_seconds=compute,
            peers_reachable=len(view.peers),
            links=self._links(step, view, plan, t, seconds) if self.opts.record_links else None,
        )
        if self._batched is not None:  # the batches drawn now, as the sequential engine does
            batches = worker.trainer.next_batches()
            worker.deferred = _Planned(worker.published, batches, pulled, plan.weighting, record)
        else:
            self._train_now(worker, _Planned(worker.published, [], pulled, plan.weighting, record))
        return duration

    def _train_now(self, worker: _Worker, it: _Planned) -> None:
        """The sequential engine: train the worker's model (it holds `it.start`), mix into it."""
        model = worker.trainer.model
        loss = worker.trainer.train(worker.k)
        trained = snapshot_state(model) if _sees_trained(worker) else model.state_dict()
        write_layers(model, self.exp.layers, self._after_training(worker, it, trained))
        worker.pending = (snapshot_state(model), replace(it.record, loss=loss))

    def _after_training(
        self, worker: _Worker, it: _Planned, trained: State
    ) -> list[dict[str, torch.Tensor]]:
        """The trained copy made visible to pulls (pull_sees: trained), then Eq. 1's mix."""
        if _sees_trained(worker):
            worker.trained = trained
        return mix_copies(worker.step, self.exp.layers, it.start, trained, it.pulled, it.weighting)

    def _train_deferred(self) -> None:
        """Every deferred local update, in vectorised calls of workers with batches alike."""
        assert self._batched is not None
        groups: dict[tuple[torch.Size, ...], list[_Worker]] = {}
        for worker in self.workers:
            if worker.deferred is not None:
                shapes = tuple(x.shape for x, _ in worker.deferred.batches)
                groups.setdefault(shapes, []).append(worker)
        for group in groups.values():
            deferred = [w.deferred for w in group if w.deferred is not None]
            result = self._batched.train(
                [d.start for d in deferred],
                [d.batches for d in deferred],
                [w.trainer.velocity for w in group],
                [w.trainer.config.lr_at(w.k) for w in group],
            )
            for worker, trained, loss, velocity in zip(
                group, result.states, result.losses, result.velocities, strict=True
            ):
                worker.trainer.velocity = velocity
                self._finish_deferred(worker, trained, loss)

    def _finish_deferred(self, worker: _Worker, trained: State, loss: float) -> None:
        """The rest of a deferred iteration, as the sequential engine does it after training."""
        deferred = worker.deferred
        assert deferred is not None
        state = dict(trained)
        for layer in self._after_training(worker, deferred, trained):
            state.update(layer)
        worker.pending = (state, replace(deferred.record, loss=loss))
        worker.deferred = None

    def _transfer_seconds(
        self, i: int, view: WorkerView, plan: Plan, t: float
    ) -> FloatArray | None:
        """(S,) seconds of each peer's transfer when they differ from the plan's own (a replayed
        run: measured rates and latency, not the estimates it planned with), else None."""
        if not view.peers:
            return None
        sizes = plan.peer_bytes(view.layer_bytes)
        return self.profile.realized_pull_seconds(i, view.peers, sizes, t)

    def _links(
        self, step: WorkerStep, view: WorkerView, plan: Plan, t: float, seconds: FloatArray | None
    ) -> dict[int, list[float]]:
        """Per peer pulled from: [bytes, seconds, start], as the runtime records its transfers."""
        sizes = plan.peer_bytes(view.layer_bytes)
        if seconds is None:
            seconds = step.pull_seconds(view, plan)
        transfers = zip(view.peers, sizes, seconds, [t] * len(sizes), strict=True)
        return transfer_links(x for x in transfers if x[1] > 0)

    def _pull(self, by_peer: dict[int, list[int]], t: float) -> list[list[dict[str, torch.Tensor]]]:
        """What each peer shows at t: its trained model once its local step is done (when pulls
        see trained models), else its last published one."""
        pulled: list[list[dict[str, torch.Tensor]]] = [[] for _ in self.exp.layers]
        for peer, layer_ids in by_peer.items():
            other = self.workers[peer]
            if other.deferred is not None and other.trained_at <= t and _sees_trained(other):
                self._train_deferred()
            fresh = other.trained is not None and other.trained_at <= t
            source = other.trained if fresh and other.trained is not None else other.published
            for l_idx in layer_ids:
                pulled[l_idx].append(read_layer(source, self.exp.layers[l_idx]))
        return pulled

    def _publish(self, worker: _Worker) -> None:
        if worker.deferred is not None:
            self._train_deferred()
        assert worker.pending is not None
        state, record = worker.pending
        progress = worker.progress.after(state, worker.published, self.exp.layers)
        check_finite(
            record.worker, record.k, self.exp.config.training.lr, record.loss, progress.last
        )
        worker.progress = progress
        worker.published = state
        worker.pending = None
        worker.trained = None
        worker.k += 1
        self.epoch += 1
        self.records.append(_with_epoch(record, self.epoch))

    def _evaluate(self, t: float) -> bool:
        """Record test accuracy now; True when the target is reached."""
        test = self.exp.test_data
        states = [w.published for w in self.workers]
        many = self._batched.evaluate if self._batched is not None else None
        scores = score_workers(states, self._scratch, test.x, test.y, self.opts.eval_samples, many)
        assert scores is not None  # every simulated worker has a model
        record = EvalRecord.from_scores(
            self.opts.algorithm, t, self.epoch, scores, scores.mean_loss
        )
        self.records.append(record)
        target = self.opts.target_acc  # reached once both accuracies are there
        return target is not None and min(record.mean_acc, record.avg_model_acc) >= target


def mix_copies(
    step: WorkerStep,
    layers: Sequence[Layer],
    start: State,
    trained: State,
    pulled: Sequence[Sequence[dict[str, torch.Tensor]]],
    weighting: Weighting,
) -> list[dict[str, torch.Tensor]]:
    """The simulator's side of the shared step: the pulled copies are summed here (in the runtime
    the aggregation task sums them)."""
    stacked = [stack_copies(copies) for copies in pulled]
    return step.mix(
        [read_layer(start, layer) for layer in layers],
        [read_layer(trained, layer) for layer in layers],
        [total for total, _ in stacked],
        [count for _, count in stacked],
        weighting,
    )


def _sees_trained(worker: _Worker) -> bool:
    return worker.step.semantics.pull_sees is PullSees.TRAINED


def _with_epoch(record: IterationRecord, epoch: int) -> IterationRecord:
    return replace(record, epoch=epoch)
