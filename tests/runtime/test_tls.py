"""rediss:// end to end: a TLS-only Redis with a password and a CA made in the test; `mpls up`, its
Celery workers and the TUI's source all verify the server against MPLS_REDIS_CA_CERTS. The server is
Redis's own TLS where the redis-server here has it (Debian's), else a TLS terminator in front of a
plain one (the wheels' servers are built without TLS): the clients' side, which is ours, is the
same real TLS either way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import redis
import trustme

from mpls_celery.errors import RedisUnavailable
from mpls_celery.runtime.backend.connection import check_reachable
from mpls_celery.runtime.backend.embedded_redis import (
    EmbeddedRedis,
    TlsFiles,
    find_redis_server,
    supports_tls,
)
from tests.conftest import SMALL_UP, run_mpls, worker_env
from tests.tls_terminator import TlsTerminator

pytestmark = [pytest.mark.integration]
PASSWORD = "tls-test-password"


def write_tls_files(directory: Path, ca: trustme.CA) -> TlsFiles:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(
        cert=directory / "server.pem", key=directory / "server.key", ca=directory / "ca.pem"
    )
    cert.cert_chain_pems[0].write_to_path(str(files.cert))
    cert.private_key_pem.write_to_path(str(files.key))
    ca.cert_pem.write_to_path(str(files.ca))
    return files


@dataclass(frozen=True)
class TlsRedis:
    url: str
    ca: Path


@pytest.fixture(params=["native", "terminated"])
def tls_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TlsRedis]:
    files = write_tls_files(tmp_path, trustme.CA())
    if request.param == "native":
        if not supports_tls(find_redis_server()):
            pytest.skip(f"{find_redis_server()} was built without TLS (Debian's has it)")
        with EmbeddedRedis(password=PASSWORD, tls=files) as server:
            yield TlsRedis(server.url, files.ca)
        return
    with (
        EmbeddedRedis(password=PASSWORD) as plain,
        TlsTerminator(plain.port, files.cert, files.key) as tls,
    ):
        yield TlsRedis(f"rediss://:{PASSWORD}@127.0.0.1:{tls.port}/0", files.ca)


def test_tls_server_refuses_plain_text_and_unknown_certificates(tls_redis, tmp_path, monkeypatch):
    assert tls_redis.url.startswith("rediss://")
    plain = tls_redis.url.replace("rediss://", "redis://")
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(plain, socket_connect_timeout=1).ping()
    # a CA that did not sign the server's certificate: one clear line, no traceback
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("MPLS_REDIS_CA_CERTS", str(other))
    with pytest.raises(RedisUnavailable, match="certificate verify failed"):
        check_reachable(tls_redis.url)
    monkeypatch.setenv("MPLS_REDIS_CA_CERTS", str(tls_redis.ca))
    check_reachable(tls_redis.url)


def test_mpls_up_workers_and_tui_over_tls(tls_redis, tmp_path, monkeypatch):
    ca = str(tls_redis.ca)
    env = worker_env(
        tls_redis.url,
        MPLS_REDIS_CA_CERTS=ca,
        MPLS_RUNS_DIR=str(tmp_path / "runs"),
        MPLS_STATE_DIR=str(tmp_path),
    )
    done = run_mpls("up", *SMALL_UP, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = orjson.loads(done.stdout)
    assert [w["iteration"] for w in summary["workers"]] == [4, 4, 4]

    from mpls_celery.cli.tui_cmd import open_redis_source

    monkeypatch.setenv("MPLS_REDIS_CA_CERTS", ca)
    dashboard = open_redis_source(tls_redis.url).fetch(summary["run_id"], selected=0)
    assert [row.k for row in dashboard.workers] == [4, 4, 4]
    assert dashboard.status == "finished"
