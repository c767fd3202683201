"""No pickle anywhere; password-protected Redis for every process; two runs on one Redis."""

import time

import pytest
import redis

from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis
from tests.conftest import celery_client, celery_worker
from tests.runtime.helpers import SMALL, start_run

pytestmark = [pytest.mark.integration]


def test_a_pickled_task_message_is_refused_and_never_runs(redis_url, tmp_path):
    app = celery_client(redis_url)
    log = tmp_path / "worker.log"
    with celery_worker(redis_url, log_path=log):
        pickled = app.send_task("mpls.ping", args=["pickled"], serializer="pickle")
        plain = app.send_task("mpls.ping", args=["json"])
        assert plain.get(timeout=30)["payload"] == "json"  # the worker is up and consuming
        time.sleep(1.0)
        assert pickled.state == "PENDING", "a pickled message must never execute"
    text = log.read_text()
    assert "ContentDisallowed" in text or "Refusing to deserialize" in text


@pytest.mark.slow
def test_password_protected_redis_works_for_launcher_and_workers(tmp_path):
    with EmbeddedRedis(password="s3cret-pw") as server:
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=server.port).get("x")
        run = start_run(server.url, tmp_path, iterations=5)
        summary = run.join()
        assert [w["iteration"] for w in summary["workers"]] == [5, 5, 5]


@pytest.mark.slow
def test_two_concurrent_runs_on_one_redis_do_not_see_each_other(redis_url, tmp_path):
    first = start_run(redis_url, tmp_path / "one", iterations=12)
    second = start_run(
        redis_url, tmp_path / "two", config=SMALL.with_overrides(algorithm="appg"), iterations=8
    )
    a, b = first.join(), second.join()
    assert [w["iteration"] for w in a["workers"]] == [12, 12, 12]
    assert [w["iteration"] for w in b["workers"]] == [8, 8, 8]
    for run, algo, count in ((first, "mpls", 36), (second, "appg", 24)):
        records = run.records()
        iterations = [r for r in records if r.kind == "iteration"]
        assert len(iterations) == count and {r.algo for r in records} == {algo}
    plain = redis.Redis.from_url(redis_url)
    keys = [set(plain.scan_iter(match=r.store.keys.everything)) for r in (first, second)]
    assert keys[0] and keys[1] and not keys[0] & keys[1]
