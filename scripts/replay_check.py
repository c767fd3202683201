"""How well the simulator predicts real runs: replays each run directory (`mpls sim --replay`) and
prints, per run, the time-to-target error and the accuracy gap at the real run's evaluations —
the table in docs/results.md, "A real run replayed in the simulator". With --repeats, compares
real runs pairwise instead (a run and its repeat with the same seed on the same testbed): how far
a real run is from itself, the floor for any prediction.

    .venv/bin/python -m scripts.replay_check runs/netns-compare/runs/run-mpls-s* --out runs/replays
    .venv/bin/python -m scripts.replay_check --repeats RUN_A RUN_A_AGAIN [RUN_B RUN_B_AGAIN ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from mpls_celery.report.replay_table import compare_replay, replay_markdown
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
    parser.add_argument("--repeats", action="store_true", help="runs are (run, its repeat) pairs")
    args = parser.parse_args(argv)
    if args.repeats and len(args.runs) % 2:
        parser.error("--repeats takes run directories in pairs")
    pairs = (
        list(zip(args.runs[::2], args.runs[1::2], strict=True))
        if args.repeats
        else [(run_dir, replay(run_dir, args.out)) for run_dir in args.runs]
    )
    rows = []
    for real, other in pairs:
        target = (read_json(real / MANIFEST).get("options") or {}).get("target_acc")
        rows.append(asdict(compare_replay(real, other, target)))
    print("\n".join(replay_markdown(rows)))


if __name__ == "__main__":
    main()
