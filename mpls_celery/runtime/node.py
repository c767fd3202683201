"""One DFL worker's local iterations in the runtime (wall clock, Redis, Celery pull tasks).

Iteration k: read peers' heads → plan → enqueue the pull → train meanwhile → wait for the pull
(deadline) → Eq. 1 → publish version k+1 (layers, then head, compare-and-set) → telemetry."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable

import numpy as np
import torch

from mpls_celery.core.aggregate import average_states
from mpls_celery.core.layering import read_layer, snapshot_state, write_layers
from mpls_celery.core.step import PeerReport, Progress, PullSees, eval_slice
from mpls_celery.core.strategies import Plan, WorkerView
from mpls_celery.core.training import LocalTrainer, evaluate
from mpls_celery.errors import SnapshotError, StaleNode
from mpls_celery.runtime.codec import decode_tensors, encode_tensors
from mpls_celery.runtime.context import RunContext
from mpls_celery.runtime.messages import PullRequest, PullResult
from mpls_celery.runtime.model_io import load_head, load_version
from mpls_celery.runtime.network import network_for
from mpls_celery.runtime.probes import DONE, Probe, offer, probe_at_start, probe_peer, probe_state
from mpls_celery.telemetry.records import IterationRecord, ProbeRecord, parse_record, to_json

log = logging.getLogger(__name__)
EnqueuePull = Callable[[PullRequest, float], None]  # the request and its deadline (s)


class NodeRuntime:
    def __init__(self, ctx: RunContext, worker: int) -> None:
        self.ctx, self.worker = ctx, worker
        exp = ctx.experiment
        cfg = ctx.config
        self.model = exp.new_model()
        self.layers = exp.layers
        local = exp.data.train.subset(exp.partition.indices[worker])
        self.trainer = LocalTrainer(self.model, local.x, local.y, exp.train_config, seed=cfg.seed)
        self.step = exp.worker_step(worker)
        self.network = network_for(exp.profile, ctx.options.link_speeds)
        self.version = -1
        self.published: dict[str, torch.Tensor] = {}
        self.progress = Progress.zero(len(self.layers))
        self.accuracy: float | None = None
        self.last_loss = 0.0
        self.known_links: dict[int, float] = {}
        self.probed_at_start = False  # in this process (the run's state says whether ever)
        self.probe_tried: dict[int, float] = {}  # peer → when this process last probed it
        self.finished = False

    # start / resume ----------------------------------------------------------------------------
    def resume(self) -> NodeRuntime:
        """Continue from the worker's head in Redis, or publish version 0 (the initial model).
        A head that cannot be read is repaired from the newest intact kept version (else from
        the peers' models, else the initial model) and the repair is reported."""
        store = self.ctx.store
        if self.network.probes:
            offer(store, self.worker)
        head = store.head(self.worker)
        if head is None:
            self.published = snapshot_state(self.model)
            if not self._publish(0, self.progress):
                return self.resume()
        else:
            self.version = head.version
            self.progress = Progress(np.asarray(head.progress), np.asarray(head.total))
            repaired = self._load_newest_intact(head.version)
            self.published = snapshot_state(self.model)
            if repaired:
                log.warning("worker %s: %s", self.worker, repaired)
                if self._publish(head.version, self.progress, mode="repair"):
                    store.set_node_state(self.worker, recovered=repaired)
            elif store.store_urls([self.worker])[0] != store.snapshot_url:
                # this host keeps its own snapshots: carry the version over, then serve it here
                self._publish(head.version, self.progress, mode="seed")
            self._emit_lost_record(head.version)
        self.trainer.generator.manual_seed(
            self.ctx.config.seed * 1_000_003 + self.worker * 7919 + self.version
        )
        self.finished = self._reached_iterations()
        return self

    def _load_newest_intact(self, head: int) -> str | None:
        """Load the head version into the model; None when it is intact, else what was used."""
        ctx = self.ctx
        problem = ""
        for version in range(head, max(head - ctx.options.keep_versions, -1), -1):
            try:
                load_version(ctx.store, ctx.layout, self.layers, self.worker, version, self.model)
            except SnapshotError as exc:
                problem = problem or str(exc)
                continue
            return None if version == head else f"{problem}; resumed from version {version}"
        peers = self._peer_models()
        if peers:
            self.model.load_state_dict(average_states(peers))
            return f"{problem}; no intact kept version, re-seeded from {len(peers)} peers"
        self.model.load_state_dict(ctx.experiment.new_model().state_dict())
        return f"{problem}; no intact kept version or peer, restarted from the initial model"

    def _peer_models(self) -> list[dict[str, torch.Tensor]]:
        exp, out = self.ctx.experiment, []
        for peer in exp.topology.neighbours(self.worker):
            model = exp.new_model()
            with contextlib.suppress(SnapshotError):
                if load_head(self.ctx.store, self.ctx.layout, self.layers, peer, model):
                    out.append(model.state_dict())
        return out

    def _emit_lost_record(self, head: int) -> None:
        """A kill between publishing a version and emitting its record: emit it now (the record
        was published with the version; the state's k says whether it was emitted)."""
        store = self.ctx.store
        emitted = int(store.node_states([self.worker])[0].get("k", 0) or 0)
        raw = store.last_record(self.worker) if emitted < head else None
        record = parse_record(raw) if raw else None
        if isinstance(record, IterationRecord) and record.k == head - 1:
            store.emit(record, node_state={"state": "idle", "k": head, "version": head})

    def _reached_iterations(self) -> bool:
        limit = self.ctx.options.iterations
        return limit is not None and self.version >= limit

    # one iteration -------------------------------------------------------------------------------
    def iteration(self, enqueue_pull: EnqueuePull) -> IterationRecord:
        ctx, store, worker = self.ctx, self.ctx.store, self.worker
        k = self.version
        if self.network.probes and not self.probed_at_start:
            self._probe_at_start()
        now = time.time() - ctx.started_at
        view = self._view(now)
        rng = np.random.default_rng([ctx.config.seed, worker, k])
        plan = self.step.plan(view, rng)
        by_peer = plan.layers_by_peer()
        deadline = max(ctx.options.pull_deadline, 3 * plan.delay)
        emulated = self.network.emulated_bps(self.step, view, plan)
        if by_peer:
            wanted = {peer: tuple(layers) for peer, layers in by_peer.items()}
            enqueue_pull(PullRequest(store.run_id, worker, k, wanted, emulated), deadline)
        pull_started = time.monotonic()
        store.set_node_state(
            worker, state="training", k=k, pid=os.getpid(), host=socket.gethostname()
        )
        start = [read_layer(self.published, layer) for layer in self.layers]
        compute = self._train()
        if self.step.semantics.pull_sees is PullSees.TRAINED:
            self._publish_trained(k, deadline)
        remaining = deadline - (time.monotonic() - pull_started)
        fields = None
        if by_peer:
            store.set_node_state(worker, state="pulling")
            fields = store.mailbox.wait(worker, k, remaining)
        result = PullResult.from_fields(fields) if fields else None
        waited = time.monotonic() - pull_started
        self._average(plan, start, result)
        new_state = snapshot_state(self.model)
        progress = self.progress.after(new_state, self.published, self.layers)
        self.published = new_state
        record = IterationRecord(
            algo=ctx.config.algorithm,
            worker=worker,
            k=k,
            t=round(time.time() - ctx.started_at, 4),
            epoch=k + 1,
            loss=self.last_loss,
            plan={p: ls for p, ls in by_peer.items()} if result else {},
            bytes_pulled=float(result.nbytes if result else 0),
            pull_seconds=round(waited if by_peer else 0.0, 4),
            compute_seconds=round(compute, 4),
            peers_reachable=len(view.peers),
            links=self._links(by_peer, result, waited) if by_peer else None,
        )
        if not self._publish(k + 1, progress, record=to_json(record)):
            raise StaleNode(f"worker {worker}: version {k + 1} was published elsewhere")
        if (k + 1) % ctx.options.eval_every == 0 or self._reached_iterations():
            self.accuracy = self._evaluate()
        self.finished = self._reached_iterations()
        measured = result.speeds() if result else {}
        store.emit(
            record,
            links=self.network.estimates(self.known_links, measured),
            node_state=dict(
                state="finished" if self.finished else "idle",
                k=k + 1,
                version=self.version,
                loss=self.last_loss,
                acc=self.accuracy,
                last_pull={
                    "peers": len(by_peer),
                    "layers": int(plan.y.sum()),
                    "bytes": result.nbytes if result else 0,
                    "seconds": round(waited, 3),
                    "timeout": bool(by_peer) and result is None,
                    "errors": len(result.errors) if result else 0,
                },
                bandwidth=float(np.mean(view.bandwidth)) if len(view.peers) else None,
            ),
        )
        return record

    def _links(
        self, by_peer: dict[int, list[int]], result: PullResult | None, waited: float
    ) -> dict[int, list[float]]:
        """Peer → [bytes, seconds, start] of each transfer, in run time; a peer that brought
        nothing back (refused, or the whole pull timed out) as [0, seconds waited, asked at]."""
        began = self.ctx.started_at
        asked = round(time.time() - waited - began, 4)
        if result is None:
            return {p: [0.0, round(waited, 4), asked] for p in by_peer}
        links = {
            p: [float(t.nbytes), round(t.seconds, 4), round(t.started - began, 4)]
            for p, t in result.transfers.items()
        }
        return links | {p: [0.0, 0.0, asked] for p in by_peer if p not in links}

    def _view(self, now: float) -> WorkerView:
        """Peers with a head, a recent heartbeat and a link that is up; speeds from the network
        (measured estimates, or the emulated profile)."""
        ctx, exp = self.ctx, self.ctx.experiment
        neighbours = list(exp.topology.neighbours(self.worker))
        heads, states, known = ctx.store.peer_view(self.worker, neighbours)
        self.known_links = known
        wall = time.time()
        alive = [
            head
            for head, state in zip(heads, states, strict=True)
            if head is not None
            and wall - float(state.get("heartbeat", 0.0)) <= ctx.options.peer_timeout
            and len(head.progress) == len(self.layers)
        ]
        up = self.network.reachable(self.worker, [h.worker for h in alive], now)
        alive = [head for head, ok in zip(alive, up, strict=True) if ok]
        ids = [h.worker for h in alive]
        if self.network.probes and any(p not in known for p in ids):
            known = self.known_links = known | self._probe([p for p in ids if p not in known])
        bandwidth = self.network.speeds(self.worker, ids, now, known)
        return self.step.view(
            [
                PeerReport(h.worker, Progress(np.asarray(h.progress), np.asarray(h.total)), b)
                for h, b in zip(alive, bandwidth, strict=True)
            ]
        )

    # probed link speeds --------------------------------------------------------------------------
    def _probe_at_start(self) -> None:
        """The run's start-up round of probes, unless this worker took part in it already."""
        ctx = self.ctx
        if probe_state(ctx.store, self.worker) != DONE:
            neighbours = list(ctx.experiment.topology.neighbours(self.worker))
            deadline = ctx.started_at + ctx.options.probe_wait
            probes = probe_at_start(
                ctx.store, self.worker, ctx.config.workers, neighbours, deadline
            )
            self._record_probes(probes)
        self.probed_at_start = True

    def _probe(self, peers: list[int], retry_after: float = 5.0) -> dict[int, float]:
        """Probe peers seen for the first time (one whose probe failed: again after a while)."""
        now = time.monotonic()
        due = [p for p in peers if now - self.probe_tried.get(p, -math.inf) >= retry_after]
        probes = [p for p in (probe_peer(self.ctx.store, peer) for peer in due) if p is not None]
        self.probe_tried.update({p: now for p in due})
        return self._record_probes(probes)

    def _record_probes(self, probes: list[Probe]) -> dict[int, float]:
        """The estimates the worker plans with from now on, and a probe record for the trace."""
        if not probes:
            return {}
        began = self.ctx.started_at
        record = ProbeRecord(
            algo=self.ctx.config.algorithm,
            worker=self.worker,
            t=round(time.time() - began, 4),
            links={
                p.peer: [float(p.nbytes), p.seconds, round(p.started - began, 4)] for p in probes
            },
        )
        speeds = {p.peer: p.rate for p in probes}
        self.ctx.store.emit(record, links=speeds)
        return speeds

    def _train(self) -> float:
        started = time.monotonic()
        self.last_loss = self.trainer.train()
        self.network.stretch(self.worker, time.monotonic() - started)
        return time.monotonic() - started

    def _average(
        self, plan: Plan, start: list[dict[str, torch.Tensor]], result: PullResult | None
    ) -> None:
        """Mix the pulled sums into the model (the shared worker step); without a result the
        model keeps its local update."""
        if result is None:
            return
        counts = list(result.counts)
        sums: list[dict[str, torch.Tensor] | None] = []
        for l_idx, (count, blob) in enumerate(zip(counts, result.sums, strict=True)):
            if count and blob:
                tensors, _ = decode_tensors(
                    blob, self.ctx.layout[l_idx], {"run": self.ctx.store.run_id}
                )
                sums.append(tensors)
            else:
                sums.append(None)
                counts[l_idx] = 0
        state = self.model.state_dict()
        trained = [read_layer(state, layer) for layer in self.layers]
        mixed = self.step.mix(start, trained, sums, counts, plan.weighting)
        write_layers(self.model, self.layers, mixed)

    def _encode(self, state: dict[str, torch.Tensor], version: int) -> list[bytes]:
        ctx = self.ctx
        meta = {"run": ctx.store.run_id, "worker": self.worker, "version": version}
        return [
            encode_tensors(
                read_layer(state, layer),
                {**meta, "layer": l_idx},
                ctx.config.wire_dtype,
                ctx.config.compression,
            )
            for l_idx, layer in enumerate(self.layers)
        ]

    def _publish(
        self, version: int, progress: Progress, mode: str = "next", record: bytes = b""
    ) -> bool:
        ctx = self.ctx
        t = time.time() - ctx.started_at
        ok = ctx.store.publish(
            self.worker,
            version,
            self._encode(self.published, version),
            progress.last.tolist(),
            t,
            ctx.options.keep_versions,
            mode,
            total=progress.total.tolist(),
            record=record,
        )
        if ok:
            self.version, self.progress = version, progress
        return ok

    def _publish_trained(self, k: int, ttl: float) -> None:
        """pull_sees: trained — peers may read this iteration's trained model from now on."""
        blobs = self._encode(self.model.state_dict(), k)
        self.ctx.store.publish_trained(self.worker, k, blobs, ttl + self.ctx.options.pull_deadline)

    def _evaluate(self) -> float:
        test = self.ctx.experiment.data.test
        idx = eval_slice(self.worker, len(test), self.ctx.options.eval_samples)
        return round(evaluate(self.model, test.x[idx], test.y[idx]).accuracy, 4)
