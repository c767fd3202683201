"""`mpls up --secure`: one Redis ACL user per DFL worker and one for Celery, created for a run and
deleted after it. Worker i may write only `mpls:<run>:node:<i>:*` (its telemetry stream
included) and its own pull results, and read the rest of the run; the Celery user reaches only
the broker's keys. So a leaked or compromised worker cannot overwrite a peer's model, nor write
a record in another worker's name.

Credentials travel to the processes that act for a worker in a file (MPLS_CREDENTIALS_FILE, mode
0600), never in task messages: a host is given the lines of its own workers only."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import orjson
import redis

from mpls_celery.errors import ConfigError, SecureRunError
from mpls_celery.runtime.backend.private_files import write_private
from mpls_celery.runtime.keys import BROKER_KEY_PATTERNS, RunKeys
from mpls_celery.runtime.state.replies import text
from mpls_celery.settings import Settings

# Read/write key selectors per permission (%R~ / %W~) arrived in Redis 7.0.
MIN_REDIS = (7, 0)
COMMANDS = ("+@all", "-@dangerous", "-@admin")


@dataclass(frozen=True)
class Credentials:
    """Who may act for which worker of one run."""

    run_id: str
    broker_url: str
    workers: Mapping[int, str]

    def worker_url(self, worker: int) -> str:
        if worker not in self.workers:
            raise SecureRunError(
                f"run {self.run_id} is secure and this host holds no credentials for worker "
                f"{worker} (MPLS_CREDENTIALS_FILE)"
            )
        return self.workers[worker]

    def only(self, workers: Iterable[int]) -> Credentials:
        """The subset for one host: hand it the workers it serves, nothing more."""
        keep = set(workers)
        return Credentials(
            self.run_id, self.broker_url, {w: u for w, u in self.workers.items() if w in keep}
        )

    def document(self) -> dict[str, object]:
        return {
            "run": self.run_id,
            "broker": self.broker_url,
            "workers": {str(w): u for w, u in self.workers.items()},
        }

    def save(self, path: Path) -> Path:
        return write_private(path, orjson.dumps(self.document(), option=orjson.OPT_INDENT_2))


def credentials_path(settings: Settings, run_id: str) -> Path:
    return settings.state_dir / "credentials" / f"{run_id}.json"


def load_credentials(path: Path) -> Credentials:
    try:
        doc = orjson.loads(path.read_bytes())
        return Credentials(
            str(doc["run"]), str(doc["broker"]), {int(w): str(u) for w, u in doc["workers"].items()}
        )
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror}") from None
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        raise ConfigError(
            f"credentials file {path} is malformed: expected run, broker and workers"
        ) from None


def worker_user(run_id: str, worker: int) -> str:
    return f"mpls-{run_id}-w{worker}"


def broker_user(run_id: str) -> str:
    return f"mpls-{run_id}-celery"


def worker_rules(run_id: str, worker: int) -> list[str]:
    keys = RunKeys(run_id)
    return [
        *COMMANDS,
        f"~{keys.node_glob(worker)}",  # its head, layers, state, links, lease, its own stream
        f"~{keys.pull_glob(worker)}",  # results of its own aggregation tasks
        f"%R~{keys.everything}",  # the run's config and status, peers' heads, layers, progress
    ]


def broker_rules() -> list[str]:
    return [*COMMANDS, *(f"~{pattern}" for pattern in BROKER_KEY_PATTERNS), "&*"]


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def require_acl_support(client: redis.Redis) -> None:
    raw = str(client.info("server").get("redis_version", "0"))
    version = tuple(int(p) for p in raw.split(".")[:2] if p.isdigit())
    if version < MIN_REDIS:
        raise SecureRunError(
            f"--secure needs Redis >= 7.0 (per-key read/write ACLs); this server is {raw}"
        )


def require_default_password(client: redis.Redis) -> None:
    """ACL users protect nothing while anyone can still log in as the password-less default."""
    user = cast(dict[str, Any], client.acl_getuser("default") or {})
    if "nopass" in [text(f) for f in user.get("flags", [])]:
        raise SecureRunError(
            "--secure: this Redis lets anyone in as the default user without a password; "
            "set requirepass (or leave --redis out to use an embedded one with a password)"
        )


def create_users(client: redis.Redis, url: str, run_id: str, workers: int) -> Credentials:
    """Needs an admin connection (the default user, or one allowed ACL SETUSER)."""
    require_acl_support(client)
    require_default_password(client)
    urls: dict[int, str] = {}
    for worker in range(workers):
        password = secrets.token_urlsafe(24)
        _set_user(client, worker_user(run_id, worker), password, worker_rules(run_id, worker))
        urls[worker] = with_user(url, worker_user(run_id, worker), password)
    password = secrets.token_urlsafe(24)
    _set_user(client, broker_user(run_id), password, broker_rules())
    return Credentials(run_id, with_user(url, broker_user(run_id), password), urls)


def restore_users(client: redis.Redis, creds: Credentials) -> None:
    """Set a run's users again with their passwords (a restarted server forgets runtime ACLs)."""
    for worker, url in creds.workers.items():
        password = unquote(urlsplit(url).password or "")
        _set_user(
            client, worker_user(creds.run_id, worker), password, worker_rules(creds.run_id, worker)
        )
    password = unquote(urlsplit(creds.broker_url).password or "")
    _set_user(client, broker_user(creds.run_id), password, broker_rules())


def delete_users(client: redis.Redis, run_id: str, workers: int) -> None:
    client.acl_deluser(*(worker_user(run_id, w) for w in range(workers)), broker_user(run_id))


def _set_user(client: redis.Redis, user: str, password: str, rules: list[str]) -> None:
    client.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", user, "reset", "on", f">{password}", *rules
    )
