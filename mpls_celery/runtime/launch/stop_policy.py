"""When a run ends, and whether that is a failure: the summary is written either way; a failure
makes `mpls up` print one `error:` line and exit 1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.telemetry.records import EvalRecord
from mpls_celery.telemetry.states import NodeState, RunState, RunStatus, WorkerState

WORKERS_EXITED = "local Celery worker processes kept exiting (see the run's logs/)"
NOTHING_DONE = "no worker completed an iteration"


@dataclass(frozen=True)
class Stop:
    reason: str
    failed: bool = False

    def also(self, problem: str) -> Stop:
        """The same end, failed for `problem` too (said once)."""
        reason = self.reason if problem in self.reason else f"{self.reason}; {problem}"
        return Stop(reason, failed=True)


def stop_reason(
    status: RunStatus,
    nodes: Sequence[NodeState],
    elapsed: float,
    options: RuntimeOptions,
    last_eval: EvalRecord | None,
    any_dead: bool,
) -> Stop | None:
    """None while the run should go on."""
    if status.state is not RunState.RUNNING:
        return Stop(f"run marked {status.state or '?'}")
    failed = [(w, n) for w, n in enumerate(nodes) if n.state is WorkerState.FAILED]
    if failed:
        worker, node = failed[0]
        return Stop(f"worker {worker} failed: {node.error or 'no reason given'}", failed=True)
    alive = [n for n in nodes if n.state is not WorkerState.DEAD]
    if len(alive) < options.min_workers:
        return Stop(
            f"only {len(alive)} workers alive (fewer than --min-workers {options.min_workers})"
        )
    if all(n.done for n in alive):
        return Stop("every worker finished" if not any_dead else "every live worker finished")
    if options.until_seconds is not None and elapsed >= options.until_seconds:
        return Stop("time limit reached")
    if options.target_acc is not None and last_eval and last_eval.mean_acc >= options.target_acc:
        return Stop("target accuracy reached")
    return None
