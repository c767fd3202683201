"""The shape of the house: no import circle anywhere in mpls_celery; the dashboard and the CLI's
read-only commands cannot reach a module that writes run state; only the keys module spells a
Redis key, queue or task name, and only the state modules touch a Redis client of a run's keys."""

import ast
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "mpls_celery"
# modules that write run state in Redis (publish, purge, leases, users, telemetry writes)
WRITERS = {
    "mpls_celery.runtime.store",
    "mpls_celery.runtime.launcher",
    "mpls_celery.runtime.up",
    "mpls_celery.runtime.state.snapshots",
    "mpls_celery.runtime.state.nodes",
    "mpls_celery.runtime.state.events",
    "mpls_celery.runtime.state.lifecycle",
    "mpls_celery.runtime.state.leases",
    "mpls_celery.runtime.state.mailbox",
    "mpls_celery.runtime.worker.node",
    "mpls_celery.runtime.worker.tasks",
    "mpls_celery.runtime.worker.pull",
    "mpls_celery.runtime.backend.acl",
}
READ_ONLY = ["tui.app", "tui.sources", "mpls_celery.cli.runs_cmd", "mpls_celery.cli.tui_cmd"]
# where the code lives that the checks below read (tests may spell keys: they play intruders)
SOURCES = [*PACKAGE.rglob("*.py"), *(REPO / "tui").rglob("*.py"), *(REPO / "scripts").rglob("*.py"),
           *(REPO / "infra").rglob("*.py")]  # fmt: skip
KEYS_MODULE = PACKAGE / "runtime" / "keys.py"
STATE_PACKAGE = PACKAGE / "runtime" / "state"
KEY_LITERAL = re.compile(r"mpls:|^mpls\.(nodes?|pull|ping)\b")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every mpls_celery module this one imports, at the top or inside a function."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.startswith("mpls_celery")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports_of(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_mpls_celery_has_no_import_circle():
    edges = graph()
    # a package's __init__ that re-exports its own modules is not a circle through them
    for name in edges:
        edges[name] = {m for m in edges[name] if not m.startswith(name + ".")}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def modules_loaded_by(*modules: str) -> set[str]:
    """What importing `modules` loads, in a fresh interpreter."""
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_dashboard_and_read_only_commands_cannot_write_run_state():
    loaded = modules_loaded_by(*READ_ONLY)
    assert not WRITERS & loaded, sorted(WRITERS & loaded)


def test_the_cli_and_run_configs_load_without_torch():
    """`mpls status`, `runs`, `down`, `--help` answer in under a second, not after torch's 2-3 s
    import: commands import what trains only when they train."""
    loaded = modules_loaded_by("mpls_celery.cli.app", "mpls_celery.config.load")
    assert "torch" not in loaded


def string_constants(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string in the code, docstrings left out (they may name a key to explain it)."""
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_only_the_keys_module_spells_a_key_a_queue_or_a_task_name():
    found = [
        f"{path.relative_to(REPO)}:{line}: {value[:40]!r}"
        for path in SOURCES
        if path != KEYS_MODULE
        for line, value in string_constants(ast.parse(path.read_text()))
        if KEY_LITERAL.search(value)
    ]
    assert not found, "\n".join(found)


def test_only_the_state_modules_touch_a_runs_raw_redis_client():
    """`x.r` (RunStore's old raw client) and `x._r` of another object appear nowhere else."""
    found = []
    for path in SOURCES:
        if STATE_PACKAGE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("r", "_r"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: .{node.attr}")
    assert not found, "\n".join(found)


def test_the_runtime_is_in_sub_packages_that_show_its_roles():
    runtime = PACKAGE / "runtime"
    top = sorted(p.name for p in runtime.glob("*.py") if p.name != "__init__.py")
    assert top == ["keys.py", "launcher.py", "options.py", "store.py", "up.py"], top
    assert {p.name for p in runtime.iterdir() if p.is_dir() and p.name != "__pycache__"} == {
        "backend", "launch", "state", "worker",
    }  # fmt: skip
