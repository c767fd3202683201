"""Did a run record each local iteration exactly once? The runtime promises it through kills,
restarts and resumes; the tests, the chaos cases and compose-check all ask it the same way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from mpls_celery.telemetry.records import IterationRecord, Record


@dataclass(frozen=True)
class IterationAccount:
    recorded: int  # distinct (worker, k) pairs
    expected: int
    repeated: list[tuple[int, int]]  # recorded more than once
    missing: list[tuple[int, int]]  # expected, never recorded

    @property
    def exactly_once(self) -> bool:
        """Each expected iteration once, and no other."""
        return not self.repeated and not self.missing and self.recorded == self.expected


def account_iterations(
    records: Iterable[Record], workers: int, iterations: int
) -> IterationAccount:
    """Against iterations 0 … iterations-1 of workers 0 … workers-1."""
    seen = Counter((r.worker, r.k) for r in records if isinstance(r, IterationRecord))
    expected = [(w, k) for w in range(workers) for k in range(iterations)]
    return IterationAccount(
        recorded=len(seen),
        expected=len(expected),
        repeated=sorted(pair for pair, n in seen.items() if n > 1),
        missing=[pair for pair in expected if pair not in seen],
    )
