"""The shape of the house: no import circle anywhere in mpls_celery, and the dashboard and the
CLI's read-only commands cannot reach a module that writes run state."""

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "mpls_celery"
# modules that write run state in Redis (publish, purge, leases, users, telemetry writes)
WRITERS = {
    "mpls_celery.runtime.store",
    "mpls_celery.runtime.launcher",
    "mpls_celery.runtime.node",
    "mpls_celery.runtime.tasks",
    "mpls_celery.runtime.aggregation",
    "mpls_celery.runtime.leases",
    "mpls_celery.runtime.mailbox",
    "mpls_celery.runtime.acl",
}
READ_ONLY = ["tui.app", "tui.sources", "mpls_celery.cli.runs_cmd", "mpls_celery.cli.tui_cmd"]


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


def test_dashboard_and_read_only_commands_cannot_write_run_state():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in READ_ONLY)
        + "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not WRITERS & set(loaded), sorted(WRITERS & set(loaded))
