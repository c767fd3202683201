"""PNG plots with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mpls_celery.telemetry.pulls import pull_counts
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record

Runs = dict[str, list[Record]]  # label ("run/algo") → its records


def accuracy_plot(runs: Runs, out: Path, x_axis: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, records in runs.items():
        evals = [r for r in records if isinstance(r, EvalRecord)]
        xs = [e.t if x_axis == "time" else e.epoch for e in evals]
        ax.plot(xs, [100 * e.mean_acc for e in evals], label=label)
    ax.set_xlabel("time (s)" if x_axis == "time" else "epoch T (iterations over all workers)")
    ax.set_ylabel("mean test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    path = out / f"accuracy_vs_{x_axis}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def bytes_plot(runs: Runs, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.8 / max(len(runs), 1)
    for n, (label, records) in enumerate(runs.items()):
        per_worker: dict[int, float] = {}
        for r in records:
            if isinstance(r, IterationRecord):
                per_worker[r.worker] = per_worker.get(r.worker, 0.0) + r.bytes_pulled
        workers = sorted(per_worker)
        ax.bar(
            np.array(workers) + n * width,
            [per_worker[w] / 1e6 for w in workers],
            width=width,
            label=label,
        )
    ax.set_xlabel("worker")
    ax.set_ylabel("bytes pulled (MB)")
    ax.legend()
    path = out / "bytes_per_worker.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pull_frequency(records: Sequence[Record], worker: int) -> tuple[list[int], np.ndarray]:
    """(peers, matrix peers × layers): how often worker pulled layer l from each peer."""
    peers, counts = pull_counts(records, worker)
    return peers, np.array(counts, dtype=float).reshape(len(peers), -1)


def heatmap_plot(label: str, records: Sequence[Record], worker: int, out: Path) -> Path:
    peers, matrix = pull_frequency(records, worker)
    fig, ax = plt.subplots(figsize=(6, max(3, 0.25 * len(peers) + 1.5)))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(peers)), [str(p) for p in peers])
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_xlabel("layer")
    ax.set_ylabel("peer")
    ax.set_title(f"{label}: layers pulled by worker {worker}")
    fig.colorbar(image, ax=ax, label="times pulled")
    safe = label.replace("/", "_")
    path = out / f"heatmap_{safe}_worker{worker}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
