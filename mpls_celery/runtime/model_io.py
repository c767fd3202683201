"""Read one published version of a worker into a model: shared by a resuming node and by the
launcher's evaluation."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from mpls_celery.core.layering import Layer, write_layer
from mpls_celery.errors import SnapshotError
from mpls_celery.runtime.codec import decode_tensors
from mpls_celery.runtime.layout import Layout
from mpls_celery.runtime.store import RunStore


def load_version(
    store: RunStore,
    layout: Layout,
    layers: Sequence[Layer],
    worker: int,
    version: int,
    model: nn.Module,
) -> None:
    """Every layer of `version`, verified, written into `model`; SnapshotError if any is missing."""
    blobs = store.fetch_layers(worker, version, list(range(len(layers))))
    for l_idx, blob in enumerate(blobs):
        if blob is None:
            raise SnapshotError(f"worker {worker} version {version} lacks layer {l_idx}")
        meta = {"run": store.run_id, "worker": worker, "layer": l_idx, "version": version}
        tensors, _ = decode_tensors(blob, layout[l_idx], meta)
        write_layer(model, layers[l_idx], tensors)
