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


class SnapshotError(MplsError):
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
    """The run cannot go on (e.g. its embedded Redis is gone for good)."""
