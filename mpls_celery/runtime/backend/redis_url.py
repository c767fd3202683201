"""Which Redis to talk to: explicit flag > MPLS_REDIS_URL/REDIS_URL > the newest live local
`mpls up` (its own, possibly embedded, Redis) > redis://127.0.0.1:6379/0. One function so every
process resolves it the same way; `mpls up` itself never borrows another run's Redis."""

from __future__ import annotations

from mpls_celery.runtime.launch.local_runs import live_runs
from mpls_celery.settings import Settings

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def resolve_redis_url(settings: Settings, explicit: str | None = None, local: bool = True) -> str:
    if explicit:
        return explicit
    if settings.redis_url:
        return settings.redis_url
    runs = live_runs(settings) if local else []
    return runs[0].redis_url if runs else DEFAULT_URL


def candidate_urls(settings: Settings, explicit: str | None = None) -> list[str]:
    """Every Redis a read-only command should look in for runs: the one named, else each live
    local run's Redis (newest first) and the default."""
    if explicit or settings.redis_url:
        return [resolve_redis_url(settings, explicit)]
    urls = [r.redis_url for r in live_runs(settings)]
    return list(dict.fromkeys([*urls, DEFAULT_URL]))
