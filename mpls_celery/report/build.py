"""Collect runs and write the report: plots, plus a markdown and JSON table of time-to-target and
speedups across every algorithm of every run given."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from mpls_celery.report.plots import (
    Runs,
    accuracy_plot,
    bytes_plot,
    heatmap_plot,
    link_matrix_plot,
    link_utilisation_plot,
)
from mpls_celery.report.replay_table import compare_replay, replay_markdown, replay_pairs
from mpls_celery.telemetry.link_traffic import link_traffic
from mpls_celery.telemetry.records import Record
from mpls_celery.telemetry.rundir import MANIFEST, SUMMARY, read_json, read_metrics, write_json
from mpls_celery.telemetry.summary import speedups, summarise


def load_runs(run_dirs: list[Path]) -> tuple[Runs, float | None]:
    runs: Runs = {}
    target: float | None = None
    for run_dir in run_dirs:
        manifest = read_json(run_dir / MANIFEST)
        target = target or (manifest.get("options") or {}).get("target_acc")
        by_algo: dict[str, list[Record]] = {}
        for record in read_metrics(run_dir):
            by_algo.setdefault(record.algo, []).append(record)
        prefix = f"{run_dir.name}/" if len(run_dirs) > 1 else ""
        for algo, records in by_algo.items():
            runs[prefix + algo] = records
    return runs, target


def ended_early(run_dirs: list[Path], labels: list[str]) -> dict[str, str]:
    """Label → why its run did not end as asked (a diverged algorithm, a failed run), from the
    runs' summaries: a report of such a run says so beside its numbers."""
    out: dict[str, str] = {}
    for run_dir in run_dirs:
        path = run_dir / SUMMARY
        summary = read_json(path) if path.is_file() else {}
        prefix = f"{run_dir.name}/" if len(run_dirs) > 1 else ""
        diverged = summary.get("diverged") or {}
        for label in (label for label in labels if label.startswith(prefix)):
            algo = label.removeprefix(prefix)
            if algo in diverged:  # "algo: worker W diverged at …"
                out[label] = str(diverged[algo]).removeprefix(f"{algo}: ")
            elif summary.get("failed") and not diverged:  # a runtime run: one algorithm
                out[label] = str(summary.get("reason") or "failed")
    return out


def build_report(
    run_dirs: list[Path], out: Path, worker: int = 0, target_acc: float | None = None
) -> dict[str, Any]:
    runs, manifest_target = load_runs(run_dirs)
    target = target_acc if target_acc is not None else manifest_target
    out.mkdir(parents=True, exist_ok=True)
    plots = [
        accuracy_plot(runs, out, "time"),
        accuracy_plot(runs, out, "epochs"),
        bytes_plot(runs, out),
    ]
    plots += [heatmap_plot(label, records, worker, out) for label, records in runs.items()]
    for label, records in runs.items():  # per-link plots: runtime runs, which measure their links
        plots += [p for p in (link_matrix_plot(label, records, out),
                              link_utilisation_plot(label, records, out)) if p]  # fmt: skip
    summaries = {
        label: next(iter(summarise(records, target).values())) for label, records in runs.items()
    }
    table = {
        "target_acc": target,
        "algorithms": {label: asdict(s) for label, s in summaries.items()},
        "speedup": speedups(summaries),
        "links": {
            label: [asdict(link) | {"mbit": link.mbit} for link in link_traffic(records)]
            for label, records in runs.items()
        },
        "replays": [
            asdict(compare_replay(real, replay, target)) for real, replay in replay_pairs(run_dirs)
        ],
        "plots": [str(p) for p in plots],
        "ended_early": ended_early(run_dirs, list(runs)),
    }
    write_json(out / "report.json", table)
    (out / "report.md").write_text(markdown_table(table))
    return table


def markdown_table(table: dict[str, Any]) -> str:
    lines = [
        "# Report (no target accuracy)"
        if table["target_acc"] is None
        else f"# Report (target accuracy {100 * table['target_acc']:g} %)",
        "",
        "| run | time to target (s) | epochs to target | final mean acc | final avg-model acc | MB pulled |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in table["algorithms"].items():
        ttt = row["time_to_target"]
        acc = row["final_mean_acc"]
        avg = row["final_avg_model_acc"]
        lines.append(
            f"| {label} | {'—' if ttt is None else f'{ttt:.1f}'} | {row['epochs_to_target'] or '—'} | "
            f"{'—' if acc is None else f'{100 * acc:.2f} %'} | "
            f"{'—' if avg is None else f'{100 * avg:.2f} %'} | {row['bytes_pulled'] / 1e6:.1f} |"
        )
    lines += ["", "## Speedup (row reached the target this many times sooner than column)", ""]
    lines += _speedup_lines(table)
    if table["ended_early"]:
        lines += ["", "## Did not end as asked", ""]
        lines += [f"- {label}: {why}" for label, why in table["ended_early"].items()]
    lines += replay_markdown(table["replays"])
    for label, links in table["links"].items():
        if links:
            lines += ["", f"## Links of {label} (puller ← peer)", "",
                      "| puller | peer | MB pulled | pulls | measured Mbit/s |", "|---|---|---|---|---|"]  # fmt: skip
            for link in links:
                speed = "—" if link["mbit"] is None else f"{link['mbit']:.2f}"
                lines.append(f"| {link['puller']} | {link['peer']} | {link['bytes'] / 1e6:.2f} | "
                             f"{link['pulls']} | {speed} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _speedup_lines(table: dict[str, Any]) -> list[str]:
    """The row-by-column table, or one line saying why there is none (a table of dashes says
    nothing)."""
    names, speedup = list(table["algorithms"]), table["speedup"]
    if not any(v is not None for row in speedup.values() for v in row.values()):
        if table["target_acc"] is None:
            return ["None without a target accuracy (`mpls report DIR --target-acc 0.9` sets one)."]
        return ["None: fewer than two runs reached the target."]
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for a in names:
        cells = []
        for b in names:
            value = speedup.get(a, {}).get(b)
            cells.append("—" if a == b or value is None else f"{value:.2f}×")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    return lines
