"""PNG plots with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from mpls_celery.telemetry.link_traffic import link_traffic, sender_utilisation
from mpls_celery.telemetry.pulls import pull_counts
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record

Runs = dict[str, list[Record]]  # label ("run/algo") → its records


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


LINESTYLES = ("-", "--", ":", "-.")


def line_styles(labels: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One colour per algorithm (the part after "/"), one line style per run of it: a comparison
    of several seeds stays readable past matplotlib's ten default colours."""
    tab10 = plt.get_cmap("tab10")
    palette = [tab10(i) for i in range(10)]
    colours: dict[str, Any] = {}
    seen: dict[str, int] = {}
    styles: dict[str, dict[str, Any]] = {}
    for label in labels:
        algo = label.rsplit("/", 1)[-1]
        colour = colours.setdefault(algo, palette[len(colours) % len(palette)])
        nth = seen[algo] = seen.get(algo, -1) + 1
        styles[label] = {"color": colour, "linestyle": LINESTYLES[nth % len(LINESTYLES)]}
    return styles


def accuracy_plot(runs: Runs, out: Path, x_axis: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = line_styles(list(runs))
    for label, records in runs.items():
        evals = [r for r in records if isinstance(r, EvalRecord)]
        xs = [e.t if x_axis == "time" else e.epoch for e in evals]
        ax.plot(xs, [100 * e.mean_acc for e in evals], label=label, **styles[label])
    ax.set_xlabel("time (s)" if x_axis == "time" else "epoch T (iterations over all workers)")
    ax.set_ylabel("mean test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out / f"accuracy_vs_{x_axis}.png")


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
    return _save(fig, out / "bytes_per_worker.png")


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
    return _save(fig, out / f"heatmap_{label.replace('/', '_')}_worker{worker}.png")


def link_matrix_plot(label: str, records: Sequence[Record], out: Path) -> Path | None:
    """Puller × peer: MB pulled over each link, and its measured Mbit/s (runtime runs only)."""
    links = link_traffic(records)
    if not links:
        return None
    workers = sorted({x for link in links for x in (link.puller, link.peer)})
    index = {w: n for n, w in enumerate(workers)}
    mb = np.full((len(workers), len(workers)), np.nan)
    mbit = np.full_like(mb, np.nan)
    for link in links:
        mb[index[link.puller], index[link.peer]] = link.bytes / 1e6
        mbit[index[link.puller], index[link.peer]] = link.mbit if link.mbit is not None else np.nan
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, matrix, title, unit in (
        (axes[0], mb, "MB pulled", "MB"),
        (axes[1], mbit, "measured speed", "Mbit/s"),
    ):
        image = ax.imshow(matrix, cmap="viridis")
        ax.set_xticks(range(len(workers)), [str(w) for w in workers])
        ax.set_yticks(range(len(workers)), [str(w) for w in workers])
        ax.set_xlabel("peer (sender)")
        ax.set_ylabel("puller")
        ax.set_title(f"{label}: {title}")
        fig.colorbar(image, ax=ax, label=unit)
    return _save(fig, out / f"links_{label.replace('/', '_')}.png")


def link_utilisation_plot(label: str, records: Sequence[Record], out: Path) -> Path | None:
    """Mbit/s each worker's link sent over time (transfers spread over their durations)."""
    edges, sent = sender_utilisation(records, bin_seconds=2.0)
    if not sent:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for peer, rate in sent.items():
        ax.plot(edges, rate, label=f"worker {peer}")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("sent (Mbit/s, 2 s bins)")
    ax.set_title(f"{label}: link utilisation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    return _save(fig, out / f"link_utilisation_{label.replace('/', '_')}.png")
