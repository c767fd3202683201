"""One exception tree, translated once at each boundary (CLI exit code, task log)."""

from __future__ import annotations


class MplsError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 1


class ConfigError(MplsError):
    """A user-supplied option, config file or dataset path is wrong; fixable by the user."""

    exit_code = 2


class RedisUnavailable(MplsError):
    """Redis cannot be reached, refused auth, or went away."""


class InvalidState(MplsError):
    """A value read from Redis failed validation (wrong type, out of range, a version that jumps,
    a record in another worker's name): refused, counted and reported, never adopted."""


class SnapshotError(InvalidState):
    """A layer snapshot failed to decode or verify; it is refused, never averaged in."""


class PeerUnavailable(MplsError):
    """A peer has no published version, or it vanished while being read."""


class RunNotFound(MplsError):
    """A run id (or run directory) that does not exist."""

    exit_code = 2


class SecureRunError(MplsError):
    """A process of a --secure run lacks (or was refused) the credentials it needs."""

    exit_code = 2


class StaleNode(MplsError):
    """Another process published this worker's next version first; reload from Redis."""


class TelemetryError(MplsError):
    """A telemetry line that is not a valid record."""


class RunAborted(MplsError):
    """The run cannot go on (its embedded Redis is gone for good, a disk is full, a worker ran
    out of memory): the summary is written as far as it can be, and the exit status is 1."""


class WorkerFailed(MplsError):
    """A DFL worker cannot go on (out of memory, a run config it cannot load): it says so in its
    state and the launcher ends the run with that line."""


def one_line(exc: BaseException) -> str:
    """An exception as one line of an error message: its type and its message's first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
