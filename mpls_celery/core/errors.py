"""The core's one error type. A runtime error (exit 1): where a user's input reaches the core
(building an experiment, reading a topology), that boundary turns it into a ConfigError."""

from __future__ import annotations

from mpls_celery.errors import MplsError


class CoreValueError(MplsError, ValueError):
    """Inputs to a core function are inconsistent (shapes, ranges, names)."""
