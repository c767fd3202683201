"""Runtime benchmark on this machine (embedded Redis, local Celery workers):

- orchestration share: the part of a LeNet-5 iteration outside the window from its pull's request
  to its result, which holds the training and (run by the node's planner beside it) the view, the
  plan and the enqueue: mixing, the publish hand-off, telemetry — goal <= 10 % at 6 workers;
- Redis memory: snapshot keys versus the bound (K + 1) × model bytes × N, and used_memory;
- memory of the local worker processes (PSS/RSS) — e.g. for `--workers 30`.

Run: .venv/bin/python scripts/bench_runtime.py --workers 6 --iterations 100 [--json]"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil

from mpls_celery.config.run_config import RunConfig
from mpls_celery.runtime.launcher import Snapshot, UpRequest
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.up import run_up
from mpls_celery.settings import Settings
from mpls_celery.telemetry.records import IterationRecord
from mpls_celery.telemetry.rundir import read_metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mpls-bench-"))
    cfg = RunConfig().with_overrides(
        workers=args.workers, model=args.model, dataset="digits", **{"training.lr": 0.1}
    )
    opts = RuntimeOptions(iterations=args.iterations)
    settings = Settings(runs_dir=tmp / "runs", state_dir=tmp / "state")
    request = UpRequest(cfg, opts, settings)
    samples: dict[str, list[float]] = {
        "snapshot_bytes": [],
        "used_memory": [],
        "pss": [],
        "rss": [],
    }
    started = time.monotonic()
    summary = run_up(request, on_poll=_sampler(request, samples))
    wall = time.monotonic() - started
    run_dir = Path(summary["run_dir"])
    by_worker: dict[int, list[IterationRecord]] = {}
    for r in read_metrics(run_dir):
        if isinstance(r, IterationRecord):
            by_worker.setdefault(r.worker, []).append(r)
    shares, iteration_s = [], []
    for records in by_worker.values():
        for prev, cur in itertools.pairwise(records):
            duration = cur.t - prev.t
            if duration > 0:
                waited = cur.pull_seconds if cur.pull_seconds > 0 else cur.compute_seconds
                shares.append(max(0.0, duration - waited) / duration)
                iteration_s.append(duration)
    model_bytes = _model_bytes(cfg)
    bound = (opts.keep_versions + 1) * model_bytes * args.workers
    result = {
        "workers": args.workers,
        "iterations": args.iterations,
        "wall_seconds": round(wall, 1),
        "median_iteration_s": statistics.median(iteration_s),
        "orchestration_share_median": statistics.median(shares),
        "orchestration_share_mean": statistics.fmean(shares),
        "snapshot_bytes_max": max(samples["snapshot_bytes"], default=0),
        "snapshot_bound_bytes": bound,
        "snapshot_over_bound": max(samples["snapshot_bytes"], default=0) / bound,
        "redis_used_memory_max_mb": max(samples["used_memory"], default=0) / 1e6,
        "workers_pss_max_mb": max(samples["pss"], default=0) / 1e6,
        "workers_rss_max_mb": max(samples["rss"], default=0) / 1e6,
        "final_mean_acc": summary["final_mean_acc"],
    }
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        for key, value in result.items():
            print(f"{key:32s} {value:.4g}" if isinstance(value, float) else f"{key:32s} {value}")


def _model_bytes(cfg: RunConfig) -> float:
    from mpls_celery.core.layering import layer_bytes, model_layers
    from mpls_celery.core.models import BUILTIN_MODELS, build_model

    model = build_model(BUILTIN_MODELS[cfg.model], (1, 28, 28), 10)
    return float(layer_bytes(model.state_dict(), model_layers(model)).sum())


def _sampler(request: UpRequest, samples: dict[str, list[float]]):  # type: ignore[no-untyped-def]
    import redis

    from mpls_celery.runtime.keys import RunKeys
    from mpls_celery.runtime.launch.local_runs import find

    state: dict[str, Any] = {}

    def sample(snap: Snapshot) -> None:
        if "client" not in state:
            local = find(request.settings, request.run_id)
            if not local:
                return
            state["client"] = redis.Redis.from_url(local.redis_url)
        client = state["client"]
        everything = RunKeys(snap.run_id).everything
        keys = [k for k in client.scan_iter(match=everything, count=2000) if b":layer:" in k]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.strlen(key)
        samples["snapshot_bytes"].append(float(sum(pipe.execute())))
        samples["used_memory"].append(float(client.info("memory")["used_memory"]))
        pss = rss = 0.0
        for proc in psutil.Process().children(recursive=True):
            try:
                info = proc.memory_full_info()
                pss += getattr(info, "pss", info.rss)
                rss += info.rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        samples["pss"].append(pss)
        samples["rss"].append(rss)

    return sample


if __name__ == "__main__":
    main()
