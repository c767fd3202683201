"""Benchmark `schedule_layers`: time at S=30/L=21 and S=256/L=200, growth with S and L, and how far
phase-1 λ is from the optimal assignment on instances small enough for brute force.

Ratios are against APPG's λ (pull everything from everyone) measured on the same instances.
Run: .venv/bin/python scripts/bench_schedule.py [--json]"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

import numpy as np
import orjson

from mpls_celery.core.schedule import pull_delay, schedule, schedule_matrices

Instance = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # layer bytes, bandwidth, p, q


def instance(s: int, n_layers: int, seed: int) -> Instance:
    rng = np.random.default_rng(seed)
    layer_bytes = rng.lognormal(11, 1.5, n_layers)
    bandwidth = rng.uniform(1e6, 2e7, s)
    p = rng.dirichlet(np.ones(s))
    g = rng.exponential(1.0, (s, n_layers))
    return layer_bytes, bandwidth, p, g / g.sum(axis=0)


def time_it(s: int, n_layers: int, repeats: int) -> float:
    cases = [instance(s, n_layers, seed) for seed in range(repeats)]
    schedule(*cases[0])  # warm-up
    started = time.perf_counter()
    for case in cases:
        schedule(*case)
    return (time.perf_counter() - started) / repeats * 1e3


def optimality_gap(trials: int = 200) -> dict[str, float]:
    """λ(phase 1) / λ(best single-copy assignment respecting the mask), S ≤ 4, L ≤ 7."""
    ratios = []
    for seed in range(trials):
        rng = np.random.default_rng(10_000 + seed)
        s, n_layers = int(rng.integers(2, 5)), int(rng.integers(2, 8))
        layer_bytes, bandwidth, p, q = instance(s, n_layers, seed)
        mats = schedule_matrices(layer_bytes, bandwidth, p, q)
        best = np.inf
        for owners in itertools.product(range(s), repeat=n_layers):
            loads = np.zeros(s)
            for layer, owner in enumerate(owners):
                loads[owner] += mats.pull_time[owner, layer]
            best = min(best, loads.max())
        ratios.append(schedule(layer_bytes, bandwidth, p, q).makespan / best)
    arr = np.array(ratios)
    return {"mean": float(arr.mean()), "median": float(np.median(arr)), "max": float(arr.max()),
            "optimal_share": float(np.mean(arr <= 1 + 1e-9))}  # fmt: skip


def versus_appg(s: int, n_layers: int, trials: int = 50) -> float:
    ratios = []
    for seed in range(trials):
        layer_bytes, bandwidth, p, q = instance(s, n_layers, seed)
        y = schedule(layer_bytes, bandwidth, p, q).y
        ratios.append(
            pull_delay(np.ones_like(y), layer_bytes, bandwidth)
            / pull_delay(y, layer_bytes, bandwidth)
        )
    return float(np.median(ratios))


def main() -> None:
    results: dict[str, Any] = {
        "S30_L21_ms": time_it(30, 21, 500),
        "S256_L200_ms": time_it(256, 200, 20),
        "growth_in_S_ms": {s: time_it(s, 21, 100) for s in (8, 16, 32, 64, 128, 256)},
        "growth_in_L_ms": {n: time_it(30, n, 100) for n in (5, 21, 50, 100, 200, 400)},
        "phase1_lambda_over_optimal": optimality_gap(),
        "appg_lambda_over_mpls_lambda_S30_L21": versus_appg(30, 21),
    }
    if "--json" in sys.argv:
        print(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
        return
    print(f"schedule_layers S=30 L=21:   {results['S30_L21_ms']:.3f} ms (target < 1 ms)")
    print(f"schedule_layers S=256 L=200: {results['S256_L200_ms']:.2f} ms (target < 50 ms)")
    print("growth in S (L=21):", {k: round(v, 3) for k, v in results["growth_in_S_ms"].items()})
    print("growth in L (S=30):", {k: round(v, 3) for k, v in results["growth_in_L_ms"].items()})
    print("phase-1 λ / optimal λ (brute force, S<=4, L<=7):", results["phase1_lambda_over_optimal"])
    print(
        f"APPG λ / MPLS λ at S=30 L=21 (median): {results['appg_lambda_over_mpls_lambda_S30_L21']:.2f}×"
    )


if __name__ == "__main__":
    main()
