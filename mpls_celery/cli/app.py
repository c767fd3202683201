"""The `mpls` command. Commands are thin: parse, call a service, print. Errors are translated here,
once: an MplsError, a usage error or an OS error (a path that cannot be written) becomes one line
on stderr and exit 2 (usage/config/path) or 1."""

from __future__ import annotations

import sys

import typer
from typer import Abort, Exit, TyperException

from mpls_celery.cli import (
    config_cmd,
    credentials_cmd,
    data_cmd,
    down_cmd,
    model_cmd,
    profile_cmd,
    redis_cmd,
    report_cmd,
    repro_cmd,
    runs_cmd,
    sim_cmd,
    topology_cmd,
    tui_cmd,
    up_cmd,
    worker_cmd,
)
from mpls_celery.errors import MplsError
from mpls_celery.interrupts import Terminated

app = typer.Typer(
    name="mpls",
    help="Decentralized federated learning with MPLS on Celery + Redis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(topology_cmd.app, name="topology")
app.add_typer(profile_cmd.app, name="profile")
app.add_typer(config_cmd.app, name="config")
app.add_typer(redis_cmd.app, name="redis")
app.add_typer(model_cmd.app, name="model")
app.add_typer(data_cmd.app, name="data")
app.command("up")(up_cmd.up)
app.command("status")(runs_cmd.status)
app.command("runs")(runs_cmd.runs)
app.command("down")(down_cmd.down)
app.command("worker")(worker_cmd.worker)
app.command("credentials")(credentials_cmd.credentials)
app.command("tui")(tui_cmd.tui)
app.command("sim")(sim_cmd.sim)
app.command("report")(report_cmd.report)
app.command("repro")(repro_cmd.repro)


@app.command()
def version() -> None:
    """Print the installed version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("mpls-celery"))


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    sys.exit(code)


def _fail_click(exc: TyperException) -> None:
    if type(exc).__name__ == "NoArgsIsHelpError":
        sys.exit(0)  # the help text is already printed
    code = int(getattr(exc, "exit_code", 1))
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} --help')" if code == 2 and ctx is not None else ""
    _fail(getattr(exc, "format_message", exc.__str__)() + hint, code)


def main(argv: list[str] | None = None) -> None:
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="mpls", standalone_mode=False)
    except (Abort, KeyboardInterrupt):
        _fail("interrupted", 130)
    except Terminated:  # SIGTERM: what was running has been stopped (mpls sim's workers too)
        _fail("terminated", 143)
    except Exit as exc:
        sys.exit(exc.exit_code)
    except TyperException as exc:  # Click's errors, through Typer's public base class
        _fail_click(exc)
    except MplsError as exc:
        _fail(str(exc), exc.exit_code)
    except OSError as exc:  # a folder to write that cannot be (--out, MPLS_RUNS_DIR, a full disk)
        _fail(_os_error(exc), 2 if isinstance(exc, PATH_ERRORS) else 1)
    sys.exit(result if isinstance(result, int) else 0)


# a path given that cannot be used as one: the user's to fix, like any other input
PATH_ERRORS = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def _os_error(exc: OSError) -> str:
    """'PATH: reason', as the shell says it."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason
