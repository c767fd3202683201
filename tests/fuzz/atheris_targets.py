"""Coverage-guided fuzzing (atheris/libFuzzer) of what a peer or a file can feed us: the snapshot
decoder and the telemetry parser. Each may only accept or refuse with its own error; any other
exception is a crash. `python -m tests.fuzz.atheris_targets codec|telemetry -runs=N [corpus]`."""

from __future__ import annotations

import contextlib
import sys

import atheris

# Third-party modules first, uninstrumented (instrumenting torch's Python code costs minutes);
# only our own decoding code gets coverage feedback.
import lz4.frame  # noqa: F401
import numpy  # noqa: F401
import orjson  # noqa: F401
import torch

with atheris.instrument_imports():
    from mpls_celery.errors import SnapshotError, TelemetryError
    from mpls_celery.runtime.worker.codec import decode_tensors, encode_tensors
    from mpls_celery.telemetry.records import parse_record

SHAPES = {"w": (8, 5), "b": (8,)}
META = {"run": "r1", "worker": 3, "layer": 1, "version": 7}
SEED = encode_tensors({"w": torch.ones(8, 5), "b": torch.zeros(8)}, META)


def codec(data: bytes) -> None:
    with contextlib.suppress(SnapshotError):
        decode_tensors(data, SHAPES, META)


def telemetry(data: bytes) -> None:
    with contextlib.suppress(TelemetryError):
        parse_record(data)


TARGETS = {"codec": codec, "telemetry": telemetry}

if __name__ == "__main__":
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
