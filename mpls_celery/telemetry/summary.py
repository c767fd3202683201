"""Summaries from records: time to target, final accuracies, bytes, and pairwise speedups."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from mpls_celery.telemetry.records import EvalRecord, IterationRecord, Record


@dataclass(frozen=True)
class AlgoSummary:
    time_to_target: float | None  # first evaluation whose mean worker accuracy reaches the target
    epochs_to_target: int | None
    time_to_target_avg_model: float | None  # the same for the accuracy of the averaged model
    epochs_to_target_avg_model: int | None
    final_mean_acc: float | None
    final_avg_model_acc: float | None
    best_mean_acc: float | None
    bytes_pulled: float
    iterations: int
    duration: float


def summarise(records: Iterable[Record], target_acc: float | None) -> dict[str, AlgoSummary]:
    evals: dict[str, list[EvalRecord]] = {}
    iters: dict[str, list[IterationRecord]] = {}
    for record in records:
        if isinstance(record, EvalRecord):
            evals.setdefault(record.algo, []).append(record)
        elif isinstance(record, IterationRecord):
            iters.setdefault(record.algo, []).append(record)
    out = {}
    for algo in list(dict.fromkeys([*evals, *iters])):
        points, steps = evals.get(algo, []), iters.get(algo, [])
        hit = first_at(points, target_acc, lambda e: e.mean_acc)
        hit_avg = first_at(points, target_acc, lambda e: e.avg_model_acc)
        last = points[-1] if points else None
        out[algo] = AlgoSummary(
            time_to_target=hit.t if hit else None,
            epochs_to_target=hit.epoch if hit else None,
            time_to_target_avg_model=hit_avg.t if hit_avg else None,
            epochs_to_target_avg_model=hit_avg.epoch if hit_avg else None,
            final_mean_acc=last.mean_acc if last else None,
            final_avg_model_acc=last.avg_model_acc if last else None,
            best_mean_acc=max((e.mean_acc for e in points), default=None),
            bytes_pulled=sum(r.bytes_pulled for r in steps),
            iterations=len(steps),
            duration=max([r.t for r in steps] + [e.t for e in points], default=0.0),
        )
    return out


def first_at(
    evals: list[EvalRecord], target: float | None, accuracy: Callable[[EvalRecord], float]
) -> EvalRecord | None:
    if target is None:
        return None
    return next((e for e in evals if accuracy(e) >= target), None)


def speedups(summaries: dict[str, AlgoSummary]) -> dict[str, dict[str, float | None]]:
    """speedup[a][b] = how many times sooner a reached the target than b."""
    table: dict[str, dict[str, float | None]] = {}
    for a, sa in summaries.items():
        table[a] = {}
        for b, sb in summaries.items():
            if a == b:
                continue
            ok = sa.time_to_target and sb.time_to_target
            table[a][b] = round(sb.time_to_target / sa.time_to_target, 4) if ok else None  # type: ignore[operator]
    return table


def summary_document(
    records: Iterable[Record], target_acc: float | None, **extra: Any
) -> dict[str, Any]:
    per_algo = summarise(records, target_acc)
    return {
        "target_acc": target_acc,
        "algorithms": {name: asdict(s) for name, s in per_algo.items()},
        "speedup": speedups(per_algo),
        **extra,
    }
