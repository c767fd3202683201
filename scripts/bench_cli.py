"""How long the CLI takes to answer before it does any work: `mpls --help`, `mpls runs --help`
and a run config's validation, against a bare `python -c pass` and `import torch` measured in the
same run (median of N, wall time of a fresh interpreter each).

    .venv/bin/python -m scripts.bench_cli
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "import torch (what the CLI no longer pays)": [sys.executable, "-c", "import torch"],
    "mpls --help": [sys.executable, "-m", "mpls_celery", "--help"],
    "mpls runs --help": [sys.executable, "-m", "mpls_celery", "runs", "--help"],
    "RunConfig validated": [
        sys.executable, "-c",
        "from mpls_celery.config.run_config import RunConfig; RunConfig(model='lenet5')",
    ],
}  # fmt: skip


def median_seconds(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    measured = {name: median_seconds(cmd, args.repeats) for name, cmd in CASES.items()}
    floor = measured["python -c pass (floor)"]
    print("| command | median s | × bare python |\n|---|---|---|")
    for name, seconds in measured.items():
        print(f"| {name} | {seconds:.2f} | {seconds / floor:.1f}× |")


if __name__ == "__main__":
    main()
