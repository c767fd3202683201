"""Every reference the code makes to docs/algorithm.md resolves inside the repository: a quoted
section title is a heading there, an equation number (Eq. 1 … Eq. 9) is labelled there, and no
code cites a "spec" the repository does not hold."""

import re
from collections.abc import Callable
from pathlib import Path

from tests.architecture.test_imports import SOURCES
from tests.conftest import REPO

ALGORITHM = REPO / "docs" / "algorithm.md"
SECTION = re.compile(r'docs/algorithm\.md,\s*"([^"]+)"')
EQUATION = re.compile(r"\bEq\.\s*(\d+)(?:\s*[-–]\s*(\d+))?")
OUTSIDE_SPEC = re.compile(r"\bspec step\b|\bspec \"|\bthe spec\b")


def headings() -> list[str]:
    return [line.lstrip("#").strip() for line in ALGORITHM.read_text().splitlines()
            if line.startswith("#")]  # fmt: skip


def defined_equations() -> set[int]:
    return {int(n) for n in re.findall(r"\(Eq\. (\d+)\)", ALGORITHM.read_text())}


def code() -> list[tuple[str, str]]:
    return [(str(path.relative_to(REPO)), " ".join(path.read_text().split())) for path in SOURCES]


def test_every_cited_section_exists():
    titles = headings()
    missing = [
        f"{where}: {title!r}"
        for where, text in code()
        for title in SECTION.findall(text)
        if not any(heading == title or heading.startswith(title) for heading in titles)
    ]
    assert not missing, "\n".join(missing)


def test_every_cited_equation_is_labelled():
    labelled = defined_equations()
    assert labelled == set(range(1, 10)), sorted(labelled)
    missing = []
    for where, text in code():
        for low, high in EQUATION.findall(text):
            numbers = range(int(low), int(high or low) + 1)
            missing += [f"{where}: Eq. {n}" for n in numbers if n not in labelled]
    assert not missing, "\n".join(missing)


def test_no_code_cites_a_spec_outside_the_repository():
    found = [f"{where}: {m}" for where, text in code() for m in OUTSIDE_SPEC.findall(text)]
    assert not found, "\n".join(found)


DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
QUOTED_PATH = re.compile(r"`([\w./-]+/[\w.-]+\.(?:py|yml|yaml|md|toml|json))`")
SCRIPT = re.compile(r"\bscripts[/.]((?:\w+/)*\w++(?:\.sh)?)(?!\*)")  # a module, or a shell script
PACKAGE = REPO / "mpls_celery"


def unresolved(pattern: re.Pattern[str], resolves: Callable[[Path, str], bool]) -> list[str]:
    return [
        f"{doc.name}: {found}"
        for doc in DOCS
        for found in pattern.findall(doc.read_text())
        if not resolves(doc, found)
    ]


def test_every_link_in_the_docs_resolves():
    broken = unresolved(LINK, lambda doc, target: "://" in target or (doc.parent / target).exists())
    assert not broken, "\n".join(broken)


def test_every_file_the_docs_name_exists():
    """A path in backticks is a file of the repository or of the package (`runtime/keys.py`)."""
    missing = unresolved(
        QUOTED_PATH, lambda _, path: (REPO / path).exists() or (PACKAGE / path).exists()
    )
    assert not missing, "\n".join(missing)


def test_every_script_the_docs_run_exists():
    missing = unresolved(SCRIPT, lambda _, name: (REPO / "scripts" / _script_file(name)).exists())
    assert not missing, "\n".join(missing)


def _script_file(name: str) -> str:
    """`gpu/acceptance.sh` as written; `bench_sim` (scripts/bench_sim, scripts.bench_sim) a module."""
    return name if name.endswith(".sh") else f"{name}.py"
