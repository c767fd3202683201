"""`mpls sim --replay RUN_DIR`: the recorded run's config, seed, partition and topology, with the
network and compute of its trace instead of a profile, so the simulator's prediction can be set
beside what really happened."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mpls_celery.config.run_config import RunConfig
from mpls_celery.core.link_model import MIN_MEASURED_BYTES, LinkSpeeds, blend_speeds
from mpls_celery.core.network_profile import Outage
from mpls_celery.core.recorded_network import ReplayNetwork
from mpls_celery.errors import ConfigError
from mpls_celery.telemetry.rundir import MANIFEST, read_json
from mpls_celery.telemetry.trace import Trace, read_trace

SMALL_TRANSFER_BYTES = 16 * 1024


@dataclass(frozen=True)
class RecordedRun:
    config: RunConfig
    trace: Trace
    target_acc: float | None
    eval_samples: int
    eval_interval: float | None
    link_speeds: LinkSpeeds  # how the run's workers estimated their links


def load_recorded_run(run_dir: Path) -> RecordedRun:
    """ConfigError (one line) for a directory that is not a finished runtime run."""
    if not (run_dir / MANIFEST).exists():
        raise ConfigError(f"{run_dir}: no run directory there (no {MANIFEST})")
    manifest = read_json(run_dir / MANIFEST)
    if manifest.get("kind") != "runtime":
        raise ConfigError(
            f"{run_dir}: --replay needs a run of `mpls up` (this one is {manifest.get('kind')!r})"
        )
    config = RunConfig.model_validate(manifest["config"])
    trace = read_trace(run_dir, config.workers)
    if not trace.iterations:
        raise ConfigError(f"{run_dir}: the run recorded no iterations to replay")
    options = manifest.get("options") or {}
    interval, target = manifest.get("eval_interval"), options.get("target_acc")
    return RecordedRun(
        config,
        trace,
        None if target is None else float(target),
        int(options.get("eval_samples") or 200),
        float(interval) if interval else None,
        LinkSpeeds(options.get("link_speeds") or LinkSpeeds.ACHIEVED),  # runs before probes
    )


def replay_network(
    trace: Trace, slot_seconds: float = 5.0, link_speeds: LinkSpeeds = LinkSpeeds.ACHIEVED
) -> ReplayNetwork:
    """Per slot: each link's measured rate (bytes over the seconds of its transfers that started
    in the slot, counting those big enough to measure it, as the runtime does, latency taken
    out), each worker's mean training time and overhead per iteration (means, so that time adds
    up as it did). Per link its latency; per puller the estimates it planned with; per worker
    when it began (start-up and probes take seconds of a real run)."""
    n = trace.workers
    slots = max(1, int(trace.duration // slot_seconds) + 1)
    latency = transfer_latency(trace)
    moved = np.zeros((slots, n, n))
    spent = np.zeros((slots, n, n))
    for x in trace.transfers:
        if x.nbytes < MIN_MEASURED_BYTES:
            continue
        s = min(int(max(x.start, 0.0) // slot_seconds), slots - 1)
        moved[s, x.puller, x.peer] += x.nbytes
        spent[s, x.puller, x.peer] += max(x.seconds - latency[x.puller, x.peer], 0.1 * x.seconds)
    with np.errstate(divide="ignore", invalid="ignore"):
        link_rate = np.where(spent > 0, moved / spent, np.nan)
        total = spent.sum(axis=0)
        base_rate = np.where(total > 0, moved.sum(axis=0) / total, np.nan)
    compute = np.full((slots, n), np.nan)
    overhead = np.full((slots, n), np.nan)
    grouped: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for it in trace.iterations:
        start = max(it.end - max(it.period, it.compute), 0.0)
        s = min(int(start // slot_seconds), slots - 1)
        grouped.setdefault((s, it.worker), []).append((it.compute, it.overhead))
    for (s, w), values in grouped.items():
        compute[s, w] = float(np.mean([c for c, _ in values]))
        overhead[s, w] = float(np.mean([o for _, o in values]))
    outages = tuple(Outage(a, b, start, end) for a, b, start, end in trace.outages)
    return ReplayNetwork(
        "replay", slot_seconds, link_rate, base_rate, compute, overhead, latency,
        estimator_history(trace, link_speeds), outages, trace.first_starts(),
    )  # fmt: skip


def estimator_history(
    trace: Trace, link_speeds: LinkSpeeds = LinkSpeeds.ACHIEVED
) -> tuple[tuple[np.ndarray, tuple[dict[int, float], ...]], ...]:
    """Per puller, its link-speed estimates after each of its probes (`probed`), or after each
    of its measured transfers, by the runtime's own estimator (`blend_speeds`, `achieved`)."""
    probed = link_speeds is LinkSpeeds.PROBED
    out = []
    for puller in range(trace.workers):
        measured = sorted(
            (x.start + x.seconds, x.peer, x.rate)
            for x in (trace.probes if probed else trace.transfers)
            if x.puller == puller and x.seconds > 0 and (probed or x.nbytes >= MIN_MEASURED_BYTES)
        )
        known: dict[int, float] = {}
        times, values = [], []
        for done, peer, rate in measured:
            known = (
                {**known, peer: rate} if probed else {**known, **blend_speeds(known, {peer: rate})}
            )
            times.append(done)
            values.append(known)
        out.append((np.array(times, dtype=np.float64), tuple(values)))
    return tuple(out)


def transfer_latency(trace: Trace) -> np.ndarray:
    """(N, N) seconds a transfer over each link takes besides its bytes: the median time of its
    transfers too small to be about bandwidth (< 16 kB: round trips and queues), else of the
    sender's, else of all; 0 when the run had none (e.g. whole-model pulls only, whose measured
    rate then already includes it)."""
    small = [x for x in trace.transfers if x.nbytes < SMALL_TRANSFER_BYTES]
    overall = float(np.median([x.seconds for x in small])) if small else 0.0
    out = np.full((trace.workers, trace.workers), overall)
    by_sender: dict[int, list[float]] = {}
    by_link: dict[tuple[int, int], list[float]] = {}
    for x in small:
        by_sender.setdefault(x.peer, []).append(x.seconds)
        by_link.setdefault((x.puller, x.peer), []).append(x.seconds)
    for peer, values in by_sender.items():
        out[:, peer] = float(np.median(values))
    for (puller, peer), values in by_link.items():
        if len(values) >= 3:
            out[puller, peer] = float(np.median(values))
    return out
