"""The aggregation task's work: fetch exactly the planned layers from each peer's latest published
version (peers in parallel, one peer's layers in one round trip), verify them, optionally delay
each peer by bytes / emulated speed, measure real speed, and store per-layer sums and counts."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch

from mpls_celery.core.aggregate import stack_copies
from mpls_celery.errors import InvalidState, PeerUnavailable
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.codec import decode_tensors, encode_tensors
from mpls_celery.runtime.worker.layout import Layout
from mpls_celery.runtime.worker.messages import PullRequest, PullResult, Transfer

log = logging.getLogger(__name__)
RESULT_TTL = 120.0


@dataclass
class PeerPull:
    peer: int
    version: int | None = None
    layers: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    nbytes: int = 0
    seconds: float = 0.0
    error: str | None = None
    started: float = field(default_factory=time.time)


def pull_from_peer(
    store: RunStore, layout: Layout, peer: int, layers: list[int], emulated_bps: float | None
) -> PeerPull:
    started = time.monotonic()
    result = PeerPull(peer)
    try:
        head, blobs = store.snapshots.latest_layers(peer, layers)
        fetched = time.monotonic() - started  # the link's time; decoding below is this host's CPU
        if head is None:
            raise PeerUnavailable(f"peer {peer} has published nothing")
        result.version = head.version
        for l_idx, blob in zip(layers, blobs, strict=True):
            if blob is None:
                raise PeerUnavailable(f"peer {peer} version {head.version} was collected")
            result.nbytes += len(blob)
            meta = {"run": store.run_id, "worker": peer, "layer": l_idx, "version": head.version}
            tensors, _ = decode_tensors(blob, layout[l_idx], meta)
            result.layers[l_idx] = tensors
    except (PeerUnavailable, InvalidState) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.layers.clear()
        log.warning("pull from peer %s refused: %s", peer, exc)
    else:
        if emulated_bps and result.nbytes:
            time.sleep(max(0.0, result.nbytes / emulated_bps - (time.monotonic() - started)))
            fetched = max(fetched, result.nbytes / emulated_bps)
        result.seconds = fetched
    return result


def run_aggregation(store: RunStore, layout: Layout, request: PullRequest) -> PullResult:
    """Idempotent: the same request rewrites the same keys (the result of (worker, k))."""
    started = time.monotonic()
    emulated = request.emulated_bps or {}
    with ThreadPoolExecutor(max_workers=max(1, len(request.plan))) as pool:
        futures = [
            pool.submit(pull_from_peer, store, layout, peer, list(layers), emulated.get(peer))
            for peer, layers in request.plan.items()
        ]
        pulls = [f.result() for f in futures]
    copies: list[list[dict[str, torch.Tensor]]] = [[] for _ in layout]
    for pull in pulls:
        for l_idx, tensors in pull.layers.items():
            copies[l_idx].append(tensors)
    sums: list[bytes | None] = []
    counts = []
    for layer_copies in copies:
        total, count = stack_copies(layer_copies)
        counts.append(count)
        meta = {"run": store.run_id, "sum_of": count}
        # the sums stay on the puller's host (its mailbox): compressing them saves no link
        sums.append(None if total is None else encode_tensors(total, meta, "float32", "none"))
    result = PullResult(  # the puller folds their speeds into its link estimates (not emulated)
        counts=tuple(counts),
        sums=tuple(sums),
        versions={p.peer: p.version for p in pulls},
        errors={p.peer: p.error for p in pulls if p.error},
        nbytes=sum(p.nbytes for p in pulls),
        transfers={
            p.peer: Transfer(p.nbytes, p.seconds, p.started)
            for p in pulls
            if p.nbytes and not p.error
        },
        seconds=time.monotonic() - started,
    )
    store.mailbox.put(request.worker, request.k, result.to_fields(), RESULT_TTL)
    return result
