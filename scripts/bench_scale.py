"""`mpls sim` at scale: 30, 100 and 300 workers on a paper30-like network (its rooms and devices
spread over N workers, random topology p = 0.5), MPLS with LeNet-5 on MNIST: wall seconds per
simulated iteration, against the bare SGD step measured in the same run, and the peak memory of
the simulating process.

    .venv/bin/python -m scripts.bench_scale [--workers 30,100,300] [--until 10] [--device cpu]
        [--engines sequential,batched] [--dataset mnist]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]


def simulate(
    workers: int, until: float, device: str, engine: str, dataset: str
) -> dict[str, float]:
    """One `mpls sim` in a child process, its run directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="mpls-scale-") as out:
        return _simulate_in(Path(out), workers, until, device, engine, dataset)


def _simulate_in(
    out: Path, workers: int, until: float, device: str, engine: str, dataset: str
) -> dict[str, float]:
    argv = [sys.executable, "-m", "mpls_celery", "sim", "--algo", "mpls", "--workers", str(workers),
            "--profile", "paper30", "--topology", "random", "--model", "lenet5", "--dataset", dataset,
            "--until", f"{until}s", "--eval-every", str(until), "--eval-samples", "100",
            "--device", device, "--engine", engine, "--jobs", "1", "--out", str(out),
            "--json"]  # fmt: skip
    began = time.monotonic()
    with (out / "stderr").open("w") as errors:  # the child keeps its own descriptor
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=errors,
                                env={**os.environ, "MPLS_TORCH_THREADS": "1"})  # fmt: skip
    peak = 0
    watched = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    wall = time.monotonic() - began
    if proc.returncode:  # mpls said why in one line: say it here, not as a JSON error
        said = (out / "stderr").read_text().strip().splitlines() or [f"exit {proc.returncode}"]
        sys.exit(f"bench_scale: mpls sim failed: {said[-1]} (or: --dataset digits)")
    summary = orjson.loads(proc.stdout.read() if proc.stdout else b"{}")
    iterations = summary["algorithms"]["mpls"]["iterations"]
    return {"workers": workers, "iterations": iterations, "wall_s": wall,
            "ms_per_iteration": 1e3 * wall / max(iterations, 1), "peak_rss_mb": peak / 1e6}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="30,100,300")
    parser.add_argument("--until", type=float, default=10.0, help="virtual seconds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--engines", default="sequential,batched")
    parser.add_argument("--dataset", default="mnist", help="mnist (MPLS_DATA_DIR), or digits")
    args = parser.parse_args()
    from scripts.bench_node import bare_step_ms

    step = bare_step_ms(args.device)
    print(f"bare LeNet-5 step: {step:.2f} ms ({args.device}); {args.until:g} virtual s each")
    print(
        "| workers | engine | simulated iterations | wall (s) | ms per iteration | × bare step "
        "| peak RSS (MB) |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in (int(x) for x in args.workers.split(",")):
        for engine in args.engines.split(","):
            r = simulate(n, args.until, args.device, engine, args.dataset)
            print(f"| {n} | {engine} | {r['iterations']:.0f} | {r['wall_s']:.1f} | "
                  f"{r['ms_per_iteration']:.2f} | {r['ms_per_iteration'] / step:.2f} | "
                  f"{r['peak_rss_mb']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
