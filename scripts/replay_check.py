"""How well the simulator predicts real runs: replays each run directory (`mpls sim --replay`) and
prints, per run, the time-to-target error and the accuracy gap at the real run's evaluations —
the table in the README's "Sim-to-real" section.

    .venv/bin/python -m scripts.replay_check runs/netns-compare/runs/run-mpls-s* --out runs/replays
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from mpls_celery.report.replay_table import compare_replay
from mpls_celery.telemetry.rundir import MANIFEST, read_json


def replay(run_dir: Path, out: Path) -> Path:
    before = set(out.glob("sim-*")) if out.exists() else set()
    subprocess.run([sys.executable, "-m", "mpls_celery", "sim", "--replay", str(run_dir),
                    "--out", str(out), "--json"], check=True, capture_output=True)  # fmt: skip
    (new,) = set(out.glob("sim-*")) - before
    return new


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("runs/replays"))
    args = parser.parse_args(argv)
    print("| run | time to target real / replay (s) | error | accuracy gap max / mean (points) |")
    print("|---|---|---|---|")
    for run_dir in args.runs:
        target = (read_json(run_dir / MANIFEST).get("options") or {}).get("target_acc")
        row = compare_replay(run_dir, replay(run_dir, args.out), target)
        error = "—" if row.time_error is None else f"{100 * row.time_error:+.1f} %"
        gap = (
            "—"
            if row.max_acc_gap is None
            else f"{100 * row.max_acc_gap:.1f} / {100 * row.mean_acc_gap:.1f}"
        )  # type: ignore[operator]
        real = "—" if row.real_time_to_target is None else f"{row.real_time_to_target:.1f}"
        sim = "—" if row.replay_time_to_target is None else f"{row.replay_time_to_target:.1f}"
        print(f"| {run_dir.name} | {real} / {sim} | {error} | {gap} |", flush=True)


if __name__ == "__main__":
    main()
