"""One DFL worker's local iterations in the runtime (wall clock, Redis, Celery pull tasks).

Iteration k: read peers' heads → plan → enqueue the pull → train meanwhile → wait for the pull
(deadline) → Eq. 1 → publish version k+1 (layers, then head, compare-and-set) → telemetry."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import numpy as np
import orjson
import torch

from mpls_celery.core.aggregate import average_from_sums
from mpls_celery.core.layering import layer_progress, read_layer, snapshot_state, write_layers
from mpls_celery.core.strategies import Plan, WorkerView, make_strategy
from mpls_celery.core.training import LocalTrainer, TrainConfig, evaluate
from mpls_celery.errors import MplsError
from mpls_celery.runtime.codec import decode_tensors, encode_tensors
from mpls_celery.runtime.context import RunContext
from mpls_celery.runtime.model_io import load_version
from mpls_celery.runtime.store import blend_links
from mpls_celery.telemetry.records import IterationRecord

DEFAULT_BPS = 50e6  # prior for a peer whose link was never measured
EnqueuePull = Callable[[int, dict[int, list[int]], dict[int, float] | None, float], None]


class StaleNode(MplsError):
    """Another process published this worker's next version first; reload from Redis."""


class NodeRuntime:
    def __init__(self, ctx: RunContext, worker: int) -> None:
        self.ctx, self.worker = ctx, worker
        exp = ctx.experiment
        cfg = ctx.config
        self.model = exp.new_model()
        self.layers = exp.layers
        local = exp.data.train.subset(exp.partition.indices[worker])
        train_cfg = TrainConfig(cfg.training.batch_size, cfg.training.lr, cfg.training.local_steps)
        self.trainer = LocalTrainer(self.model, local.x, local.y, train_cfg, seed=cfg.seed)
        self.strategy = make_strategy(cfg.algorithm, cfg.tau1, cfg.tau2, cfg.phase2_fill)
        self.version = -1
        self.published: dict[str, torch.Tensor] = {}
        self.accuracy: float | None = None
        self.last_loss = 0.0
        self.known_links: dict[int, float] = {}
        self.finished = False

    # start / resume ----------------------------------------------------------------------------
    def resume(self) -> NodeRuntime:
        """Continue from the worker's head in Redis, or publish version 0 (the initial model)."""
        store = self.ctx.store
        head = store.head(self.worker)
        if head is None:
            self.published = snapshot_state(self.model)
            if not self._publish(0, np.zeros(len(self.layers))):
                return self.resume()
        else:
            load_version(store, self.ctx.layout, self.layers, self.worker, head.version, self.model)
            self.version = head.version
            self.published = snapshot_state(self.model)
            if store.store_urls([self.worker])[0] != store.snapshot_url:
                # this host keeps its own snapshots: carry the version over, then serve it here
                self._publish(head.version, np.asarray(head.progress), seed=True)
        self.trainer.generator.manual_seed(
            self.ctx.config.seed * 1_000_003 + self.worker * 7919 + self.version
        )
        self.finished = self._reached_iterations()
        return self

    def _reached_iterations(self) -> bool:
        limit = self.ctx.options.iterations
        return limit is not None and self.version >= limit

    # one iteration -------------------------------------------------------------------------------
    def iteration(self, enqueue_pull: EnqueuePull) -> IterationRecord:
        ctx, store, worker = self.ctx, self.ctx.store, self.worker
        k = self.version
        now = time.time() - ctx.started_at
        view = self._view(now)
        rng = np.random.default_rng([ctx.config.seed, worker, k])
        plan = self.strategy.plan(view, rng)
        by_peer = plan.layers_by_peer()
        deadline = max(ctx.options.pull_deadline, 3 * plan.delay)
        emulated = self._emulated_speeds(view) if ctx.experiment.profile else None
        if by_peer:
            enqueue_pull(k, by_peer, emulated, deadline)
        pull_started = time.monotonic()
        store.set_node_state(
            worker, state="training", k=k, pid=os.getpid(), host=socket.gethostname()
        )
        compute = self._train()
        remaining = deadline - (time.monotonic() - pull_started)
        result = store.wait_pull_result(worker, k, remaining, state="pulling") if by_peer else None
        waited = time.monotonic() - pull_started
        pulled_meta = self._average(plan, result)
        new_state = snapshot_state(self.model)
        progress = layer_progress(new_state, self.published, self.layers)
        self.published = new_state
        if not self._publish(k + 1, progress):
            raise StaleNode(f"worker {worker}: version {k + 1} was published elsewhere")
        if (k + 1) % ctx.options.eval_every == 0 or self._reached_iterations():
            self.accuracy = self._evaluate()
        record = IterationRecord(
            algo=ctx.config.algorithm,
            worker=worker,
            k=k,
            t=round(time.time() - ctx.started_at, 4),
            epoch=k + 1,
            loss=self.last_loss,
            plan={p: ls for p, ls in by_peer.items()} if result else {},
            bytes_pulled=float(pulled_meta.get("bytes", 0)),
            pull_seconds=round(waited if by_peer else 0.0, 4),
            compute_seconds=round(compute, 4),
            peers_reachable=len(view.peers),
        )
        self.finished = self._reached_iterations()
        measured = {int(p): float(s) for p, s in (pulled_meta.get("speeds") or {}).items()}
        store.emit(
            record,
            links=None if emulated is not None else blend_links(self.known_links, measured),
            node_state=dict(
                state="finished" if self.finished else "idle",
                k=k + 1,
                version=self.version,
                loss=self.last_loss,
                acc=self.accuracy,
                last_pull={
                    "peers": len(by_peer),
                    "layers": int(plan.y.sum()),
                    "bytes": pulled_meta.get("bytes", 0),
                    "seconds": round(waited, 3),
                    "timeout": bool(by_peer) and result is None,
                    "errors": len(pulled_meta.get("errors", {})),
                },
                bandwidth=float(np.mean(view.bandwidth)) if len(view.peers) else None,
            ),
        )
        return record

    def _view(self, now: float) -> WorkerView:
        ctx, exp = self.ctx, self.ctx.experiment
        neighbours = list(exp.topology.neighbours(self.worker))
        heads, states, known = ctx.store.peer_view(self.worker, neighbours)
        self.known_links = known
        wall = time.time()
        alive = [
            (peer, head)
            for peer, head, state in zip(neighbours, heads, states, strict=True)
            if head is not None
            and wall - float(state.get("heartbeat", 0.0)) <= ctx.options.peer_timeout
            and len(head.progress) == len(self.layers)
        ]
        if exp.profile is not None and alive:
            up = exp.profile.links_up(self.worker, [p for p, _ in alive], now)
            alive = [pair for pair, ok in zip(alive, up, strict=True) if ok]
        peers = np.array([p for p, _ in alive], dtype=np.int64)
        if exp.profile is not None:
            bandwidth = exp.profile.link_speeds(self.worker, peers, now)
        else:
            prior = float(np.median(list(known.values()))) if known else DEFAULT_BPS
            bandwidth = np.array([known.get(int(p), prior) for p in peers], dtype=np.float64)
        return WorkerView(
            peers=tuple(int(p) for p in peers),
            bandwidth=bandwidth,
            divergence=exp.divergence[self.worker, peers],
            progress=np.array([h.progress for _, h in alive]).reshape(len(alive), len(self.layers)),
            layer_bytes=exp.layer_bytes,
        )

    def _emulated_speeds(self, view: WorkerView) -> dict[int, float]:
        return {peer: float(b) for peer, b in zip(view.peers, view.bandwidth, strict=True)}

    def _train(self) -> float:
        started = time.monotonic()
        self.last_loss = self.trainer.train()
        elapsed = time.monotonic() - started
        profile = self.ctx.experiment.profile
        if profile is not None:  # emulate a slower device: stretch by 1 / compute speed
            time.sleep(max(0.0, elapsed * (1.0 / profile.compute(self.worker) - 1.0)))
        return time.monotonic() - started

    def _average(self, plan: Plan, result: dict[str, bytes] | None) -> dict[str, object]:
        if not result or "meta" not in result:
            return {}
        meta = orjson.loads(result["meta"])
        counts = [int(c) for c in meta["counts"]]
        sums: list[dict[str, torch.Tensor] | None] = []
        for l_idx, count in enumerate(counts):
            blob = result.get(f"l{l_idx}")
            if count and blob:
                tensors, _ = decode_tensors(
                    blob, self.ctx.layout[l_idx], {"run": self.ctx.store.run_id}
                )
                sums.append(tensors)
            else:
                sums.append(None)
                counts[l_idx] = 0
        state = self.model.state_dict()
        local = [read_layer(state, layer) for layer in self.layers]
        averaged = average_from_sums(local, sums, counts, plan.weighting)
        write_layers(self.model, self.layers, averaged)
        return meta  # type: ignore[no-any-return]

    def _publish(self, version: int, progress: np.ndarray, seed: bool = False) -> bool:
        ctx = self.ctx
        meta = {"run": ctx.store.run_id, "worker": self.worker, "version": version}
        blobs = [
            encode_tensors(
                read_layer(self.published, layer),
                {**meta, "layer": l_idx},
                ctx.config.wire_dtype,
                ctx.config.compression,
            )
            for l_idx, layer in enumerate(self.layers)
        ]
        t = time.time() - ctx.started_at
        ok = ctx.store.publish(
            self.worker, version, blobs, progress.tolist(), t, ctx.options.keep_versions, seed
        )
        if ok:
            self.version = version
        return ok

    def _evaluate(self) -> float:
        test = self.ctx.experiment.data.test
        size = min(self.ctx.options.eval_samples, len(test))
        idx = (self.worker * size + torch.arange(size)) % len(test)
        return round(evaluate(self.model, test.x[idx], test.y[idx]).accuracy, 4)
