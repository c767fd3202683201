"""MPLS against its baselines on real shaped links: three emulated hosts (network namespaces, tc;
the `rooms` preset mirrors paper30's rooms A/B/C), a snapshot Redis per host, per-worker queues,
one `mpls worker --nodes …` per host. Runs each algorithm on the same testbed and seed to a target
accuracy or a wall budget, one run directory each, then writes a comparison: time to target and
ratios, bytes per link class per second of pulling, measured link speeds against the shaping, and
`mpls report`'s plots (per-link matrix, link utilisation). Needs root and iproute2.

    .venv/bin/python -m scripts.netns_compare --seeds 1,2,3 --out runs/netns-compare
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from infra.netns.hosts import PRESETS, available
from infra.netns.testbed import Testbed
from mpls_celery.errors import RunNotFound
from mpls_celery.report.build import build_report
from mpls_celery.telemetry.link_traffic import (
    busiest_rates,
    busy_throughput,
    link_traffic,
    probed_rates,
)
from mpls_celery.telemetry.records import IterationRecord, Record
from mpls_celery.telemetry.rundir import read_metrics, write_json
from mpls_celery.telemetry.summary import summarise

PLACEMENT = {"a": [0, 1], "b": [2, 3], "c": [4, 5]}
ALGOS = ("mpls", "netmax", "rand-mpls", "appg")


@dataclass(frozen=True)
class RunResult:
    algo: str
    seed: int
    run_dir: str
    time_to_target: float | None
    final_mean_acc: float | None
    iterations: int
    fast_split: float | None  # bytes per link per pulling-second, fast links / slow links
    class_rate: dict[str, float]  # link class → kB per link per second of pulling
    link_mbit: dict[str, float | None]  # "puller<-peer" host pair → measured Mbit/s over the run
    host_mbit: dict[str, float | None]  # sender host → Mbit/s while its link was busy
    busiest_mbit: dict[str, float]  # "out a" / "in a" → Mbit/s of host a's link at its busiest
    probed_mbit: dict[str, float]  # "puller<-peer" host pair → median probed Mbit/s (link alone)


def link_classes(bed: Testbed) -> dict[tuple[str, str], str]:
    """Host pair → "fast" (the fastest shaped rate between two hosts) or "slow"."""
    names = list(bed.hosts)
    pairs = [(a, b) for a in names for b in names if a != b]
    fastest = max(bed.link_mbit(a, b) for a, b in pairs)
    return {(a, b): "fast" if bed.link_mbit(a, b) == fastest else "slow" for a, b in pairs}


def analyse(bed: Testbed, records: Sequence[Record]) -> dict[str, Any]:
    """Per link class: bytes moved per link, divided by the seconds its pullers spent pulling —
    so a class is not favoured merely for having busier pullers."""
    host_of = {w: h for h, ws in bed.placement.items() for w in ws}
    classes = link_classes(bed)
    pulling: dict[int, float] = {}
    for r in records:
        if isinstance(r, IterationRecord):
            pulling[r.worker] = pulling.get(r.worker, 0.0) + r.pull_seconds
    per_class: dict[str, list[float]] = {"fast": [], "slow": []}
    by_pair: dict[tuple[str, str], list[float]] = {}
    for link in link_traffic(records):
        pair = (host_of[link.puller], host_of[link.peer])
        per_class[classes[pair]].append(link.bytes / max(pulling.get(link.puller, 0.0), 1e-9))
        row = by_pair.setdefault(pair, [0.0, 0.0])
        row[0] += link.bytes
        row[1] += link.seconds
    rate = {c: statistics.mean(v) / 1e3 for c, v in per_class.items() if v}
    return {
        "class_rate": rate,
        "fast_split": rate["fast"] / rate["slow"] if rate.get("slow") and "fast" in rate else None,
        "link_mbit": {
            f"{a}<-{b}": (nb * 8 / s / 1e6 if s > 0 else None)
            for (a, b), (nb, s) in sorted(by_pair.items())
        },
        "host_mbit": busy_throughput(records, host_of),
        "busiest_mbit": busiest_rates(records, host_of),
        "probed_mbit": {f"{a}<-{b}": v for (a, b), v in probed_rates(records, host_of).items()},
    }


def run_one(
    bed: Testbed, algo: str, seed: int, args: argparse.Namespace, runs_dir: Path
) -> RunResult:
    bed.start_services()
    run_id = f"{algo}-s{seed}"
    flags = ["--algo", algo, "--seed", str(seed), "--model", args.model, "--dataset", args.dataset,
             "--eval-every", str(args.eval_every), *args.up_args]  # fmt: skip
    if args.iterations:
        flags += ["--iterations", str(args.iterations)]
    else:
        flags += ["--target-acc", str(args.target_acc), "--until", f"{args.budget}s"]
    summary = bed.run(flags, run_id, runs_dir, timeout=args.budget + 300)
    run_dir = Path(str(summary["run_dir"]))
    records = list(read_metrics(run_dir))
    s = summarise(records, args.target_acc)[algo]
    return RunResult(algo, seed, str(run_dir), s.time_to_target, s.final_mean_acc, s.iterations,
                     **analyse(bed, records))  # fmt: skip


def comparison_markdown(results: list[RunResult], bed: Testbed, target: float) -> str:
    shaped = ", ".join(f"{h.name} {h.mbit:g} Mbit/s" for h in bed.hosts.values())
    queues = ", ".join(sorted({f"{h.queue_ms:g} ms" for h in bed.hosts.values()}))
    lines = [
        f"# Multi-host comparison (hosts: {shaped}; shaper buffers {queues}; target {target})",
        "",
        "| seed | algorithm | time to target (s) | vs MPLS | final mean acc | iterations | "
        "fast/slow bytes per link per pulling-s | host Mbit/s while busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        mpls = next((x for x in results if x.seed == r.seed and x.algo == "mpls"), None)
        ratio = (
            f"{r.time_to_target / mpls.time_to_target:.2f}×"
            if mpls and mpls.time_to_target and r.time_to_target
            else "—"
        )
        hosts = " ".join(f"{h} {v:.2f}" for h, v in sorted(r.host_mbit.items()) if v)
        lines.append(
            f"| {r.seed} | {r.algo} | {_num(r.time_to_target)} | {ratio} | "
            f"{_num(r.final_mean_acc, 3)} | {r.iterations} | {_num(r.fast_split, 2)} | {hosts} |"
        )
    pairs = sorted({p for r in results for p in [*r.link_mbit, *r.probed_mbit]})
    lines += ["", "Link speed per host pair as the workers planned with it (probed: the link alone, "
              "median over the pair's workers; Mbit/s, puller <- peer), measured / shaped:", ""]  # fmt: skip
    lines.append("| seed | algorithm | " + " | ".join(pairs) + " |")
    lines.append("|---" * (len(pairs) + 2) + "|")
    for r in results:
        cells = [_share_cell(r.probed_mbit.get(p), bed.link_mbit(*p.split("<-"))) for p in pairs]
        lines.append(f"| {r.seed} | {r.algo} | " + " | ".join(cells) + " |")
    lines += ["", "Pull speed per host pair (Mbit/s), one pull's share of a busy link:", ""]
    lines.append("| seed | algorithm | " + " | ".join(pairs) + " |")
    lines.append("|---" * (len(pairs) + 2) + "|")
    for r in results:
        cells = [_num(r.link_mbit.get(p), 2) for p in pairs]
        lines.append(f"| {r.seed} | {r.algo} | " + " | ".join(cells) + " |")
    lines += ["", "Each host's link at its busiest (90th percentile of the 1-s bins in which it moved "
              "anything: all its pulls' rates added up), measured / shaped:", ""]  # fmt: skip
    ends = [f"{d} {h}" for h in bed.hosts for d in ("out", "in")]
    lines.append("| seed | algorithm | " + " | ".join(ends) + " |")
    lines.append("|---" * (len(ends) + 2) + "|")
    for r in results:
        cells = [_busiest_cell(bed, e, r.busiest_mbit.get(e)) for e in ends]
        lines.append(f"| {r.seed} | {r.algo} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _busiest_cell(bed: Testbed, end: str, mbit: float | None) -> str:
    """A host's link end ("out a"): measured Mbit/s and its share of the shaped rate."""
    return _share_cell(mbit, bed.hosts[end.split()[1]].mbit)


def _share_cell(mbit: float | None, shaped: float) -> str:
    return "—" if mbit is None else f"{mbit:.2f} ({mbit / shaped:.0%})"


def print_splits(run_dirs: list[Path], bed: Testbed) -> None:
    """Per run directory and algorithm: fast/slow bytes per link per pulling-second."""
    for run_dir in run_dirs:
        by_algo: dict[str, list[Record]] = {}
        for record in read_metrics(run_dir):
            by_algo.setdefault(record.algo, []).append(record)
        for algo, records in by_algo.items():
            split = analyse(bed, records)
            rates = " ".join(f"{c} {v:.1f} kB" for c, v in sorted(split["class_rate"].items()))
            busiest = " ".join(f"{e} {_busiest_cell(bed, e, v)}"
                               for e, v in split["busiest_mbit"].items())  # fmt: skip
            probed = " ".join(f"{p} {_share_cell(v, bed.link_mbit(*p.split('<-')))}"
                              for p, v in split["probed_mbit"].items())  # fmt: skip
            print(f"{run_dir.name} {algo}: fast/slow {_num(split['fast_split'], 2)} ({rates}); "
                  f"links at their busiest: {busiest or '—'}; probed: {probed or '—'}")  # fmt: skip


def _num(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main(argv: Sequence[str] | None = None) -> list[RunResult]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="rooms")
    parser.add_argument(
        "--queue-ms", type=float, help="the shapers' buffer in ms of the link's rate (default 400)"
    )
    parser.add_argument("--algos", default=",".join(ALGOS))
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--target-acc", type=float, default=0.9)
    parser.add_argument("--budget", type=float, default=240.0, help="wall seconds per run")
    parser.add_argument("--iterations", type=int, help="a fixed length instead of a target")
    parser.add_argument("--eval-every", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path("runs/netns-compare"))
    parser.add_argument(
        "--analyse", type=Path, nargs="+", metavar="RUN_DIR",
        help="only print the link split of these runs (real, or their `mpls sim --replay`)",
    )  # fmt: skip
    parser.add_argument("up_args", nargs="*", help="more `mpls up` flags, after --")
    args = parser.parse_args(argv)
    hosts = [
        h if args.queue_ms is None else replace(h, queue_ms=args.queue_ms)
        for h in PRESETS[args.preset]
    ]
    if args.analyse:
        try:
            print_splits(args.analyse, Testbed(hosts, PLACEMENT, Path(".")))
        except RunNotFound as exc:
            raise SystemExit(f"error: {exc}") from None
        return []
    reason = available()
    if reason:
        raise SystemExit(f"error: {reason}")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[RunResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="netns-") as tmp,
        Testbed(hosts, PLACEMENT, Path(tmp)) as bed,
    ):
        for seed in (int(s) for s in args.seeds.split(",")):
            for algo in args.algos.split(","):
                result = run_one(bed, algo, seed, args, args.out / "runs")
                results.append(result)
                print(f"seed {seed} {algo}: {result.time_to_target} s to target, "
                      f"fast/slow {_num(result.fast_split, 2)}, hosts {result.host_mbit}", flush=True)  # fmt: skip
        write_json(args.out / "comparison.json", [asdict(r) for r in results])
        (args.out / "comparison.md").write_text(comparison_markdown(results, bed, args.target_acc))
    build_report(
        [Path(r.run_dir) for r in results], args.out / "report", target_acc=args.target_acc
    )
    print((args.out / "comparison.md").read_text())
    return results


if __name__ == "__main__":
    main()
