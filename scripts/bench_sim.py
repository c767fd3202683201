"""Simulator benchmark: what one simulated iteration costs against the bare SGD step it contains.

Baseline (measured in the same run): one LeNet-5 SGD step (batch 64, 1 torch thread) on worker 0's
data. Per algorithm, a short paper30 simulation gives the wall time per simulated iteration (ratio to
the baseline = the simulator's overhead factor) and iterations per virtual second; from those, the
projected wall time of the 300-virtual-second comparison on 2 cores, and its floor if the simulator
cost nothing beyond SGD. The step and a test-set evaluation are also timed in torch's default
memory layout beside the one runs use (channels-last on a CPU: core/models CHANNELS_LAST_ON_CPU).

Each engine (`--engines sequential,batched`) runs every algorithm, on `--device` (cpu by default;
cuda on a GPU machine); the batched rows add how many workers each vectorised call trained.

Run: .venv/bin/python scripts/bench_sim.py [--until 10] [--topology full] [--device cuda]
     [--engines sequential,batched] [--dataset mnist] [--json]"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import orjson
import torch

from mpls_celery.config.run_config import RunConfig
from mpls_celery.core.batched_training import BatchedTrainer
from mpls_celery.core.step import Progress, WorkerStep
from mpls_celery.core.training import LocalTrainer, TrainConfig, evaluate
from mpls_celery.errors import ConfigError
from mpls_celery.experiment import Experiment, build_experiment
from mpls_celery.settings import load_settings
from mpls_celery.sim import engine
from mpls_celery.sim.engine import SimOptions, Simulation
from mpls_celery.sim.runner import resolve_step_seconds, sim_profile
from mpls_celery.telemetry.records import IterationRecord

ALGORITHMS = ("mpls", "appg", "netmax", "rand-mpls")
HORIZON = 300.0  # virtual seconds of the comparison the issue asks about
CORES = 2


def model_in(exp: Experiment, layout: torch.memory_format | None) -> torch.nn.Module:
    """The model as runs build it, or in another memory `layout`."""
    return exp.new_model() if layout is None else exp.new_model().to(memory_format=layout)


def worker0_trainer(exp: Experiment, layout: torch.memory_format | None = None) -> LocalTrainer:
    cfg = exp.config.training
    data = exp.local_data(0)  # on the run's device
    model = model_in(exp, layout)
    return LocalTrainer(model, data.x, data.y, TrainConfig(cfg.batch_size, cfg.lr, 1), seed=0)


def bare_step_ms(
    exp: Experiment, steps: int = 300, layout: torch.memory_format | None = None
) -> float:
    trainer = worker0_trainer(exp, layout)
    for _ in range(30):
        trainer.train()
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train()
    return (time.perf_counter() - started) / steps * 1e3


def step_breakdown_ms(exp: Experiment, steps: int = 100) -> dict[str, float]:
    """Per-step CPU time of the convolutions and the max-pools (torch.profiler, self time)."""
    from torch.profiler import ProfilerActivity, profile

    trainer = worker0_trainer(exp)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train()
    totals = {"convolution": 0.0, "max_pool": 0.0}
    for event in prof.key_averages():
        for part in totals:
            if part in event.key:
                totals[part] += event.self_cpu_time_total / 1e3 / steps
    return {k: round(v, 2) for k, v in totals.items()}


def evaluation_ms(exp: Experiment, layout: torch.memory_format | None = None) -> float:
    """One evaluation of a model on the whole test set (the averaged model's, at each record)."""
    test = exp.test_data
    model = model_in(exp, layout)
    evaluate(model, test.x, test.y)
    started = time.perf_counter()
    evaluate(model, test.x, test.y)
    return (time.perf_counter() - started) * 1e3


def layout_ms(exp: Experiment, step_ms: float) -> dict[str, float]:
    """The bare step (`step_ms`: the baseline, in the layout runs use, core/models
    CHANNELS_LAST_ON_CPU) and a test-set evaluation against the same in torch's default layout."""
    contiguous = torch.contiguous_format
    return {
        "step_ms": round(step_ms, 2),
        "step_ms_nchw": round(bare_step_ms(exp, layout=contiguous), 2),
        "eval_ms": round(evaluation_ms(exp), 1),
        "eval_ms_nchw": round(evaluation_ms(exp, contiguous), 1),
    }


# Where a simulated iteration's time goes: (owner, attribute) wrapped with a timer while measuring.
PARTS: dict[str, list[tuple[Any, str]]] = {
    "SGD step": [(LocalTrainer, "train"), (BatchedTrainer, "train")],
    "Eq. 1 mix (stack + average the pulled copies)": [(engine, "mix_copies")],
    "write mixed layers": [(engine, "write_layers")],
    "state snapshots": [(engine, "snapshot_state")],
    "view + plan": [(WorkerStep, "view"), (WorkerStep, "plan")],
    "progress (Eq. 5)": [(Progress, "after")],
    "evaluation": [(Simulation, "_evaluate")],
}


@contextlib.contextmanager
def timed_parts() -> Iterator[dict[str, float]]:
    """Seconds spent in each of PARTS while the block runs (the originals come back after)."""
    spent = dict.fromkeys(PARTS, 0.0)

    def wrap(part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - started

        return timed

    saved = [
        (owner, name, getattr(owner, name)) for pairs in PARTS.values() for owner, name in pairs
    ]
    for part, pairs in PARTS.items():
        for owner, name in pairs:
            setattr(owner, name, wrap(part, getattr(owner, name)))
    try:
        yield spent
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def simulate(exp: Experiment, options: SimOptions) -> tuple[float, int, float | None]:
    """Wall seconds, simulated iterations, and mean workers per vectorised call (batched)."""
    sim = Simulation(exp, options, exp.profile or sim_profile(exp.config))
    sizes: list[int] = []
    train = BatchedTrainer.train

    def counted(self: BatchedTrainer, starts: Any, *rest: Any) -> Any:
        sizes.append(len(starts))
        return train(self, starts, *rest)

    BatchedTrainer.train = counted  # type: ignore[method-assign, assignment]
    try:
        started = time.perf_counter()
        records = sim.run()
        wall = time.perf_counter() - started
    finally:
        BatchedTrainer.train = train  # type: ignore[method-assign]
    per_call = sum(sizes) / len(sizes) if sizes else None
    return wall, sum(isinstance(r, IterationRecord) for r in records), per_call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--until", type=float, default=10.0, help="virtual seconds per algorithm")
    parser.add_argument("--topology", default="full")
    parser.add_argument("--dataset", default="mnist", help="mnist (MPLS_DATA_DIR), or digits")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--engines", default="sequential,batched")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = RunConfig().with_overrides(
        workers=30,
        model="lenet5",
        dataset=args.dataset,
        seed=1,
        device=args.device,
        **{"network.profile": "paper30", "topology.kind": args.topology},
    )
    try:
        exp = build_experiment(cfg, load_settings().data_dir)
    except ConfigError as exc:  # no MNIST here: one line, as every mpls command says it
        sys.exit(f"bench_sim: {exc}; or run on digits: --dataset digits")
    step_ms = bare_step_ms(exp)
    layout = layout_ms(exp, step_ms)  # right after the baseline: the VM's speed drifts
    breakdown = step_breakdown_ms(exp)
    base = SimOptions(
        algorithm=ALGORITHMS[0],
        until=args.until,
        eval_every=args.until,
        step_seconds=resolve_step_seconds(cfg, sim_profile(cfg), None),
    )
    rows: list[dict[str, Any]] = []
    for engine_name in args.engines.split(","):
        for algo in ALGORITHMS:
            options = replace(base, algorithm=algo, engine=engine_name)
            wall, iterations, per_call = simulate(exp, options)
            with timed_parts() as spent:  # a second run, timed by part (timers cost a little)
                timed_wall, timed_iterations, _ = simulate(exp, options)
            per_iteration_ms = wall / iterations * 1e3
            parts_ms = {k: v / timed_iterations * 1e3 for k, v in spent.items()}
            rest = timed_wall / timed_iterations * 1e3 - sum(parts_ms.values())
            parts_ms["engine (the rest)"] = rest
            rows.append(
                {
                    "engine": engine_name,
                    "algorithm": algo,
                    "iterations_per_virtual_s": round(iterations / args.until, 1),
                    "ms_per_iteration": round(per_iteration_ms, 2),
                    "x_bare_step": round(per_iteration_ms / step_ms, 2),
                    "workers_per_vectorised_call": per_call and round(per_call, 1),
                    "ms_per_iteration_by_part": {k: round(v, 2) for k, v in parts_ms.items()},
                }
            )
    first = [r for r in rows if r["engine"] == rows[0]["engine"]]
    steps_300 = sum(r["iterations_per_virtual_s"] * HORIZON for r in first)
    cpu_s = (
        sum(r["iterations_per_virtual_s"] * HORIZON * r["ms_per_iteration"] for r in first) / 1e3
    )
    result = {
        "device": args.device,
        "bare_step_ms": round(step_ms, 2),
        "step_ms_in": breakdown,
        "layout": layout,
        "algorithms": rows,
        "projected_300s_steps": round(steps_300),
        "projected_300s_wall_s_on_2_cores": round(cpu_s / CORES),
        "floor_300s_wall_s_on_2_cores": round(steps_300 * step_ms / 1e3 / CORES),
    }
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        return
    parts = ", ".join(f"{k} {v} ms" for k, v in breakdown.items())
    print(f"bare SGD step on {args.device}: {result['bare_step_ms']} ms (baseline; {parts})")
    print(
        f"memory layout as runs use it / torch's default (NCHW): SGD step {layout['step_ms']} /"
        f" {layout['step_ms_nchw']} ms, test-set evaluation {layout['eval_ms']} /"
        f" {layout['eval_ms_nchw']} ms"
    )
    for r in rows:
        per_call = r["workers_per_vectorised_call"]
        print(
            f"{r['engine']:>10} {r['algorithm']:>10}: {r['ms_per_iteration']:6.2f} ms/iteration"
            f" = {r['x_bare_step']:.2f}× the bare step, {r['iterations_per_virtual_s']} it/virtual s"
            + (f", {per_call} workers per vectorised call" if per_call else "")
        )
        print("            " + ", ".join(
            f"{k} {v:.2f}" for k, v in r["ms_per_iteration_by_part"].items()))  # fmt: skip
    print(
        f"300 virtual s, 4 algorithms ({first[0]['engine']}): ~{result['projected_300s_steps']:,} SGD steps;"
        f" projected {result['projected_300s_wall_s_on_2_cores']} s on {CORES} cores,"
        f" floor (SGD only) {result['floor_300s_wall_s_on_2_cores']} s"
    )


if __name__ == "__main__":
    main()
