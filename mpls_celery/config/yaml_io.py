"""Safe YAML reading with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from mpls_celery.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def shown(value: object, limit: int = 240) -> str:
    """A user's argument in a message: whole when short, else its start and its length."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{shown(path)}: not a text file (a run config is UTF-8 YAML)") from None
    except OSError as exc:
        raise ConfigError(f"{shown(path)}: cannot read ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{shown(path)}: malformed YAML{where}: {problem}") from None


def read_mapping(path: Path) -> dict[str, Any]:
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{shown(path)}: expected a mapping at the top level, got {type(data).__name__}"
        )
    return data


def describe_validation_error(source: str, exc: ValidationError) -> str:
    """'file: field.sub: message' for the first problem (plus a count of the rest; no field for
    a check across fields); our own validators' messages without pydantic's 'Value error, '."""
    errors = exc.errors()
    first = errors[0]
    where = [source, ".".join(str(part) for part in first["loc"])]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = first["msg"].removeprefix("Value error, ")
    return ": ".join(part for part in where if part) + f": {message}{more}"


def validate(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(source, exc)) from None
