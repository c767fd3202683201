"""The aggregation task's work: fetch exactly the planned layers from each peer's latest published
version (peers in parallel, one peer's layers in one round trip), verify them, optionally delay
each peer by bytes / emulated speed, measure real speed, and store per-layer sums and counts."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson
import torch

from mpls_celery.core.aggregate import stack_copies
from mpls_celery.errors import PeerUnavailable, SnapshotError
from mpls_celery.runtime.codec import decode_tensors, encode_tensors
from mpls_celery.runtime.layout import Layout
from mpls_celery.runtime.store import RunStore

log = logging.getLogger(__name__)
RESULT_TTL = 120.0
# A smaller transfer is dominated by round-trip time and by a shaper's burst allowance, so it says
# little about bandwidth (a slow link can look fast); it leaves the link estimate as it was.
MIN_MEASURED_BYTES = 64 * 1024


@dataclass
class PeerPull:
    peer: int
    version: int | None = None
    layers: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    nbytes: int = 0
    seconds: float = 0.0
    error: str | None = None


def pull_from_peer(
    store: RunStore, layout: Layout, peer: int, layers: list[int], emulated_bps: float | None
) -> PeerPull:
    started = time.monotonic()
    result = PeerPull(peer)
    try:
        head, blobs = store.latest_layers(peer, layers)
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
    except (PeerUnavailable, SnapshotError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        result.layers.clear()
        log.warning("pull from peer %s refused: %s", peer, exc)
    fetched = time.monotonic() - started
    if emulated_bps and result.nbytes:
        time.sleep(max(0.0, result.nbytes / emulated_bps - fetched))
    result.seconds = time.monotonic() - started
    return result


def run_aggregation(
    store: RunStore,
    layout: Layout,
    worker: int,
    k: int,
    plan: dict[int, list[int]],
    emulated: dict[int, float] | None,
) -> dict[str, object]:
    """Idempotent: the same inputs rewrite the same keys (the result of (worker, k))."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, len(plan))) as pool:
        futures = [
            pool.submit(pull_from_peer, store, layout, peer, layers, (emulated or {}).get(peer))
            for peer, layers in plan.items()
        ]
        pulls = [f.result() for f in futures]
    copies: list[list[dict[str, torch.Tensor]]] = [[] for _ in layout]
    for pull in pulls:
        for l_idx, tensors in pull.layers.items():
            copies[l_idx].append(tensors)
    fields: dict[str, bytes] = {}
    counts = []
    for l_idx, layer_copies in enumerate(copies):
        total, count = stack_copies(layer_copies)
        counts.append(count)
        if total is not None:
            fields[f"l{l_idx}"] = encode_tensors(total, {"run": store.run_id, "sum_of": count})
    measured = {
        p.peer: p.nbytes / p.seconds
        for p in pulls
        if p.nbytes >= MIN_MEASURED_BYTES and p.seconds > 0
    }
    meta = {  # the puller folds "speeds" into its link estimates (not under emulation)
        "counts": counts,
        "versions": {str(p.peer): p.version for p in pulls},
        "errors": {str(p.peer): p.error for p in pulls if p.error},
        "bytes": sum(p.nbytes for p in pulls),
        "speeds": {str(p): s for p, s in measured.items()},
        "seconds": time.monotonic() - started,
    }
    fields["meta"] = orjson.dumps(meta)
    store.put_pull_result(worker, k, fields, RESULT_TTL)
    return meta
