"""Which Redis to talk to: explicit flag > MPLS_REDIS_URL/REDIS_URL > a local `mpls up`'s state
file > redis://127.0.0.1:6379/0. One function so every process resolves it the same way."""

from __future__ import annotations

from pathlib import Path

import orjson

from mpls_celery.settings import Settings

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def local_state_file(settings: Settings) -> Path:
    return settings.state_dir / "local.json"


def read_local_state(settings: Settings) -> dict[str, object] | None:
    path = local_state_file(settings)
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def resolve_redis_url(settings: Settings, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    if settings.redis_url:
        return settings.redis_url
    state = read_local_state(settings)
    if state and isinstance(state.get("redis_url"), str):
        return str(state["redis_url"])
    return DEFAULT_URL
