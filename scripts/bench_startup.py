"""Start-up at scale: how long `mpls up` takes to its first iterations with N workers on this
machine, by part — slice processes loading data and model (the first `offer` of each worker),
the link probes, the first iteration — and whether any worker was declared dead meanwhile.

    .venv/bin/python -m scripts.bench_startup --workers 6,24,48
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from mpls_celery.config.run_config import RunConfig
from mpls_celery.runtime.launcher import UpRequest
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.up import run_up
from mpls_celery.settings import Settings
from mpls_celery.telemetry.records import IterationRecord, ProbeRecord
from mpls_celery.telemetry.rundir import read_metrics


def measure(workers: int, iterations: int, model: str) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="mpls-startup-"))
    settings = Settings(runs_dir=work / "runs", state_dir=work / "state")
    cfg = RunConfig().with_overrides(
        workers=workers, model=model, dataset="digits", **{"topology.kind": "random"}
    )
    options = RuntimeOptions(iterations=iterations, eval_samples=100)
    summary = run_up(UpRequest(cfg, options, settings, eval_interval=10.0))
    records = list(read_metrics(Path(str(summary["run_dir"]))))
    firsts = {}
    for r in records:
        if isinstance(r, IterationRecord) and r.worker not in firsts:
            firsts[r.worker] = r.t
    probes = [x for r in records if isinstance(r, ProbeRecord) for x in r.links.values()]
    return {
        "workers": workers,
        "probes": len(probes),
        "probe_phase_s": (
            round(max(s + d for _, d, s in probes) - min(s for _, _, s in probes), 1)
            if probes
            else None
        ),
        "first_iteration_s": round(min(firsts.values()), 1) if firsts else None,
        "every_worker_iterated_by_s": round(max(firsts.values()), 1) if firsts else None,
        "declared_dead": len(summary["dead"]),
        "reason": summary["reason"],
        "wall_s": summary["wall_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="6,24,48", help="comma-separated worker counts")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--model", default="lenet5")
    args = parser.parse_args()
    print(
        "| workers | first iteration (s) | every worker iterated by (s) | probes | probe phase (s) | declared dead | wall (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.workers.split(",")):
        row = measure(n, args.iterations, args.model)
        print(f"| {n} | {row['first_iteration_s']} | {row['every_worker_iterated_by_s']} | "
              f"{row['probes']} | {row['probe_phase_s']} | {row['declared_dead']} | {row['wall_s']} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
