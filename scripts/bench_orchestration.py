"""Orchestration benchmark: the same node iterations with and without Celery.

Same embedded Redis, same model (LeNet-5 on digits), same 6 workers, same seed; the node
iterations run round-robin in this process both times. The baseline runs each iteration's pull
inline (the aggregation function in a thread, no broker); the other sends it as a Celery task to a
real `celery worker` (thread pool, as `mpls up` starts it) and waits on the mailbox, and adds the
per-iteration bookkeeping a Celery slice does (run status, lease renewal). The difference per
iteration is what Celery and the slice machinery cost.

Run: .venv/bin/python scripts/bench_orchestration.py [--iterations 60] [--json]"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import redis
import torch

from mpls_celery.config.run_config import RunConfig
from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.runtime.keys import PULL_QUEUE
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.context import RunContext
from mpls_celery.runtime.worker.layout import layout_of, layout_to_json
from mpls_celery.runtime.worker.messages import PullRequest
from mpls_celery.runtime.worker.node import NodeRuntime
from mpls_celery.runtime.worker.pull import run_aggregation
from mpls_celery.telemetry.states import WorkerState

REPO = Path(__file__).resolve().parents[1]
WORKERS = 6


def context(url: str, run_id: str) -> RunContext:
    cfg = RunConfig().with_overrides(workers=WORKERS, model="lenet5", dataset="digits",
                                     **{"topology.kind": "full", "training.lr": 0.1})  # fmt: skip
    store = RunStore(redis.Redis.from_url(url), run_id)
    ctx = RunContext(store, cfg, RuntimeOptions(iterations=None), [], time.time())
    exp = ctx.experiment
    ctx.layout = layout_of(exp.layers, exp.new_model().state_dict())
    store.run.create(
        {
            "run": cfg.model_dump(mode="json"),
            "options": ctx.options.model_dump(mode="json"),
            "layout": layout_to_json(ctx.layout),
        }
    )
    return ctx


def run_iterations(ctx: RunContext, iterations: int, enqueue: Any, bookkeeping: bool) -> float:
    """Seconds per node iteration (wall), after one warm-up round."""
    nodes = [NodeRuntime(ctx, w).resume() for w in range(WORKERS)]
    for node in nodes:
        ctx.store.nodes.update(node.worker, state=WorkerState.IDLE)
    token = "bench"
    for node in nodes:
        node.iteration(enqueue)
    started = time.perf_counter()
    for _ in range(iterations):
        for node in nodes:
            if bookkeeping:  # what a slice does around every iteration
                ctx.store.run.running()
                ctx.store.leases.acquire(node.worker, token, 6.0)
            node.iteration(enqueue)
    return (time.perf_counter() - started) / (iterations * WORKERS)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=60, help="per worker and mode")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict[str, float] = {}
    with EmbeddedRedis() as server, ThreadPoolExecutor(8) as pool:
        direct = context(server.url, "direct")

        def inline(request: PullRequest, deadline: float) -> None:
            pool.submit(run_aggregation, direct.store, direct.layout, request)

        results["direct_ms"] = 1e3 * run_iterations(direct, args.iterations, inline, False)

        env = {**os.environ, "MPLS_REDIS_URL": server.url, "MPLS_TORCH_THREADS": "1"}
        log = open(Path(tempfile.mkdtemp()) / "celery.log", "wb")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "mpls_celery", "worker", "-Q", PULL_QUEUE,
             "-P", "threads", "-c", "8", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel=WARNING"],
            cwd=REPO, env=env, stdout=log, stderr=log,
        )  # fmt: skip
        try:
            from mpls_celery.runtime.backend.celery_app import app
            from mpls_celery.runtime.worker.tasks import send_pull

            app.conf.broker_url = server.url
            via_celery = context(server.url, "celery")
            time.sleep(3.0)  # the worker connects
            celery = partial(send_pull, queue=PULL_QUEUE)
            results["celery_ms"] = 1e3 * run_iterations(via_celery, args.iterations, celery, True)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            log.close()
    results["overhead_share"] = (results["celery_ms"] - results["direct_ms"]) / results["celery_ms"]
    if args.json:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        return
    print(f"node iteration without Celery: {results['direct_ms']:.2f} ms")
    print(f"node iteration with Celery pulls + slice bookkeeping: {results['celery_ms']:.2f} ms")
    print(f"Celery/Redis overhead: {100 * results['overhead_share']:.1f} % of an iteration "
          "(goal <= 10 %)")  # fmt: skip


if __name__ == "__main__":
    main()
