"""What a runtime node costs beyond its training and its pull wait, alone (1 and 2 workers, so no
core is shared between them), by part, against the bare LeNet-5 SGD step measured in the same
run. Each node runs in a process of its own, as under Celery's prefork pool, on an embedded
Redis; the pulls run the real aggregation in a process of their own (four threads), as `mpls
up`'s pull worker does (no broker: bench_orchestration measures Celery's own share). Each
iteration begins, as in a slice, with the check that the run still runs and the lease is still
the node's ("check"). "Own" is an iteration's wall time less its training and its pull wait (a
wait for the planner after the step, "planned", counts as own); what the node's other threads do
meanwhile, off that path, is listed after it: the planner's (the view, the plan, the pull asked
for), the receiver's (the pull's result taken, decoded and averaged over the start), the
self-evaluation's and the publisher's writes. "Own, node thread's CPU" is the CPU the node's own
thread spent on that path: at 2 workers on 2 cores the wall time also holds waits for a core and
for the GIL (the planner, the publisher, the pulls and Redis run beside the training), which
this leaves out. "Process CPU" is all the node process spent per iteration: training, that path
and every other thread of the node's.

    .venv/bin/python -m scripts.bench_node [--iterations 200] [--device cuda] [--json]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import redis
import torch

from mpls_celery.config.run_config import RunConfig
from mpls_celery.core.training import LocalTrainer
from mpls_celery.experiment import build_experiment
from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.state.leases import LeaseKeeper, Renewal
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.context import RunContext
from mpls_celery.runtime.worker.layout import layout_of, layout_to_json
from mpls_celery.runtime.worker.messages import PullRequest
from mpls_celery.runtime.worker.node import NodeRuntime
from mpls_celery.runtime.worker.pull import run_aggregation
from mpls_celery.settings import load_settings
from mpls_celery.telemetry.states import WorkerState

# parts on the node's own path ("planned": waiting after the step for the planner), then what its
# other threads do meanwhile: the planner (the view, the plan and the pull asked for), the
# receiver (the pull's result decoded and averaged over the start), the self-evaluation and the
# publisher's writes
PARTS = ("check", "train", "planned", "wait", "mix", "settle", "view", "plan", "receive",
         "evaluate", "state", "publish_trained", "publish", "emit")  # fmt: skip


def context(url: str, run_id: str, workers: int, device: str) -> RunContext:
    cfg = RunConfig().with_overrides(workers=workers, model="lenet5", dataset="digits",
                                     device=device, **{"topology.kind": "full",
                                                       "training.lr": 0.1})  # fmt: skip
    store = RunStore(redis.Redis.from_url(url), run_id)
    options = RuntimeOptions(iterations=None, link_speeds="achieved")
    ctx = RunContext(store, cfg, options, [], time.time())
    exp = ctx.experiment
    ctx.layout = layout_of(exp.layers, exp.new_model().state_dict())
    store.run.create({"run": cfg.model_dump(mode="json"), "options": options.model_dump(mode="json"),
                      "layout": layout_to_json(ctx.layout)})  # fmt: skip
    return ctx


Samples = dict[str, list[float]]


def timed(times: Samples, cpu: Samples, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, adding its wall time and its thread's CPU time to the current iteration's `part`."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began, cpu_at = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            times[part][-1] += time.perf_counter() - began
            cpu[part][-1] += time.thread_time() - cpu_at

    return wrapper


def node_loop(url: str, run_id: str, workers: int, worker: int, iterations: int) -> dict[str, Any]:
    """One node's iterations in this (spawned) process: per-part medians (ms)."""
    torch.set_num_threads(1)
    ctx = RunContext.load(RunStore(redis.Redis.from_url(url), run_id))
    node = NodeRuntime(ctx, worker).resume()
    ctx.store.nodes.update(worker, state=WorkerState.IDLE)
    times: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    store = ctx.store
    token = f"bench-{worker}"
    assert store.leases.acquire(worker, token, ctx.options.lease_seconds)
    for name, owner, attr in (
        ("view", node, "_view"), ("plan", node.step, "plan"), ("train", node, "_train"),
        ("planned", node, "_planned"),
        ("publish_trained", node, "_publish_trained"), ("mix", node, "_mix_in"),
        ("publish", node, "_write_version"), ("evaluate", node.self_evaluation, "_evaluate"),
        ("settle", node.publisher, "wait"), ("state", store.nodes, "update"),
        ("wait", node, "_await_pull"), ("receive", node, "_receive"),
        ("emit", store.events, "emit"),
    ):  # fmt: skip
        setattr(owner, attr, timed(times, cpu, name, getattr(owner, attr)))
    totals: list[float] = []
    thread_cpu: list[float] = []  # the node's own thread only: what it spent, not what it waited
    cpu_began = time.process_time()
    keeper = LeaseKeeper(store.leases, worker, token, ctx.options.lease_seconds)
    with keeper as lease:
        check = timed(times, cpu, "check", lease.check)

        def pull(request: PullRequest, deadline: float) -> None:
            assert PULLS is not None
            PULLS.put(request)

        for i in range(iterations + 10):  # 10 warm-up iterations, not counted
            for part in PARTS:
                times[part].append(0.0)
                cpu[part].append(0.0)
            began, cpu_at = time.perf_counter(), time.thread_time()
            assert check() is Renewal.RENEWED
            node.iteration(pull)
            totals.append(time.perf_counter() - began)
            thread_cpu.append(time.thread_time() - cpu_at)
            if i == 9:
                for kept in (totals, thread_cpu, times, cpu):
                    kept.clear()
                cpu_began = time.process_time()
        node.flush()
        cpu_ms = 1e3 * (time.process_time() - cpu_began) / iterations
    own = [1e3 * (t - times["train"][i] - times["wait"][i]) for i, t in enumerate(totals)]
    own_cpu = [1e3 * (t - cpu["train"][i] - cpu["wait"][i]) for i, t in enumerate(thread_cpu)]
    per = {part: 1e3 * statistics.median(v) for part, v in times.items() if v}
    per_cpu = {f"cpu_{part}": 1e3 * statistics.median(v) for part, v in cpu.items() if v}
    return {"iteration_ms": 1e3 * statistics.median(totals), "own_ms": statistics.median(own),
            "own_mean_ms": statistics.fmean(own), "own_cpu_ms": statistics.median(own_cpu),
            "cpu_ms": cpu_ms, **per, **per_cpu}  # fmt: skip


PULLS: Any = None  # in a node process: the pull process's queue


def _set_pulls(queue: Any) -> None:
    global PULLS
    PULLS = queue


def pull_process(url: str, run_id: str, queue: Any) -> None:
    """The run's pulls, as `mpls up`'s pull worker runs them: a process of its own, four threads."""
    torch.set_num_threads(1)
    ctx = RunContext.load(RunStore(redis.Redis.from_url(url), run_id))
    with ThreadPoolExecutor(4) as pool:
        while (request := queue.get()) is not None:
            pool.submit(run_aggregation, ctx.store, ctx.layout, request)


def measure(url: str, workers: int, iterations: int, device: str) -> dict[str, Any]:
    """`workers` nodes of one run, each in its own process, at once, and a pull process;
    worker 0's numbers."""
    ctx = context(url, f"node-{workers}", workers, device)
    spawn = multiprocessing.get_context("spawn")
    pulls = spawn.Queue()
    puller = spawn.Process(target=pull_process, args=(url, ctx.store.run_id, pulls))
    puller.start()
    args = [(url, ctx.store.run_id, workers, w, iterations) for w in range(workers)]
    try:
        with spawn.Pool(workers, initializer=_set_pulls, initargs=(pulls,)) as pool:
            rows = pool.starmap(node_loop, args)
    finally:
        pulls.put(None)
        puller.join(30)
    return {"workers": workers, **rows[0]}


def bare_step_ms(device: str) -> float:
    cfg = RunConfig().with_overrides(model="lenet5", dataset="digits", device=device)
    exp = build_experiment(cfg, load_settings().data_dir)
    local = exp.local_data(0)
    trainer = LocalTrainer(exp.new_model(), local.x, local.y, exp.train_config, seed=1)
    for _ in range(20):
        trainer.train()
    samples = []
    for _ in range(200):
        began = time.perf_counter()
        trainer.train()
        samples.append(time.perf_counter() - began)
    return 1e3 * statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU machine")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    step = bare_step_ms(args.device)
    with EmbeddedRedis() as server:
        rows = [measure(server.url, n, args.iterations, args.device) for n in (1, 2)]
    if args.json:
        print(
            orjson.dumps({"bare_step_ms": step, "rows": rows}, option=orjson.OPT_INDENT_2).decode()
        )
        return
    print(f"bare LeNet-5 SGD step (batch 64, 1 thread, {args.device}): {step:.2f} ms")
    columns = {"iteration_ms": "iteration (ms)", "own_ms": "node's own, median (ms)",
               "own_mean_ms": "own, mean (ms)", "own_cpu_ms": "own, node thread's CPU (ms)",
               "cpu_ms": "process CPU (ms)"}  # fmt: skip
    heads = [h for title in columns.values() for h in (title, "÷ step")]
    print("| " + " | ".join(["workers", *heads, *PARTS]) + " |")
    print("|---" * (1 + len(heads) + len(PARTS)) + "|")
    for r in rows:
        cells = [f"{v:.2f}" for key in columns for v in (r[key], r[key] / step)]
        cells += [f"{r.get(part, 0.0):.2f}" for part in PARTS]
        print(f"| {r['workers']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
