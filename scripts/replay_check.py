"""How well the simulator predicts real runs: replays each run directory (`mpls sim --replay`) and
prints, per run, the time-to-target error and the accuracy gap at the real run's evaluations —
the table in the README's "Sim-to-real" section.

    .venv/bin/python -m scripts.replay_check runs/netns-compare/runs/run-mpls-s* --out runs/replays
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
    args = parser.parse_args(argv)
    rows = []
    for run_dir in args.runs:
        target = (read_json(run_dir / MANIFEST).get("options") or {}).get("target_acc")
        rows.append(asdict(compare_replay(run_dir, replay(run_dir, args.out), target)))
    print("\n".join(replay_markdown(rows)))


if __name__ == "__main__":
    main()
