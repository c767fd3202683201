"""Golden files that travel between machines. Float kernels (BLAS/oneDNN micro-kernels, FMA,
summation order) differ across CPUs, so a recording's floats are a contract only up to a tolerance;
everything discrete — record kinds and order, workers, iterations, plans, bytes, counts — is
compared exactly. Same machine, same seed stays byte-identical: that is tested separately."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson

# A different CPU moves a loss in its 7th-8th significant digit after a few hundred SGD steps; a
# change of meaning (another mixing order, another plan) moves it in the 2nd-3rd.
REL, ABS = 1e-4, 1e-6
# Floats that carry integers (bytes on the wire): exact like every integer.
EXACT_FLOATS = frozenset({"bytes_pulled"})


class GoldenMismatch(AssertionError):
    """Where a produced record first differs from the recording, and how."""


def assert_same_records(produced: Sequence[bytes], recorded: Sequence[bytes]) -> None:
    """JSON lines compared record by record, in order."""
    if len(produced) != len(recorded):
        raise GoldenMismatch(f"{len(produced)} records produced, {len(recorded)} recorded")
    for line, (ours, theirs) in enumerate(zip(produced, recorded, strict=True), start=1):
        _same(orjson.loads(ours), orjson.loads(theirs), f"line {line}")


def _same(ours: Any, theirs: Any, where: str, exact: bool = False) -> None:
    if isinstance(theirs, dict):
        if not isinstance(ours, dict) or ours.keys() != theirs.keys():
            raise GoldenMismatch(f"{where}: keys {_keys(ours)} != {_keys(theirs)}")
        for key, value in theirs.items():
            _same(ours[key], value, f"{where}.{key}", exact or key in EXACT_FLOATS)
    elif isinstance(theirs, list):
        if not isinstance(ours, list) or len(ours) != len(theirs):
            raise GoldenMismatch(f"{where}: {ours!r} != {theirs!r}")
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _same(a, b, f"{where}[{i}]", exact)
    elif isinstance(theirs, float) and not exact:
        if not isinstance(ours, float) or not math.isclose(ours, theirs, rel_tol=REL, abs_tol=ABS):
            raise GoldenMismatch(f"{where}: {ours!r} is not within {REL:g} of {theirs!r}")
    elif type(ours) is not type(theirs) or ours != theirs:
        raise GoldenMismatch(f"{where}: {ours!r} != {theirs!r}")


def _keys(value: Any) -> list[str]:
    return sorted(value) if isinstance(value, dict) else [type(value).__name__]


FLOAT32_ULP = 2.0**-23  # the values come from float32 kernels: their last bits, relatively


def perturbed(recorded: Sequence[bytes], rel: float = 3 * FLOAT32_ULP) -> list[bytes]:
    """The recording with the last bits of every float moved (by `rel`, alternately up and down),
    as another CPU would move them; integers and integral byte counts untouched."""
    sign = [1.0]

    def move(value: Any, exact: bool = False) -> Any:
        if isinstance(value, dict):
            return {k: move(v, exact or k in EXACT_FLOATS) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v, exact) for v in value]
        if isinstance(value, float) and not exact:
            sign[0] = -sign[0]
            return value * (1.0 + sign[0] * rel)
        return value

    return [orjson.dumps(move(orjson.loads(line))) for line in recorded]
