"""`mpls profile fit RUN_DIR`: a reusable network profile (the `links` YAML kind) fitted to a run's
trace, so a measured testbed can be simulated and shared like the shipped profiles.

Per link, its rate is the median of the speeds its transfers measured (both directions pooled:
profiles are symmetric); a link that carried nothing big enough to measure gets the median link.
Compute speed is relative throughput (the fastest worker's median training time over this
worker's); the fastest worker's time per local step becomes the model's `step_seconds`. Noise is
the spread of log speed around each link's median; the outage probability is the share of planned
transfers that brought nothing back."""

from __future__ import annotations

from typing import Any

import numpy as np

from mpls_celery.config.profiles import LinksFile
from mpls_celery.core.link_model import MIN_MEASURED_BYTES
from mpls_celery.core.network_profile import MBIT
from mpls_celery.errors import ConfigError
from mpls_celery.telemetry.trace import Trace


def fit_profile(trace: Trace, name: str, model: str, local_steps: int) -> dict[str, Any]:
    """The profile as a YAML-ready mapping (validated as a `links` profile)."""
    n = trace.workers
    speeds: dict[tuple[int, int], list[float]] = {}
    for x in trace.transfers:
        if x.nbytes >= MIN_MEASURED_BYTES and x.seconds > 0:
            key = (min(x.puller, x.peer), max(x.puller, x.peer))
            speeds.setdefault(key, []).append(x.rate)
    if not speeds:
        raise ConfigError("the trace has no transfer big enough to measure a link")
    rates = {key: float(np.median(v)) for key, v in speeds.items()}
    default = float(np.median(list(rates.values())))
    compute = _compute_speeds(trace)
    fastest = float(np.nanmin(compute)) if np.isfinite(compute).any() else 0.0
    relative = np.where(np.isfinite(compute), fastest / compute, 1.0) if fastest > 0 else None
    spread = [np.log(s / rates[key]) for key, v in speeds.items() for s in v]
    planned = len(trace.transfers) + len(trace.outages)
    profile = {
        "name": name,
        "kind": "links",
        "workers": n,
        "default_mbit": round(default / MBIT, 4),
        "links": [[a, b, round(r / MBIT, 4)] for (a, b), r in sorted(rates.items())],
        "compute": [1.0] * n if relative is None else [round(float(c), 4) for c in relative],
        "dynamics": {
            "noise_sigma": round(float(np.std(spread)), 4),
            "slot_seconds": 1.0,
            "outage_prob": round(len(trace.outages) / planned, 4) if planned else 0.0,
        },
        "step_seconds": {model: round(fastest / max(local_steps, 1), 6)} if fastest > 0 else {},
    }
    LinksFile.model_validate(profile)  # what we write, we can read back
    return profile


def _compute_speeds(trace: Trace) -> np.ndarray:
    """(N,) median training seconds per iteration; NaN for a worker that never trained."""
    out = np.full(trace.workers, np.nan)
    for w in range(trace.workers):
        values = [i.compute for i in trace.iterations if i.worker == w and i.compute > 0]
        if values:
            out[w] = float(np.median(values))
    return out
