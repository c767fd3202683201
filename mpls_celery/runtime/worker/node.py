"""One DFL worker's local iterations in the runtime (wall clock, Redis, Celery pull tasks).

Iteration k: read peers' heads → plan → enqueue the pull → train meanwhile (the receiver takes
the pull's result and averages it over the start beside the training) → wait for it (deadline) →
Eq. 1 → publish version k+1 (layers, then head, compare-and-set) → telemetry. The first three run
in the planner's thread as the step begins (the step depends on none of them): the view is read
when it was, at the iteration's start, and the pull is asked for while the node trains."""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import NamedTuple

import numpy as np
import torch

from mpls_celery.core.aggregate import average_states
from mpls_celery.core.divergence import check_finite
from mpls_celery.core.layering import copy_layers, read_layer, snapshot_state
from mpls_celery.core.semantics import PullSees
from mpls_celery.core.step import PeerReport, Progress, eval_slice
from mpls_celery.core.strategies import Plan, WorkerView, uses_rng
from mpls_celery.core.training import LocalTrainer, evaluate
from mpls_celery.errors import InvalidState, StaleNode, TelemetryError
from mpls_celery.runtime.state.decode import Head
from mpls_celery.runtime.worker.beside import Beside
from mpls_celery.runtime.worker.codec import encode_tensors, with_meta
from mpls_celery.runtime.worker.context import RunContext
from mpls_celery.runtime.worker.emulation import network_for
from mpls_celery.runtime.worker.messages import PullRequest, PullResult
from mpls_celery.runtime.worker.model_io import load_head, load_version
from mpls_celery.runtime.worker.probes import Probe, offer, probe_at_start, probe_peer, probe_stage
from mpls_celery.runtime.worker.publisher import Publisher
from mpls_celery.runtime.worker.receiver import Received, Receiver, decode_sums
from mpls_celery.runtime.worker.self_eval import SelfEvaluation
from mpls_celery.telemetry.records import (
    IterationRecord,
    ProbeRecord,
    parse_record,
    to_json,
    transfer_links,
)
from mpls_celery.telemetry.states import (
    LastPull,
    NodeFields,
    NodeState,
    ProbeStage,
    WorkerState,
)

log = logging.getLogger(__name__)
EnqueuePull = Callable[[PullRequest, float], None]  # the request and its deadline (s)
STATES_REFRESH = 1.0  # seconds between reads of the peers' states
UNUSED_RNG = np.random.default_rng(0)  # handed to a strategy that says it never draws


class Planned(NamedTuple):
    """What the planner hands back after the step."""

    view: WorkerView
    plan: Plan
    by_peer: dict[int, list[int]]  # peer → the layers asked of it
    deadline: float  # seconds the pull may take
    incoming: Future[Received | None] | None  # the receiver's result to come; None: no pull


class NodeRuntime:
    def __init__(self, ctx: RunContext, worker: int) -> None:
        self.ctx, self.worker = ctx, worker
        exp = ctx.experiment
        cfg = ctx.config
        self.model = exp.new_model()
        self.layers = exp.layers
        local = exp.local_data(worker)
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
        self.publisher = Publisher()
        self.planner = Beside("mpls-planner")  # views, plans and pull requests, one at a time
        self.receiver = Receiver()
        self.self_evaluation = SelfEvaluation(self._evaluate, self._report_accuracy)
        self._trained_blobs: tuple[int, list[bytes]] = (-1, [])  # the trained copy as published
        self._version_out: threading.Event | None = None  # the last version handed over
        self._said_training = False  # in this slice: the state written with a version says so
        self._scratch: torch.nn.Module | None = None  # for its own evaluations, in their thread
        self._live: dict[str, torch.Tensor] = {  # the model's own tensors, walked once
            key: tensor.detach() for key, tensor in self.model.state_dict(keep_vars=True).items()
        }
        self._states: list[NodeState] | None = None  # peers' states as last read
        self._states_read = 0.0

    # start / resume ----------------------------------------------------------------------------
    def resume(self) -> NodeRuntime:
        """Continue from the worker's head in Redis, or publish version 0 (the initial model).
        A head that cannot be read — corrupt layers, or a head that is no head or claims a
        version this worker never reached — is repaired from the newest intact kept version
        (else from the peers' models, else the initial model), and the repair is reported."""
        store = self.ctx.store
        if self.network.probes:
            offer(store, self.worker)
        recorded = store.nodes.state(self.worker).k
        raw = store.snapshots.raw_head(self.worker)
        try:
            head = None if raw is None else Head.parse(self.worker, raw)
            if head is not None:
                head.check_lead(recorded)
        except InvalidState as refused:
            store.nodes.count_refused(self.worker)
            self._reset_refused_head(raw or b"", recorded, str(refused))
        else:
            if head is None:
                self.published = snapshot_state(self.model)
                if not self._publish(0, self.progress):
                    return self.resume()
            else:
                self._resume_from(head)
        self.trainer.generator.manual_seed(
            self.ctx.config.seed * 1_000_003 + self.worker * 7919 + self.version
        )
        self.finished = self._reached_iterations()
        return self

    def _resume_from(self, head: Head) -> None:
        store = self.ctx.store
        self.version = head.version
        self.progress = Progress(np.asarray(head.progress), np.asarray(head.total))
        _, repaired = self._load_newest_intact(head.version)
        self.published = snapshot_state(self.model)
        if repaired:
            log.warning("worker %s: %s", self.worker, repaired)
            if self._publish(head.version, self.progress, mode="repair"):
                store.nodes.update(self.worker, recovered=repaired)
        elif store.snapshots.store_urls([self.worker])[0] != store.snapshots.snapshot_url:
            # this host keeps its own snapshots: carry the version over, then serve it here
            self._publish(head.version, self.progress, mode="seed")
        self._emit_lost_record(head.version)

    def _reset_refused_head(self, raw: bytes, recorded: int, problem: str) -> None:
        """The head is refused: go on from the newest intact version the worker really reached
        (at most one past what it recorded), and replace the head with it, compare-and-set on
        the refused bytes."""
        loaded, repaired = self._load_newest_intact(recorded + 1)
        version = recorded if loaded is None else loaded
        message = f"head refused ({problem}); " + (repaired or f"resumed from version {version}")
        log.warning("worker %s: %s", self.worker, message)
        self.published = snapshot_state(self.model)
        self.progress = Progress.zero(len(self.layers))
        if self._publish(version, self.progress, mode="reset", expected_head=raw):
            self.ctx.store.nodes.update(self.worker, recovered=message, version=version)

    def _load_newest_intact(self, head: int) -> tuple[int | None, str | None]:
        """Load the newest intact kept version up to `head` into the model: which one (None when
        none was intact), and what was done instead of loading `head` itself (None: nothing)."""
        ctx = self.ctx
        problem = ""
        for version in range(head, max(head - ctx.options.keep_versions, -1), -1):
            try:
                load_version(ctx.store, ctx.layout, self.layers, self.worker, version, self.model)
            except InvalidState as exc:
                problem = problem or str(exc)
                continue
            return (
                version,
                None if version == head else f"{problem}; resumed from version {version}",
            )
        peers = self._peer_models()
        if peers:
            self.model.load_state_dict(average_states(peers))
            return None, f"{problem}; no intact kept version, re-seeded from {len(peers)} peers"
        self.model.load_state_dict(ctx.experiment.new_model().state_dict())
        return None, f"{problem}; no intact kept version or peer, restarted from the initial model"

    def _peer_models(self) -> list[dict[str, torch.Tensor]]:
        exp, out = self.ctx.experiment, []
        for peer in exp.topology.neighbours(self.worker):
            model = exp.new_model()
            with contextlib.suppress(InvalidState):
                if load_head(self.ctx.store, self.ctx.layout, self.layers, peer, model):
                    out.append(model.state_dict())
        return out

    def _emit_lost_record(self, head: int) -> None:
        """A kill between publishing a version and emitting its record: emit it now (the record
        was published with the version; the state's k says whether it was emitted)."""
        store = self.ctx.store
        emitted = store.nodes.state(self.worker).k
        raw = store.snapshots.last_record(self.worker) if emitted < head else None
        try:
            record = parse_record(raw) if raw else None
        except TelemetryError:
            record = None
        if isinstance(record, IterationRecord) and record.k == head - 1:
            store.events.emit(record, state={"state": WorkerState.IDLE, "k": head, "version": head})

    def _reached_iterations(self) -> bool:
        limit = self.ctx.options.iterations
        return limit is not None and self.version >= limit

    # one iteration -------------------------------------------------------------------------------
    def iteration(self, enqueue_pull: EnqueuePull) -> IterationRecord:
        """One local iteration. Its writes (the trained copy, the new version, its record and
        state) go through the publisher, off the critical path; this returns once the version
        is computed, and the previous one is out."""
        ctx, store, worker = self.ctx, self.ctx.store, self.worker
        publisher = self.publisher
        publisher.raise_failure()
        k = self.version
        if self.network.probes and not self.probed_at_start:
            self._probe_at_start()
        now = time.time() - ctx.started_at
        start = [read_layer(self.published, layer) for layer in self.layers]
        planning = self.planner.submit(partial(self._plan_and_ask, enqueue_pull, k, now, start))
        pull_started = time.monotonic()
        if not self._said_training:  # after that, each version's state says it
            publisher.submit(store.nodes.update, worker, state=WorkerState.TRAINING, k=k)
            self._said_training = True
        compute = self._train()
        check_finite(worker, k, ctx.config.training.lr, self.last_loss)  # before it is published
        view, plan, by_peer, deadline, incoming = self._planned(planning)
        trained = None
        if self.step.semantics.pull_sees is PullSees.TRAINED:
            trained = self._snapshot()  # a copy: mixing changes the model next
            publisher.submit(self._publish_trained, k, trained, deadline)
        received = None if incoming is None else self._await_pull(incoming)
        waited = time.monotonic() - pull_started
        result = received.result if received else None
        mixed = self._mix_in(plan, start, received)
        mixed_layers = received.mixed_layers if received else [False] * len(self.layers)
        new_state = self._state_after(trained, mixed, mixed_layers)
        old_state = self.published
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
        publisher.wait(self._version_out)  # the previous version is out: one in flight at most
        self.version = k + 1
        self.finished = self._reached_iterations()
        evaluate = (k + 1) % ctx.options.eval_every == 0 or self.finished
        fields = partial(  # built in the publisher's thread, where they are written
            _node_fields, self.version, self.finished, self.last_loss, view, by_peer, result, waited
        )
        links = self.network.estimates(self.known_links, result.speeds() if result else {})
        if links:
            self.known_links = self.known_links | links  # what it stores, it keeps
        self._version_out = publisher.submit(
            self._publish_and_emit, record, new_state, old_state, fields, links, mixed_layers
        )
        if evaluate:
            self.self_evaluation.submit(new_state, last=self.finished)
        return record

    def _publish_and_emit(
        self,
        record: IterationRecord,
        state: dict[str, torch.Tensor],
        previous: dict[str, torch.Tensor],
        fields: Callable[[], NodeFields],
        links: dict[int, float] | None,
        mixed_layers: list[bool],
    ) -> None:
        """In the publisher's thread: the version's progress g (Eq. 5), version k + 1 with its
        record, then the record's telemetry (a kill in between is repaired by the next slice:
        _emit_lost_record). The layers that were not mixed are the trained copy's bytes."""
        version = record.k + 1
        progress = self.progress.after(state, previous, self.layers)
        check_finite(self.worker, record.k, self.ctx.config.training.lr, record.loss, progress.last)
        trained_k, trained_blobs = self._trained_blobs
        same = {
            i: trained_blobs[i]
            for i, was_mixed in enumerate(mixed_layers)
            if not was_mixed and trained_k == record.k
        }
        if not self._write_version(version, state, progress, record=to_json(record), same=same):
            raise StaleNode(f"worker {self.worker}: version {version} was published elsewhere")
        self.progress = progress
        self.ctx.store.events.emit(record, state=fields(), links=links)

    def flush(self) -> None:
        """Every write asked for is done (the end of a slice: the state says IDLE until the
        next slice trains); StaleNode if one failed."""
        if self._said_training and not self.finished:
            self.publisher.submit(self.ctx.store.nodes.update, self.worker, state=WorkerState.IDLE)
        self._said_training = False
        self.publisher.flush()
        self.self_evaluation.flush()

    def close(self) -> None:
        self.planner.close(wait=30.0)  # a pull it asks for has its receiver, before that closes
        self.receiver.close()
        self.publisher.close()
        self.self_evaluation.close()

    def _pull_result(self, fields: dict[str, bytes] | None) -> PullResult | None:
        """The mailbox's result; one that is not a pull result is refused (and counted)."""
        if not fields:
            return None
        try:
            return PullResult.from_fields(fields)
        except InvalidState as exc:
            log.warning("worker %s refused its pull result: %s", self.worker, exc)
            self.ctx.store.nodes.count_refused(self.worker)
            return None

    def _links(
        self, by_peer: dict[int, list[int]], result: PullResult | None, waited: float
    ) -> dict[int, list[float]]:
        """Peer → [bytes, seconds, start] of each transfer, in run time; a peer that brought
        nothing back (refused, or the whole pull timed out) as [0, seconds waited, asked at]."""
        began = self.ctx.started_at
        asked = time.time() - waited - began
        if result is None:
            return transfer_links((p, 0.0, waited, asked) for p in by_peer)
        links = transfer_links(
            (p, t.nbytes, t.seconds, t.started - began) for p, t in result.transfers.items()
        )
        return links | transfer_links((p, 0.0, 0.0, asked) for p in by_peer if p not in links)

    def _rng(self, k: int) -> np.random.Generator:
        """Iteration k's own generator (a slice that redoes k draws the same), seeded only for
        a strategy that draws from it."""
        if not uses_rng(self.step.strategy):
            return UNUSED_RNG
        return np.random.default_rng([self.ctx.config.seed, self.worker, k])

    def _view(self, now: float) -> WorkerView:
        """Peers with a valid head, a recent heartbeat and a link that is up; speeds from the
        network (measured estimates, or the emulated profile). A peer whose head is not valid is
        left out and counted."""
        ctx, exp = self.ctx, self.ctx.experiment
        neighbours = list(exp.topology.neighbours(self.worker))
        states = self._peer_states(neighbours)
        heads = ctx.store.snapshots.heads(neighbours)
        refused = sum(isinstance(h, InvalidState) for h in heads)
        if refused:
            ctx.store.nodes.count_refused(self.worker, refused)
        known = self.known_links
        wall = time.time()
        alive = [
            head
            for head, state in zip(heads, states, strict=True)
            if isinstance(head, Head)
            and _heard_within(state.silent_for(wall), ctx.options.peer_timeout)
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

    def _peer_states(self, neighbours: list[int]) -> list[NodeState]:
        """Peers' states (heartbeats, snapshot stores), read again every STATES_REFRESH s: a
        heartbeat a second old says as much as a fresh one against a 30 s timeout. The first
        read also brings this worker's stored link estimates; after that it keeps its own."""
        store, now = self.ctx.store, time.monotonic()
        if self._states is None or now - self._states_read > STATES_REFRESH:
            states, known = store.nodes.peers_and_links(self.worker, neighbours)
            for peer, state in zip(neighbours, states, strict=True):
                store.snapshots.remember(peer, state.store)
            if self._states is None:
                self.known_links = known
            self._states, self._states_read = states, now
        return self._states

    # probed link speeds --------------------------------------------------------------------------
    def _probe_at_start(self) -> None:
        """The run's start-up round of probes, unless this worker took part in it already."""
        ctx = self.ctx
        if probe_stage(ctx.store, self.worker) is not ProbeStage.DONE:
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
            links=transfer_links(
                ((p.peer, p.nbytes, p.seconds, p.started - began) for p in probes),
                exact_seconds=True,
            ),
        )
        speeds = {p.peer: p.rate for p in probes}
        self.ctx.store.events.emit(record, links=speeds)
        return speeds

    def _train(self) -> float:
        started = time.monotonic()
        self.last_loss = self.trainer.train(self.version)  # local iteration k = the version
        self.network.stretch(self.worker, time.monotonic() - started)
        return time.monotonic() - started

    def _plan_and_ask(
        self, enqueue_pull: EnqueuePull, k: int, now: float, start: list[dict[str, torch.Tensor]]
    ) -> Planned:
        """In the planner's thread, as the step begins: the view at the iteration's start, the
        plan, and the pull asked for."""
        view = self._view(now)
        plan = self.step.plan(view, self._rng(k))
        by_peer = plan.layers_by_peer()
        deadline = max(self.ctx.options.pull_deadline, 3 * plan.delay)
        incoming = None
        if by_peer:
            incoming = self._ask_pull(enqueue_pull, k, view, plan, by_peer, start, deadline)
        return Planned(view, plan, by_peer, deadline, incoming)

    def _planned(self, planning: Future[Planned]) -> Planned:
        """After the step: the planner's answer (what it raised, raised here)."""
        return planning.result()

    def _ask_pull(
        self,
        enqueue_pull: EnqueuePull,
        k: int,
        view: WorkerView,
        plan: Plan,
        by_peer: dict[int, list[int]],
        start: list[dict[str, torch.Tensor]],
        deadline: float,
    ) -> Future[Received | None]:
        """Enqueue the planned pull; the receiver takes its result beside the training."""
        wanted = {peer: tuple(layers) for peer, layers in by_peer.items()}
        emulated = self.network.emulated_bps(self.step, view, plan)
        enqueue_pull(PullRequest(self.ctx.store.run_id, self.worker, k, wanted, emulated), deadline)
        until = time.monotonic() + deadline
        return self.receiver.submit(lambda: self._receive(k, plan, start, until))

    def _receive(
        self, k: int, plan: Plan, start: list[dict[str, torch.Tensor]], until: float
    ) -> Received | None:
        """In the receiver's thread, while the node trains: the pull's result (None by the
        deadline), its sums decoded and averaged over the start where the mixing allows."""
        ctx = self.ctx
        fields = ctx.store.mailbox.wait(
            self.worker, k, until - time.monotonic(), self.receiver.stop
        )
        result = self._pull_result(fields)
        if result is None:
            return None
        device = ctx.experiment.device
        sums, counts = decode_sums(result, ctx.layout, ctx.store.run_id, device)
        return Received(result, sums, counts, self.step.premix(start, sums, counts, plan.weighting))

    def _await_pull(self, incoming: Future[Received | None]) -> Received | None:
        """After training: the receiver's result; the state says PULLING while it is not in."""
        if not incoming.done():
            self.publisher.submit(
                self.ctx.store.nodes.update, self.worker, state=WorkerState.PULLING
            )
        return incoming.result()

    def _mix_in(
        self, plan: Plan, start: list[dict[str, torch.Tensor]], received: Received | None
    ) -> list[dict[str, torch.Tensor]] | None:
        """Mix the pulled sums into the model (the shared worker step); without a result the
        model keeps its local update. The layers as mixed: tensors of their own, which the
        model now holds copies of (None without a result)."""
        if received is None:
            return None
        trained = [read_layer(self._live, layer) for layer in self.layers]
        mixed = self.step.mix(
            start, trained, received.sums, received.counts, plan.weighting, received.premixed
        )
        copy_layers(self._live, self.layers, mixed)
        return mixed

    def _state_after(
        self,
        trained: dict[str, torch.Tensor] | None,
        mixed: list[dict[str, torch.Tensor]] | None,
        mixed_layers: list[bool],
    ) -> dict[str, torch.Tensor]:
        """A copy of the model's state, for the new version: the trained copy when nothing was
        mixed in (a layer nothing was pulled for is the trained layer, bit for bit), else the
        mixed layers themselves where the model holds them unchanged (same dtype), without
        copying the model once more."""
        if trained is not None and not any(mixed_layers):
            return trained
        if mixed is None:
            return self._snapshot()
        own = {key: tensor for layer in mixed for key, tensor in layer.items()}
        return {
            key: own[key] if key in own and own[key].dtype == live.dtype else live.clone()
            for key, live in self._live.items()
        }

    def _encode(
        self, state: dict[str, torch.Tensor], version: int, same: dict[int, bytes] | None = None
    ) -> list[bytes]:
        """Each layer's blob; `same`: layers already encoded (another identity), re-headed."""
        ctx, same = self.ctx, same or {}
        meta = {"run": ctx.store.run_id, "worker": self.worker, "version": version}
        return [
            with_meta(same[l_idx], {**meta, "layer": l_idx})
            if l_idx in same
            else encode_tensors(
                read_layer(state, layer),
                {**meta, "layer": l_idx},
                ctx.config.wire_dtype,
                ctx.config.compression,
            )
            for l_idx, layer in enumerate(self.layers)
        ]

    def _publish(
        self, version: int, progress: Progress, mode: str = "next", expected_head: bytes = b""
    ) -> bool:
        """Publish `self.published` as `version` now (start-up and repairs)."""
        ok = self._write_version(version, self.published, progress, mode, b"", expected_head)
        if ok:
            self.version, self.progress = version, progress
        return ok

    def _write_version(
        self,
        version: int,
        state: dict[str, torch.Tensor],
        progress: Progress,
        mode: str = "next",
        record: bytes = b"",
        expected_head: bytes = b"",
        same: dict[int, bytes] | None = None,
    ) -> bool:
        ctx = self.ctx
        snapshots = ctx.store.snapshots
        ok = snapshots.publish(
            self.worker,
            version,
            self._encode(state, version, same),
            progress.last.tolist(),
            time.time() - ctx.started_at,
            ctx.options.keep_versions,
            mode,
            total=progress.total.tolist(),
            record=record,
            expected_head=expected_head,
        )
        if ok and snapshots.moved_here(self.worker):
            ctx.store.nodes.update(self.worker, store=snapshots.snapshot_url)
        return ok

    def _publish_trained(self, k: int, trained: dict[str, torch.Tensor], ttl: float) -> None:
        """pull_sees: trained — peers may read this iteration's trained model from now on."""
        blobs = self._encode(trained, k)
        self._trained_blobs = (k, blobs)
        snapshots = self.ctx.store.snapshots
        snapshots.publish_trained(self.worker, k, blobs, ttl + self.ctx.options.pull_deadline)

    def _evaluate(self, state: dict[str, torch.Tensor]) -> float:
        """On its own copy of the model (it runs beside training, in its own thread)."""
        exp = self.ctx.experiment
        if self._scratch is None:
            self._scratch = exp.new_model()
        self._scratch.load_state_dict(state)
        idx = eval_slice(self.worker, len(exp.test_data), self.ctx.options.eval_samples)
        return round(
            evaluate(self._scratch, exp.test_data.x[idx], exp.test_data.y[idx]).accuracy, 4
        )

    def _report_accuracy(self, accuracy: float) -> None:
        self.accuracy = accuracy
        self.ctx.store.nodes.update(self.worker, beat=False, acc=accuracy)  # not a sign of life

    def _snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of the model's state (snapshot_state, without walking the module tree)."""
        return {key: tensor.clone() for key, tensor in self._live.items()}


def _node_fields(
    version: int,
    finished: bool,
    loss: float,
    view: WorkerView,
    asked: dict[int, list[int]],
    result: PullResult | None,
    waited: float,
) -> NodeFields:
    """The state a node writes with version `version` (telemetry: the TUI's worker table)."""
    return {
        "state": WorkerState.FINISHED if finished else WorkerState.TRAINING,  # the next, at once
        "k": version,
        "version": version,
        "loss": loss,
        "last_pull": LastPull(
            peers=len(asked),
            layers=sum(len(layers) for layers in asked.values()),
            bytes=result.nbytes if result else 0,
            seconds=round(waited, 3),
            timeout=bool(asked) and result is None,
            errors=len(result.errors) if result else 0,
        ),
        "bandwidth": float(np.mean(view.bandwidth)) if len(view.peers) else None,
    }


def _heard_within(silence: float | None, seconds: float) -> bool:
    return silence is not None and silence <= seconds
