"""Run a preset in the simulator and write its report: the usual plots and tables (`mpls report`)
plus paper.md / paper.json, the paper's numbers beside ours."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpls_celery.config.run_config import RunConfig
from mpls_celery.errors import ConfigError
from mpls_celery.plugins import load_data
from mpls_celery.report.build import build_report
from mpls_celery.repro.presets import Preset
from mpls_celery.sim.engine import SimOptions
from mpls_celery.sim.runner import (
    ProgressFn,
    SimRequest,
    resolve_step_seconds,
    run_simulation,
    sim_profile,
)
from mpls_celery.telemetry.rundir import SUMMARY, read_json, write_json


@dataclass(frozen=True)
class ReproRequest:
    preset: Preset
    seed: int
    jobs: int
    eval_every: float
    data_dir: Path
    runs_dir: Path
    until: float | None = None  # override the preset's horizon (virtual seconds)


def case_config(req: ReproRequest, overrides: dict[str, object]) -> RunConfig:
    return RunConfig().with_overrides(seed=req.seed, **req.preset.config, **overrides)


def check_data(req: ReproRequest) -> None:
    """Fail in one line, before anything runs, when the preset's dataset is not on disk."""
    cfg = case_config(req, req.preset.cases[0].overrides)
    try:
        load_data(cfg.dataset, cfg.data_dir or req.data_dir, cfg.seed)
    except ConfigError as exc:
        raise ConfigError(f"repro {req.preset.name}: {exc}") from None


def run_preset(req: ReproRequest, on_progress: ProgressFn | None = None) -> dict[str, Any]:
    check_data(req)
    preset = req.preset
    run_dirs: list[Path] = []
    for case in preset.cases:
        cfg = case_config(req, case.overrides)
        options = SimOptions(
            algorithm=preset.algorithms[0],
            until=req.until or preset.until,
            epochs=preset.epochs,
            eval_every=req.eval_every,
            step_seconds=resolve_step_seconds(cfg, sim_profile(cfg), None),
            target_acc=preset.target_acc,
            stop_at_target=preset.target_acc is not None,
        )
        request = SimRequest(cfg, preset.algorithms, options, req.data_dir, req.runs_dir, req.jobs)
        run_dirs.append(run_simulation(request, on_progress))
    out = run_dirs[0] / "report"
    table = build_report(run_dirs, out, target_acc=preset.target_acc)
    comparison = paper_comparison(preset, run_dirs)
    write_json(out / "paper.json", comparison)
    (out / "paper.md").write_text(paper_markdown(preset, comparison))
    return {"report": str(out), "runs": [str(d) for d in run_dirs], "table": table, **comparison}


def paper_comparison(preset: Preset, run_dirs: list[Path]) -> dict[str, Any]:
    """One row per algorithm (or per case): the paper's value, ours, and each one's ratio to
    MPLS (times: how many times longer than MPLS; accuracies: points behind MPLS)."""
    rows: dict[str, dict[str, Any]] = {}
    for case, run_dir in zip(preset.cases, run_dirs, strict=True):
        algorithms = read_json(run_dir / SUMMARY)["algorithms"]
        for algo in preset.algorithms:
            row = algorithms.get(algo, {})
            label = case.label or algo
            ours = row.get(preset.metric)
            rows[label] = {
                "paper": preset.paper.get(label),
                "ours": None if ours is None else (ours if _is_time(preset) else 100 * ours),
                "ours_avg_model": _avg_model(preset, row),
                "epochs": row.get("epochs_to_target") if _is_time(preset) else None,
                "mb_pulled": round(row.get("bytes_pulled", 0.0) / 1e6, 1),
            }
    for key in ("paper", "ours"):
        base = rows.get("mpls", {}).get(key)
        for row in rows.values():
            value = row[key]
            if base is None or value is None:
                row[f"{key}_vs_mpls"] = None
            elif _is_time(preset):
                row[f"{key}_vs_mpls"] = round(value / base, 2)
            else:
                row[f"{key}_vs_mpls"] = round(value - base, 2)
    return {"preset": preset.name, "metric": preset.metric, "rows": rows}


def _is_time(preset: Preset) -> bool:
    return preset.metric == "time_to_target"


def _avg_model(preset: Preset, row: dict[str, Any]) -> float | None:
    value = row.get("time_to_target_avg_model" if _is_time(preset) else "final_avg_model_acc")
    return None if value is None else (value if _is_time(preset) else 100 * value)


def paper_markdown(preset: Preset, comparison: dict[str, Any]) -> str:
    what = "time to target (virtual s)" if _is_time(preset) else "accuracy (%)"
    ratio = "× MPLS's time" if _is_time(preset) else "points vs MPLS"
    lines = [
        f"# {preset.summary}",
        "",
        f"| | paper: {what} | ours: {what} | ours, averaged model | paper {ratio} | "
        f"ours {ratio} | epochs | MB pulled |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in comparison["rows"].items():
        cells = [row["paper"], row["ours"], row["ours_avg_model"], row["paper_vs_mpls"],
                 row["ours_vs_mpls"], row["epochs"], row["mb_pulled"]]  # fmt: skip
        lines.append(f"| {label} | " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "— : not reached within the horizon, or not reported by the paper."]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if isinstance(value, float) else str(value)
