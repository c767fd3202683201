"""How well a replay predicted its real run: time to target, accuracy at each of the real run's
evaluations (the replay's curve interpolated there), and bytes per link. Where the accuracy is
far off, the time shift says whether the curve is merely early or late: on the steep part of a
learning curve a few seconds are many points. Two real runs compare the same way, which measures
how far a run is from itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mpls_celery.telemetry.link_traffic import link_traffic
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
    far_points: int  # real evaluations more than FAR points from the replay's curve
    far_max_shift: float | None  # of those, the largest |time shift| (s) to the replay's curve
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
    curves = _curves(real, replay)
    gaps = np.zeros(0) if curves is None else _accuracy_gaps(curves)
    shifts = [] if curves is None else _far_shifts(curves, gaps)
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
        far_points=len(shifts),
        far_max_shift=max((abs(x) for x in shifts), default=None),
        real_mb=s_real.bytes_pulled / 1e6,
        replay_mb=replay_mb,
        link_mb={
            f"{i}<-{j}": (links_real.get((i, j), 0.0) / 1e6, links_replay.get((i, j), 0.0) / 1e6)
            for i, j in sorted(links_real.keys() | links_replay.keys())
        },
    )


FAR = 0.05  # accuracy gap, as a fraction, beyond which a point's time shift is reported


Curves = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _curves(real: list[Record], replay: list[Record]) -> Curves | None:
    """(real t, real acc, replay t, replay acc), the real evaluations cut to the replay's span."""
    ours = [(e.t, e.mean_acc) for e in real if isinstance(e, EvalRecord)]
    theirs = [(e.t, e.mean_acc) for e in replay if isinstance(e, EvalRecord)]
    if not ours or not theirs:
        return None
    t_sim, acc_sim = np.array(theirs).T
    points = [(t, a) for t, a in ours if t_sim[0] <= t <= t_sim[-1]]
    if not points:
        return None
    t_real, acc_real = np.array(points).T
    return t_real, acc_real, t_sim, acc_sim


def _accuracy_gaps(curves: Curves) -> np.ndarray:
    """|replay − real| mean accuracy at each real evaluation inside the replay's time span."""
    t_real, acc_real, t_sim, acc_sim = curves
    gaps: np.ndarray = np.abs(np.interp(t_real, t_sim, acc_sim) - acc_real)
    return gaps


def _far_shifts(curves: Curves, gaps: np.ndarray) -> list[float]:
    """For each real evaluation more than FAR from the replay's curve: when the replay first
    reached that accuracy, minus when the real run had it (s; inf where it never did)."""
    t_real, acc_real, t_sim, acc_sim = curves
    reached = np.maximum.accumulate(acc_sim)
    shifts = []
    for t, acc in zip(t_real[gaps > FAR], acc_real[gaps > FAR], strict=True):
        k = int(np.searchsorted(reached, acc))  # first replay evaluation at or above it
        if k >= len(reached):
            shifts.append(float("inf"))
        elif k == 0:
            shifts.append(float(t_sim[0] - t))
        else:
            lo, hi = reached[k - 1], reached[k]
            frac = (acc - lo) / (hi - lo) if hi > lo else 1.0
            shifts.append(float(t_sim[k - 1] + frac * (t_sim[k] - t_sim[k - 1]) - t))
    return shifts


def replay_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "## Replay against the real run",
        "",
        "| real run | replay | time to target real / replay (s) | error | max / mean accuracy gap (points) | evaluations > 5 points off: count, largest time shift (s) | MB pulled real / replay |",
        "|---|---|---|---|---|---|---|",
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
        shift = r["far_max_shift"]
        far = f"{r['far_points']}" + ("" if shift is None else f", {shift:.1f}")
        lines.append(
            f"| {r['real']} | {r['replay']} | {times} | {error} | {gap} | {far} | "
            f"{r['real_mb']:.1f} / {r['replay_mb']:.1f} |"
        )
    return lines


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
