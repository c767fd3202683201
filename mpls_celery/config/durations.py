"""'300s', '5m', '1h', '90' → seconds, for --until flags."""

from __future__ import annotations

import re

from mpls_celery.errors import ConfigError

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


def parse_duration(text: str) -> float:
    match = _PATTERN.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"invalid duration {text!r}; use e.g. 300s, 5m or 1h")
    return float(match.group(1)) * _UNITS[match.group(2)]
