"""Soak (not a test): many workers for many iterations on the embedded Redis, sampling Redis memory
and worker memory over time. Flat series, no lost versions and few retries are the goal.

Run: .venv/bin/python scripts/soak.py --workers 30 --iterations 1000 [--json]"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import orjson

from mpls_celery.config.run_config import RunConfig
from mpls_celery.runtime.launcher import Snapshot, UpRequest
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.up import run_up
from mpls_celery.settings import Settings
from mpls_celery.telemetry.records import IterationRecord
from mpls_celery.telemetry.rundir import read_metrics
from scripts.bench_runtime import _sampler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=30)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mpls-soak-"))
    cfg = RunConfig().with_overrides(
        workers=args.workers, model="mlp", dataset="digits", **{"training.lr": 0.1}
    )
    request = UpRequest(
        cfg,
        RuntimeOptions(iterations=args.iterations),
        Settings(runs_dir=tmp / "runs", state_dir=tmp / "state"),
    )
    samples: dict[str, list[float]] = {
        "snapshot_bytes": [],
        "used_memory": [],
        "pss": [],
        "rss": [],
    }
    times: list[float] = []
    sample = _sampler(request, samples)
    started = time.monotonic()

    def on_poll(snap: Snapshot) -> None:
        if not times or time.monotonic() - started - times[-1] >= 10:
            sample(snap)
            times.append(time.monotonic() - started)

    summary = run_up(request, on_poll=on_poll)
    run_dir = Path(summary["run_dir"])
    seen: dict[int, set[int]] = {}
    for r in read_metrics(run_dir):
        if isinstance(r, IterationRecord):
            seen.setdefault(r.worker, set()).add(r.k)
    logs = "".join(p.read_text(errors="replace") for p in (run_dir / "logs").glob("*.log"))
    n = min(len(times), len(samples["used_memory"]))
    third = max(1, n // 3)
    result = {
        "workers": args.workers,
        "iterations": args.iterations,
        "wall_seconds": round(time.monotonic() - started, 1),
        "final_iterations": sorted({w["iteration"] for w in summary["workers"]}),
        "versions_lost": sum(args.iterations - len(ks) for ks in seen.values())
        + args.workers
        - len(seen),
        "tasks_retried": len(re.findall(r"Retry in|retry: Retry", logs)),
        # the middle third against the last: start-up (first publishes, data loading) excluded
        "redis_used_mb_middle_third": max(samples["used_memory"][third:-third], default=0) / 1e6,
        "redis_used_mb_last_third": max(samples["used_memory"][-third:], default=0) / 1e6,
        "workers_pss_mb_middle_third": max(samples["pss"][third:-third], default=0) / 1e6,
        "workers_pss_mb_last_third": max(samples["pss"][-third:], default=0) / 1e6,
        "series": {"t": times[:n], **{k: v[:n] for k, v in samples.items()}},
        "final_mean_acc": summary["final_mean_acc"],
    }
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        for key, value in result.items():
            if key != "series":
                print(f"{key:28s} {value}")


if __name__ == "__main__":
    main()
