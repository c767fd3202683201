"""Who sent which layers: the peer × layer pull counts of one worker (report heatmap, TUI)."""

from __future__ import annotations

from collections.abc import Iterable

from mpls_celery.telemetry.records import IterationRecord, Record


def pull_counts(
    records: Iterable[Record], worker: int | None = None
) -> tuple[list[int], list[list[int]]]:
    """(peers, counts[peer][layer]) over the iteration records of `worker` (all when None)."""
    counts: dict[int, dict[int, int]] = {}
    n_layers = 0
    for record in records:
        if not isinstance(record, IterationRecord) or (
            worker is not None and record.worker != worker
        ):
            continue
        for peer, layers in record.plan.items():
            row = counts.setdefault(peer, {})
            for layer in layers:
                row[layer] = row.get(layer, 0) + 1
                n_layers = max(n_layers, layer + 1)
    peers = sorted(counts)
    return peers, [[counts[p].get(layer, 0) for layer in range(n_layers)] for p in peers]
