"""How well a replay predicted its real run: time to target, accuracy at each of the real run's
evaluations (the replay's curve interpolated there), and bytes per link."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mpls_celery.telemetry.links import link_traffic
from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record
from mpls_celery.telemetry.rundir import MANIFEST, read_json, read_metrics
from mpls_celery.telemetry.summary import summarise


@dataclass(frozen=True)
class ReplayComparison:
    real: str
    replay: str
    real_time_to_target: float | None
    replay_time_to_target: float | None
    time_error: float | None  # (replay − real) / real
    max_acc_gap: float | None  # largest |replay − real| mean accuracy at the real evaluations
    mean_acc_gap: float | None
    real_mb: float
    replay_mb: float
    link_mb: dict[str, tuple[float, float]]  # "puller<-peer" → (real MB, replay MB)
    # MB figures cover the real run's span only


def replay_pairs(run_dirs: list[Path]) -> list[tuple[Path, Path]]:
    """(real, replay) for every replay among the runs whose real run is also given."""
    given = {d.resolve(): d for d in run_dirs}
    pairs = []
    for d in run_dirs:
        source = read_json(d / MANIFEST).get("replay_of")
        if source and Path(source).resolve() in given:
            pairs.append((given[Path(source).resolve()], d))
    return pairs


def compare_replay(real_dir: Path, replay_dir: Path, target: float | None) -> ReplayComparison:
    real, replay = list(read_metrics(real_dir)), list(read_metrics(replay_dir))
    s_real = next(iter(summarise(real, target).values()))
    s_replay = next(iter(summarise(replay, target).values()))
    gaps = _accuracy_gaps(real, replay)
    t_real, t_replay = s_real.time_to_target, s_replay.time_to_target
    # bytes over the same span: a replay runs past the real run's end (room to reach a target)
    end = s_real.duration
    within = [r for r in replay if not isinstance(r, IterationRecord) or r.t <= end]
    replay_mb = sum(r.bytes_pulled for r in within if isinstance(r, IterationRecord)) / 1e6
    links_real = {(x.puller, x.peer): x.bytes for x in link_traffic(real)}
    links_replay = {(x.puller, x.peer): x.bytes for x in link_traffic(within)}
    return ReplayComparison(
        real=real_dir.name,
        replay=replay_dir.name,
        real_time_to_target=t_real,
        replay_time_to_target=t_replay,
        time_error=(t_replay - t_real) / t_real if t_real and t_replay else None,
        max_acc_gap=float(np.max(gaps)) if gaps.size else None,
        mean_acc_gap=float(np.mean(gaps)) if gaps.size else None,
        real_mb=s_real.bytes_pulled / 1e6,
        replay_mb=replay_mb,
        link_mb={
            f"{i}<-{j}": (links_real.get((i, j), 0.0) / 1e6, links_replay.get((i, j), 0.0) / 1e6)
            for i, j in sorted(links_real.keys() | links_replay.keys())
        },
    )


def _accuracy_gaps(real: list[Record], replay: list[Record]) -> np.ndarray:
    """|replay − real| mean accuracy at each real evaluation inside the replay's time span."""
    ours = [(e.t, e.mean_acc) for e in real if isinstance(e, EvalRecord)]
    theirs = [(e.t, e.mean_acc) for e in replay if isinstance(e, EvalRecord)]
    if not ours or not theirs:
        return np.zeros(0)
    t_sim, acc_sim = np.array(theirs).T
    points = [(t, a) for t, a in ours if t_sim[0] <= t <= t_sim[-1]]
    if not points:
        return np.zeros(0)
    t_real, acc_real = np.array(points).T
    gaps: np.ndarray = np.abs(np.interp(t_real, t_sim, acc_sim) - acc_real)
    return gaps


def replay_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Replay against the real run",
        "",
        "| real run | replay | time to target real / replay (s) | error | max / mean accuracy gap (points) | MB pulled real / replay |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        real_t, sim_t = r["real_time_to_target"], r["replay_time_to_target"]
        times = f"{_num(real_t)} / {_num(sim_t)}"
        error = "—" if r["time_error"] is None else f"{100 * r['time_error']:+.1f} %"
        gap = (
            "—"
            if r["max_acc_gap"] is None
            else f"{100 * r['max_acc_gap']:.1f} / {100 * r['mean_acc_gap']:.1f}"
        )
        lines.append(
            f"| {r['real']} | {r['replay']} | {times} | {error} | {gap} | "
            f"{r['real_mb']:.1f} / {r['replay_mb']:.1f} |"
        )
    return lines


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
