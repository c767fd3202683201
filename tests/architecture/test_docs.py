"""Every reference the code makes to docs/algorithm.md resolves inside the repository: a quoted
section title is a heading there, an equation number (Eq. 1 … Eq. 9) is labelled there, and no
code cites a "spec" the repository does not hold."""

import re

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
