"""Redis clients from a URL (password and rediss:// TLS included) with a clear error when down."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mpls_celery.errors import ConfigError, RedisUnavailable
from mpls_celery.settings import Settings, load_settings

SCHEMES = ("redis://", "rediss://", "unix://")


def validate_url(url: str) -> str:
    """A Redis URL the client library will take, or a ConfigError that says what is accepted."""
    if not url.startswith(SCHEMES) or len(url) <= len(url.split("://", 1)[0]) + 3:
        raise ConfigError(
            f"{safe_url(url)!r} is not a Redis URL: use {', '.join(SCHEMES)} "
            "(e.g. redis://127.0.0.1:6379/0)"
        )
    return url


def redis_client(
    url: str, settings: Settings | None = None, timeout: float = 5.0, retries: int | None = None
) -> redis.Redis:
    """`retries=0` for readers that poll anyway (the TUI): fail fast, show it, try again.
    rediss:// URLs verify the server against `MPLS_REDIS_CA_CERTS` when it is set."""
    settings = settings or load_settings()
    validate_url(url)
    kwargs: dict[str, object] = {
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,  # a hung server surfaces as an error, never a silent hang
        "health_check_interval": 30,
    }
    if retries is not None:
        kwargs["retry"] = Retry(NoBackoff(), retries)
    if url.startswith("rediss://") and settings.redis_ca_certs:
        kwargs["ssl_ca_certs"] = settings.redis_ca_certs
    return redis.Redis.from_url(url, **kwargs)


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages and logs."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def check_reachable(url: str, settings: Settings | None = None, timeout: float = 1.0) -> None:
    client = redis_client(url, settings, timeout)  # ConfigError first for a malformed URL
    try:
        client.ping()
    except redis.exceptions.AuthenticationError as exc:
        raise RedisUnavailable(f"Redis at {safe_url(url)} refused the password: {exc}") from None
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise RedisUnavailable(f"cannot reach Redis at {safe_url(url)}: {exc}") from None
    except redis.exceptions.ResponseError as exc:
        raise RedisUnavailable(f"Redis at {safe_url(url)} answered: {exc}") from None
    finally:
        client.close()
