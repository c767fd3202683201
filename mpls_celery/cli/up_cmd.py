"""`mpls up`: train a run on this machine (and any Celery workers sharing its Redis)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from mpls_celery.cli import run_options as ro
from mpls_celery.cli.detach import start_in_background
from mpls_celery.cli.identifiers import check_run_id
from mpls_celery.cli.output import console, percent, print_json, print_where
from mpls_celery.config.durations import parse_duration
from mpls_celery.config.run_config import RunConfig
from mpls_celery.errors import ConfigError, MplsError
from mpls_celery.runtime.backend.connection import validate_url
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.settings import Settings, load_settings
from mpls_celery.telemetry.worker_table import node_rows, rich_worker_table

if TYPE_CHECKING:  # the launcher brings torch: imported when a run starts, not for --help
    from mpls_celery.runtime.launcher import Snapshot, UpRequest

DEAD_AFTER = 30.0  # the tables show a worker silent this long as dead


def workers_table(snap: Snapshot) -> Table:
    ev = snap.last_eval
    acc = (
        f" · mean acc {100 * ev.mean_acc:.1f} % · avg-model {100 * ev.avg_model_acc:.1f} %"
        if ev
        else ""
    )
    title = f"run {snap.run_id} · {snap.status.state or '?'} · {snap.elapsed:.0f}s{acc}"
    return rich_worker_table(node_rows(snap.nodes, time.time(), DEAD_AFTER), title)


# Demo defaults for a bare `mpls up` (no --config): enough signal to learn in a minute. The paper's
# lr 0.01 needs thousands of iterations under Eq. 1 (docs/results.md, "The iteration semantics");
# `mpls sim` keeps it.
DEMO_LR, DEMO_ITERATIONS = 0.1, 100


@ro.with_run_flags
def up(
    flags: ro.RunFlags,
    algo: ro.AlgoOpt = None,
    network: Annotated[
        str | None,
        typer.Option(
            help="Emulate a profile: uniform | random | paper30 | YAML; 'none' measures real links."
        ),
    ] = None,
    iterations: Annotated[
        int | None, typer.Option(min=1, help="Local iterations per worker.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Stop after this wall time: 90s, 10m.")] = None,
    target_acc: Annotated[
        float | None, typer.Option(min=0, max=1, help="Stop at this mean accuracy.")
    ] = None,
    eval_every: Annotated[
        float,
        typer.Option(min=0.5, help="Wall seconds between evaluations of every worker's model."),
    ] = 5.0,
    redis: Annotated[
        str | None,
        typer.Option("--redis", help="Redis URL (default: REDIS_URL, else an embedded server)."),
    ] = None,
    local_workers: Annotated[
        bool, typer.Option(help="Start Celery workers on this machine.")
    ] = True,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Slice processes of the local worker.")
    ] = None,
    slice_seconds: Annotated[
        float | None, typer.Option(help="Time budget of one slice task.")
    ] = None,
    pull_deadline: Annotated[
        float | None, typer.Option(help="Longest wait for one aggregation (s).")
    ] = None,
    queue_mode: Annotated[
        str | None, typer.Option(help="shared | per-worker (mpls.node.<i> queues).")
    ] = None,
    dead_after: Annotated[
        float | None,
        typer.Option(help="A worker silent this long is dead (default: the peer timeout, 30 s)."),
    ] = None,
    min_workers: Annotated[
        int | None, typer.Option(min=1, help="End the run when fewer workers are alive.")
    ] = None,
    start_timeout: Annotated[
        float | None,
        typer.Option(help="A worker not through its first iteration is dead only after this (s)."),
    ] = None,
    resource_wait: Annotated[
        float | None,
        typer.Option(help="Longest pause while Redis refuses writes (disk full, maxmemory) (s)."),
    ] = None,
    launcher_grace: Annotated[
        float | None,
        typer.Option(help="Seconds the Celery processes go on after this launcher dies (s)."),
    ] = None,
    save_workers: Annotated[
        bool,
        typer.Option(help="Also save each worker's final model (models/ALGORITHM/worker-I)."),
    ] = False,
    link_speeds: Annotated[
        str | None,
        typer.Option(
            help="probed: time each link alone before the first pull (default); achieved: "
            "follow the rates pulls get (EWMA)."
        ),
    ] = None,
    secure: Annotated[
        bool,
        typer.Option(
            help="One Redis ACL user per DFL worker (Redis >= 7): a worker may write only its "
            "own keys. Needs a password on the default user (the embedded Redis gets one)."
        ),
    ] = False,
    detach: Annotated[
        bool,
        typer.Option(
            help="Run in the background: returns once the run has started (or fails with its "
            "error); follow it with mpls status/tui."
        ),
    ] = False,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Re-attach to run RUN whose launcher died (its config comes from Redis): adopt "
            "or restart its processes, record what its workers did meanwhile, go on to the end."
        ),
    ] = None,
    run_id: Annotated[str | None, typer.Option(hidden=True)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final summary as JSON only.")
    ] = False,
) -> None:
    """Start a run: Redis (reachable or embedded), Celery workers, N DFL workers; ends with a summary."""
    from mpls_celery.plugins import add_import_dirs
    from mpls_celery.runtime.launcher import UpRequest, new_run_id

    if redis:
        validate_url(redis)
    for given in (resume, run_id):
        if given is not None:
            check_run_id(given)
    settings = load_settings()
    if resume is not None:
        if flags.given():
            raise ConfigError(
                f"--resume takes run {resume}'s own config; leave out {flags.given()[0]}"
            )
        imports = tuple(add_import_dirs(flags.import_dirs()))
        request = UpRequest(RunConfig(), RuntimeOptions(), settings, redis, local_workers, concurrency,
                            resume, eval_every, resume=True, import_dirs=imports)  # fmt: skip
        _start(request, as_json, detach, settings)
        return
    cfg = flags.to_config(
        {"training.lr": DEMO_LR, "training.iterations": DEMO_ITERATIONS},
        algorithm=algo,
        **{"network.profile": network, "training.iterations": iterations},
    )
    options = RuntimeOptions.for_run(
        cfg,
        iterations_given=iterations is not None,
        until_seconds=parse_duration(until) if until else None,
        target_acc=target_acc,
        slice_seconds=slice_seconds,
        pull_deadline=pull_deadline,
        queue_mode=queue_mode,
        dead_after=dead_after,
        min_workers=min_workers,
        secure=secure,
        link_speeds=link_speeds,
        start_timeout=start_timeout,
        resource_wait=resource_wait,
        launcher_grace=launcher_grace,
        save_workers=save_workers,
    )
    rid = run_id or new_run_id()
    imports = tuple(str(p.resolve()) for p in flags.import_dirs())
    request = UpRequest(cfg, options, settings, redis, local_workers, concurrency, rid, eval_every,
                        import_dirs=imports)  # fmt: skip
    _start(request, as_json, detach, settings)


def _start(request: UpRequest, as_json: bool, detach: bool, settings: Settings) -> None:
    """Run it here (a live table, or JSON at the end), or in the background."""
    from mpls_celery.runtime.up import run_up

    if detach:
        start_in_background(request.run_id, settings, as_json)
        return
    cfg = request.config
    if as_json:
        summary = run_up(request)
        print_json(summary)
        _fail_if_failed(summary)
        return
    what = (
        "re-attaching"
        if request.resume
        else (
            f"{cfg.workers} workers, {cfg.algorithm}, {cfg.model}/{cfg.dataset_label}, topology {cfg.topology.kind}"
        )
    )
    console.print(f"run {request.run_id}: {what}")
    with Live(console=console, auto_refresh=False, transient=False) as live:

        def show(snap: Snapshot) -> None:
            if snap.elapsed < 1 or not console.is_terminal:
                return
            live.update(workers_table(snap), refresh=True)

        summary = run_up(request, on_poll=show)
    print_up_summary(summary)
    _fail_if_failed(summary)


def _fail_if_failed(summary: dict[str, Any]) -> None:
    """The summary is written either way; the exit status says the run did not end normally."""
    if summary.get("failed"):
        raise MplsError(f"run {summary['run_id']}: {summary['reason']}")


def print_up_summary(summary: dict[str, Any]) -> None:
    table = Table(title=f"run {summary['run_id']} — {summary['reason']}")
    for col in ("worker", "iterations", "final accuracy", "state"):
        table.add_column(col)
    for row in summary["workers"]:
        table.add_row(
            str(row["worker"]),
            str(row["iteration"]),
            "—" if row["accuracy"] is None else f"{100 * row['accuracy']:.2f} %",
            str(row["state"]),
        )
    console.print(table)
    mean, avg = summary["final_mean_acc"], summary["final_avg_model_acc"]
    console.print(
        f"mean accuracy {percent(mean)} · averaged model {percent(avg)} · {summary['wall_seconds']:.0f} s"
    )
    print_where(summary)
