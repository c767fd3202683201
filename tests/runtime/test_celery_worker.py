"""A real `celery -A mpls_celery worker` subprocess runs a task sent over a real Redis."""

import subprocess
import sys
import threading

import pytest

from mpls_celery.runtime.backend.celery_app import celery_config
from mpls_celery.settings import Settings
from tests.conftest import REPO, celery_client, celery_worker, worker_env

pytestmark = pytest.mark.integration


def test_config_is_json_only_and_crash_safe():
    conf = celery_config(Settings(redis_url="redis://example:6379/0"))
    assert conf["accept_content"] == ["json"]
    assert conf["task_serializer"] == "json"
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_url"] == "redis://example:6379/0"


def test_worker_subprocess_runs_a_task_and_answers_inspect_ping(redis_url, tmp_path):
    app = celery_client(redis_url)
    with celery_worker(redis_url, log_path=tmp_path / "worker.log"):
        result = app.send_task("mpls.ping", args=["hello"])
        assert result.get(timeout=30)["payload"] == "hello"
        inspect = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "mpls_celery", "inspect", "ping", "-t", "15"],
            cwd=REPO,
            env=worker_env(redis_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "pong" in inspect.stdout, inspect.stdout + inspect.stderr


def test_each_thread_asks_for_pulls_with_a_producer_of_its_own():
    from mpls_celery.runtime.worker.tasks import _own_producer

    mine = _own_producer()
    assert _own_producer() is mine
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.append(_own_producer()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine and theirs[0].connection is not mine.connection
