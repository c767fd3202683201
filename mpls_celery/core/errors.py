"""The core's one error type; a subclass of the package's ConfigError so the CLI reports it."""

from __future__ import annotations

from mpls_celery.errors import ConfigError


class CoreValueError(ConfigError, ValueError):
    """Inputs to a core function are inconsistent (shapes, ranges, names)."""
