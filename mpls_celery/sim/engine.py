"""Discrete-event simulation in virtual time with real SGD on real data.

Each worker's iteration k starts at t0: it sees each reachable peer's latest version published at
or before t0, its strategy plans the pull, it trains, averages (Eq. 1), and publishes version k+1
at t0 + max(compute, λ). No barrier: every worker runs on its own clock."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from mpls_celery.core.aggregate import average_layers, average_states
from mpls_celery.core.layering import layer_progress, read_layer, snapshot_state, write_layers
from mpls_celery.core.network import NetworkProfile
from mpls_celery.core.strategies import WorkerView, make_strategy
from mpls_celery.core.training import LocalTrainer, TrainConfig, evaluate
from mpls_celery.experiment import Experiment
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record

State = dict[str, torch.Tensor]


@dataclass(frozen=True)
class SimOptions:
    algorithm: str
    until: float | None = 300.0  # virtual seconds
    epochs: int | None = None  # T: total local iterations over all workers
    eval_every: float = 5.0
    eval_samples: int = 200  # test samples per worker (disjoint slices; the mean is precise)
    step_seconds: float = 0.05  # one SGD step at compute speed 1.0
    target_acc: float | None = None
    stop_at_target: bool = False


@dataclass
class _Worker:
    trainer: LocalTrainer
    published: State
    progress: np.ndarray
    rng: np.random.Generator
    k: int = 0
    pending: tuple[State, IterationRecord] | None = None


class Simulation:
    def __init__(self, exp: Experiment, opts: SimOptions, profile: NetworkProfile) -> None:
        self.exp, self.opts, self.profile = exp, opts, profile
        cfg = exp.config
        self.strategy = make_strategy(opts.algorithm, cfg.tau1, cfg.tau2, cfg.phase2_fill)
        train_cfg = TrainConfig(cfg.training.batch_size, cfg.training.lr, cfg.training.local_steps)
        self.workers: list[_Worker] = []
        for i, idx in enumerate(exp.partition.indices):
            model = exp.new_model()
            local = exp.data.train.subset(idx)
            trainer = LocalTrainer(model, local.x, local.y, train_cfg, seed=cfg.seed * 100_003 + i)
            self.workers.append(
                _Worker(
                    trainer,
                    snapshot_state(model),
                    np.zeros(len(exp.layers)),
                    np.random.default_rng([cfg.seed, i]),
                )
            )
        self._scratch = exp.new_model()
        self.records: list[Record] = []
        self.epoch = 0

    def run(self, on_progress: Callable[[float, int], None] | None = None) -> list[Record]:
        opts = self.opts
        queue = [(0.0, i) for i in range(len(self.workers))]
        next_eval = 0.0
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
                next_eval += opts.eval_every
            heapq.heappop(queue)
            worker = self.workers[i]
            if worker.pending is not None:
                self._publish(worker)
                if opts.epochs is not None and self.epoch >= opts.epochs:
                    stop_time = t
                    break
            duration = self._start_iteration(i, t)
            heapq.heappush(queue, (t + duration, i))
        if stop_time is not None and (not self.records or self._last_eval_time() < stop_time):
            self._evaluate(stop_time)
        return self.records

    def _last_eval_time(self) -> float:
        evals = [r.t for r in self.records if isinstance(r, EvalRecord)]
        return evals[-1] if evals else -1.0

    def _view(self, i: int, t: float) -> WorkerView:
        neighbours = np.asarray(self.exp.topology.neighbours(i), dtype=np.int64)
        up = self.profile.links_up(i, neighbours, t) if neighbours.size else np.zeros(0, bool)
        peers = neighbours[up]
        return WorkerView(
            peers=tuple(int(p) for p in peers),
            bandwidth=self.profile.link_speeds(i, peers, t),
            divergence=self.exp.divergence[i, peers],
            progress=np.stack([self.workers[p].progress for p in peers])
            if peers.size
            else np.zeros((0, len(self.exp.layers))),
            layer_bytes=self.exp.layer_bytes,
        )

    def _start_iteration(self, i: int, t: float) -> float:
        worker = self.workers[i]
        view = self._view(i, t)
        plan = self.strategy.plan(view, worker.rng)
        by_peer = plan.layers_by_peer()
        pulled = self._pull(by_peer)  # what each peer had published at t
        loss = worker.trainer.train()
        model = worker.trainer.model
        state = model.state_dict()
        local = [read_layer(state, layer) for layer in self.exp.layers]
        write_layers(model, self.exp.layers, average_layers(local, pulled, plan.weighting))
        compute = self.opts.step_seconds * self.exp.config.training.local_steps
        compute /= self.profile.compute(i)
        duration = max(compute, plan.delay)
        record = IterationRecord(
            algo=self.opts.algorithm,
            worker=i,
            k=worker.k,
            t=t + duration,
            epoch=0,  # filled in at publish time
            loss=loss,
            plan=by_peer,
            bytes_pulled=plan.bytes_pulled(self.exp.layer_bytes),
            pull_seconds=plan.delay,
            compute_seconds=compute,
            peers_reachable=len(view.peers),
        )
        worker.pending = (snapshot_state(model), record)
        return duration

    def _pull(self, by_peer: dict[int, list[int]]) -> list[list[dict[str, torch.Tensor]]]:
        pulled: list[list[dict[str, torch.Tensor]]] = [[] for _ in self.exp.layers]
        for peer, layer_ids in by_peer.items():
            source = self.workers[peer].published
            for l_idx in layer_ids:
                pulled[l_idx].append(read_layer(source, self.exp.layers[l_idx]))
        return pulled

    def _publish(self, worker: _Worker) -> None:
        assert worker.pending is not None
        state, record = worker.pending
        worker.progress = layer_progress(state, worker.published, self.exp.layers)
        worker.published = state
        worker.pending = None
        worker.k += 1
        self.epoch += 1
        self.records.append(_with_epoch(record, self.epoch))

    def _evaluate(self, t: float) -> bool:
        """Record test accuracy now; True when the target is reached."""
        test = self.exp.data.test
        n_test = len(test)
        size = min(self.opts.eval_samples, n_test)
        accs, losses = [], []
        for i, worker in enumerate(self.workers):
            idx = (i * size + torch.arange(size)) % n_test
            self._scratch.load_state_dict(worker.published)
            result = evaluate(self._scratch, test.x[idx], test.y[idx])
            accs.append(result.accuracy)
            losses.append(result.loss)
        self._scratch.load_state_dict(average_states([w.published for w in self.workers]))
        averaged = evaluate(self._scratch, test.x, test.y)
        mean_acc = float(np.mean(accs))
        self.records.append(
            EvalRecord(
                algo=self.opts.algorithm,
                t=t,
                epoch=self.epoch,
                mean_acc=mean_acc,
                avg_model_acc=averaged.accuracy,
                mean_loss=float(np.mean(losses)),
                worker_acc=[round(a, 4) for a in accs],
            )
        )
        return self.opts.target_acc is not None and mean_acc >= self.opts.target_acc


def _with_epoch(record: IterationRecord, epoch: int) -> IterationRecord:
    return replace(record, epoch=epoch)
