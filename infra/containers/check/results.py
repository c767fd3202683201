"""What compose-check measured and checked: timed steps, facts, the failures it reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson


class CheckFailed(RuntimeError):
    """One of the checks did not hold; the message says which and what was seen."""


@dataclass
class Results:
    seconds: dict[str, float] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        start = time.monotonic()
        print(f"== {step}", flush=True)
        yield
        self.seconds[step] = round(time.monotonic() - start, 1)
        print(f"   {step}: {self.seconds[step]} s", flush=True)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def wait_until(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    raise CheckFailed(f"{what}: not within {timeout:.0f} s")


def markdown(results: Results) -> str:
    lines = ["# compose-check", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {step} | {s} |" for step, s in results.seconds.items()]
    lines += [
        "",
        "```json",
        orjson.dumps(results.facts, option=orjson.OPT_INDENT_2).decode(),
        "```",
    ]
    return "\n".join(lines) + "\n"
