import pytest
import redis

from mpls_celery.runtime.backend.embedded_redis import EmbeddedRedis


def test_fixture_server_answers_and_stores(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.set("mpls:test", b"\x00\x01")
    assert client.get("mpls:test") == b"\x00\x01"


def test_password_and_aof_persist_across_restart(tmp_path):
    server = EmbeddedRedis(password="s3cret", data_dir=tmp_path, appendonly=True).start()
    try:
        assert "s3cret@" in server.url
        client = redis.Redis.from_url(server.url)
        client.set("kept", "yes")
        port = server.port
    finally:
        server.stop()
    again = EmbeddedRedis(password="s3cret", data_dir=tmp_path, appendonly=True, port=port).start()
    try:
        assert redis.Redis.from_url(again.url).get("kept") == b"yes"
        denied = redis.Redis(port=again.port)
        with pytest.raises(redis.exceptions.AuthenticationError):
            denied.get("kept")
    finally:
        again.stop()
