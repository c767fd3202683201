"""Per-epoch evidence for the "Iteration semantics" defaults (docs/algorithm.md): every algorithm under every
combination of the run options, on paper30 / LeNet-5 / MNIST, evaluated at fixed epoch counts.

The defaults are chosen by the per-epoch behaviour the paper reports (LeNet-5: all algorithms
similar per epoch; APPG at least as good as NetMax per epoch), never by time-to-target ratios.

    .venv/bin/python scripts/semantics_sweep.py --topology full --epochs 3000 --out runs/sweep
    .venv/bin/python scripts/semantics_sweep.py --topology random --epochs 10000 \\
        --variants average-then-step/published/since-last-pull/independent

Prints one markdown table per variant (mean worker accuracy at each checkpoint) and writes
sweep.json beside the run directories."""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path
from typing import Any

from mpls_celery.config.run_config import RunConfig
from mpls_celery.core.semantics import LinkModel, Mixing, ProgressWindow, PullSees
from mpls_celery.core.strategies import STRATEGY_NAMES
from mpls_celery.settings import load_settings
from mpls_celery.sim.engine import SimOptions
from mpls_celery.sim.runner import SimRequest, resolve_step_seconds, run_simulation, sim_profile
from mpls_celery.telemetry.records import EvalRecord
from mpls_celery.telemetry.rundir import read_metrics

OPTION_ORDER = ("mixing", "pull_sees", "progress_window", "links")
CHOICES = (Mixing, PullSees, ProgressWindow, LinkModel)


def all_variants() -> list[str]:
    return ["/".join(v.value for v in combo) for combo in itertools.product(*CHOICES)]


def accuracy_at(evals: list[EvalRecord], epoch: int) -> tuple[float, float] | None:
    """(mean worker acc, averaged-model acc) at the first evaluation at or after `epoch`."""
    hit = next((e for e in evals if e.epoch >= epoch), None)
    return (hit.mean_acc, hit.avg_model_acc) if hit else None


def run_variant(
    variant: str, args: argparse.Namespace, checkpoints: list[int]
) -> dict[str, object]:
    settings = load_settings()
    cfg = RunConfig().with_overrides(
        workers=30,
        model="lenet5",
        dataset="mnist",
        seed=args.seed,
        **dict(zip(OPTION_ORDER, variant.split("/"), strict=True)),
        **{"network.profile": "paper30", "topology.kind": args.topology, "topology.p": 0.5},
    )
    options = SimOptions(
        algorithm=args.algos[0],
        until=None,
        epochs=args.epochs,
        eval_every_epochs=args.eval_epochs,
        eval_samples=200,
        step_seconds=resolve_step_seconds(cfg, sim_profile(cfg), None),
    )
    started = time.monotonic()
    run_dir = run_simulation(
        SimRequest(cfg, tuple(args.algos), options, settings.data_dir, args.out, jobs=args.jobs)
    )
    evals: dict[str, list[EvalRecord]] = {}
    for record in read_metrics(run_dir):
        if isinstance(record, EvalRecord):
            evals.setdefault(record.algo, []).append(record)
    table = {
        algo: {str(c): accuracy_at(evals.get(algo, []), c) for c in checkpoints}
        for algo in args.algos
    }
    return {
        "variant": variant,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.monotonic() - started, 1),
        "accuracy": table,
        "virtual_seconds": {a: (evals[a][-1].t if evals.get(a) else None) for a in args.algos},
    }


def markdown(result: dict[str, object], checkpoints: list[int]) -> str:
    lines = [
        f"### {result['variant']}  ({result['wall_seconds']} s wall)",
        "",
        "| algorithm | " + " | ".join(f"T={c}" for c in checkpoints) + " | virtual s |",
        "|---" * (len(checkpoints) + 2) + "|",
    ]
    accuracy: dict[str, dict[str, tuple[float, float] | None]] = result["accuracy"]  # type: ignore[assignment]
    seconds: dict[str, float | None] = result["virtual_seconds"]  # type: ignore[assignment]
    for algo, row in accuracy.items():
        cells = [
            "—" if row[str(c)] is None else f"{100 * row[str(c)][0]:.1f}"  # type: ignore[index]
            for c in checkpoints
        ]
        vs = seconds.get(algo)
        lines.append(f"| {algo} | " + " | ".join(cells) + f" | {vs or 0:.1f} |")
    return "\n".join(lines)


def evidence_table(results: list[dict[str, Any]], epoch: int) -> str:
    """One row per variant: each algorithm's mean accuracy at `epoch`, the spread between the
    best and the worst, and whether APPG is at least as good as NetMax (the paper's evidence)."""
    algos = list(results[0]["accuracy"])
    lines = [
        "| mixing / pull_sees / progress_window / links | "
        + " | ".join(algos)
        + " | spread | APPG ≥ NetMax |",
        "|---" * (len(algos) + 3) + "|",
    ]
    for result in results:
        row = {a: result["accuracy"][a].get(str(epoch)) for a in algos}
        accs = {a: 100 * v[0] for a, v in row.items() if v is not None}
        spread = max(accs.values()) - min(accs.values()) if accs else float("nan")
        appg_ok = accs.get("appg", 0.0) >= accs.get("netmax", 0.0)
        cells = [f"{accs[a]:.1f}" if a in accs else "—" for a in algos]
        lines.append(
            f"| {result['variant']} | "
            + " | ".join(cells)
            + f" | {spread:.1f} | "
            + ("yes" if appg_ok else "no")
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topology", choices=("full", "random", "ring"), default="full")
    parser.add_argument("--epochs", type=int, default=3000)
    parser.add_argument("--eval-epochs", type=int, default=250)
    parser.add_argument("--checkpoints", default="1000,3000,10000")
    parser.add_argument("--variants", default="all", help="'all' or comma-separated a/b/c/d")
    parser.add_argument("--algos", default=",".join(STRATEGY_NAMES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"))
    parser.add_argument("--table", type=Path, help="print the evidence table of a sweep.json")
    parser.add_argument("--table-epoch", type=int, default=10_000)
    args = parser.parse_args()
    if args.table:
        print(evidence_table(json.loads(args.table.read_text()), args.table_epoch))
        return
    args.algos = args.algos.split(",")
    variants = all_variants() if args.variants == "all" else args.variants.split(",")
    checkpoints = [c for c in map(int, args.checkpoints.split(",")) if c <= args.epochs]
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for variant in variants:
        result = run_variant(variant, args, checkpoints)
        results.append(result)
        print(markdown(result, checkpoints), flush=True)
        (args.out / "sweep.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
