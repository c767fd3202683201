"""The examples on paper30's network: MPLS against NetMax in `mpls sim` (time to each example's
target accuracy, over the example's own run.yaml), and what MPLS chose to pull per layer — for
the transformer, its blocks against its embedding.

    .venv/bin/python -m scripts.examples_report [--until 120] [--seed 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from mpls_celery import api
from mpls_celery.config.load import load_run_config
from mpls_celery.experiment import build_experiment
from mpls_celery.plugins import add_import_dirs
from mpls_celery.settings import load_settings
from mpls_celery.telemetry.records import IterationRecord
from mpls_celery.telemetry.rundir import read_metrics

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"digits_imagefolder": 0.95, "tabular_npz": 0.97, "transformer_sequences": 0.9}


def prepared(name: str, work: Path) -> Path:
    """A copy of example `name` under `work`, its data made there, as a user would have it."""
    folder = work / name
    shutil.copytree(
        REPO / "examples" / name, folder, ignore=shutil.ignore_patterns("data", "*.npz")
    )
    maker = folder / "make_data.py"
    if maker.exists():
        spec = importlib.util.spec_from_file_location(f"make_{name}", maker)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main()  # writes beside itself, where run.yaml expects it
    return folder


def layer_bytes_pulled(run_dir: Path, name: str, folder: Path) -> list[tuple[str, float]]:
    """MB MPLS pulled per layer over the run (layer name, MB)."""
    cfg = load_run_config(folder / "run.yaml")
    exp = build_experiment(cfg, load_settings().data_dir)
    pulled: Counter[int] = Counter()
    for r in read_metrics(run_dir):
        if isinstance(r, IterationRecord) and r.algo == "mpls":
            for layers in r.plan.values():
                pulled.update(layers)
    return [
        (layer.name, pulled[i] * exp.layer_bytes[i] / 1e6) for i, layer in enumerate(exp.layers)
    ]


def shown(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--until", type=float, default=120.0, help="virtual seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--eval-every", type=float, default=0.1, help="virtual seconds")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mpls-examples-"))
    rows, bytes_rows = [], []
    for name, target in TARGETS.items():
        folder = prepared(name, work)
        os.chdir(folder)
        for module in ("model", "data"):  # every example has its own model.py (and data.py)
            sys.modules.pop(module, None)
        add_import_dirs([folder])
        cfg = load_run_config(folder / "run.yaml").with_overrides(
            seed=args.seed, **{"network.profile": "paper30"}
        )
        result = api.simulate(cfg, ("mpls", "netmax"), until=args.until, target_acc=target,
                              stop_at_target=True, jobs=2, out=work / "runs",
                              eval_every=args.eval_every)  # fmt: skip
        algos = result.summary["algorithms"]
        mpls, netmax = algos["mpls"]["time_to_target"], algos["netmax"]["time_to_target"]
        ratio = f"{netmax / mpls:.2f}×" if mpls and netmax else "—"
        rows.append(f"| {name} | {target:.0%} | {shown(mpls)} | {shown(netmax)} | {ratio} | "
                    f"{algos['mpls']['best_mean_acc']:.3f} | {algos['netmax']['best_mean_acc']:.3f} |")  # fmt: skip
        if name == "transformer_sequences":
            bytes_rows = layer_bytes_pulled(result.run_dir, name, folder)
    print(
        "| example | target | MPLS to target (virtual s) | NetMax | NetMax ÷ MPLS | MPLS best acc | NetMax best acc |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nMPLS's pulls per layer, transformer example (MB over the run):\n")
    print("| layer | MB pulled |\n|---|---|")
    for layer, mb in bytes_rows:
        print(f"| {layer} | {mb:.2f} |")


if __name__ == "__main__":
    main()
