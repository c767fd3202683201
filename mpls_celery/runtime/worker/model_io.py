"""Read a worker's published model: one given version (a resuming node) or its current head
and that very version's layers in one consistent read (the launcher's evaluation)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mpls_celery.core.layering import Layer, write_layer
from mpls_celery.errors import SnapshotError
from mpls_celery.runtime.state.decode import Head
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.codec import decode_tensors
from mpls_celery.runtime.worker.layout import Layout


def load_version(
    store: RunStore,
    layout: Layout,
    layers: Sequence[Layer],
    worker: int,
    version: int,
    model: nn.Module,
) -> None:
    """Every layer of `version`, verified, written into `model`; SnapshotError if any is missing."""
    blobs = store.snapshots.fetch_layers(worker, version, list(range(len(layers))))
    _write_verified(store.run_id, layout, layers, worker, version, blobs, model)


def load_head(
    store: RunStore, layout: Layout, layers: Sequence[Layer], worker: int, model: nn.Module
) -> Head | None:
    """The worker's current head, and its layers written into `model`, read together in one
    round trip (so collection of an older version can never split them). None when nothing is
    published yet; InvalidState (SnapshotError for the layers) when what is there cannot be read."""
    head, blobs = store.snapshots.latest_layers(worker, list(range(len(layers))), trained=False)
    if head is None:
        return None
    _write_verified(store.run_id, layout, layers, worker, head.version, blobs, model)
    return head


def _write_verified(
    run_id: str,
    layout: Layout,
    layers: Sequence[Layer],
    worker: int,
    version: int,
    blobs: Sequence[bytes | None],
    model: nn.Module,
) -> None:
    for l_idx, blob in enumerate(blobs):
        if blob is None:
            raise SnapshotError(f"worker {worker} version {version} lacks layer {l_idx}")
        meta = {"run": run_id, "worker": worker, "layer": l_idx, "version": version}
        tensors, _ = decode_tensors(blob, layout[l_idx], meta)
        write_layer(model, layers[l_idx], tensors)
