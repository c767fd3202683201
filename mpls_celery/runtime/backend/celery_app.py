"""The Celery app. Configuration is loaded lazily (from `celery_settings`, on first use of
`app.conf`), so importing this module reads no environment."""

from __future__ import annotations

from ssl import CERT_REQUIRED
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init
from kombu import Queue  # type: ignore[attr-defined]  # kombu exports it untyped

from mpls_celery.runtime.backend.connection import validate_url
from mpls_celery.runtime.backend.redis_url import resolve_redis_url
from mpls_celery.runtime.keys import NODE_QUEUE, PULL_QUEUE, TASK_ROUTES
from mpls_celery.settings import Settings, load_settings


def celery_config(settings: Settings, redis_url: str | None = None) -> dict[str, Any]:
    url = validate_url(resolve_redis_url(settings, redis_url))  # not a transport module's name
    # kombu's idle BRPOP blocks for polling_interval (1 s by default) and a warm shutdown waits it
    # out; 0.25 s makes stopping 0.8 s faster per process and costs a few idle round trips.
    transport = {"visibility_timeout": settings.visibility_timeout, "polling_interval": 0.25}
    config: dict[str, Any] = {
        "broker_url": url,
        "result_backend": url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "result_expires": 3600,
        "task_default_queue": NODE_QUEUE,
        # A plain `celery -A mpls_celery worker` serves both queues with a thread pool big enough
        # that slices waiting on their pulls never starve the pulls; `mpls up` and `mpls worker`
        # start tuned pools instead (prefork for slices, threads for pulls).
        "task_queues": [Queue(NODE_QUEUE), Queue(PULL_QUEUE)],
        "worker_pool": settings.worker_pool,
        "worker_concurrency": 32,
        "task_routes": TASK_ROUTES,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "imports": ["mpls_celery.runtime.worker.tasks"],
    }
    if url.startswith("rediss://"):  # Celery refuses rediss:// without saying how to verify
        ssl: dict[str, object] = {"ssl_cert_reqs": CERT_REQUIRED}
        if settings.redis_ca_certs:
            ssl["ssl_ca_certs"] = settings.redis_ca_certs
        config["broker_use_ssl"] = ssl
        config["redis_backend_use_ssl"] = ssl
    return config


app = Celery("mpls_celery", set_as_current=False)
app.config_from_object("mpls_celery.runtime.backend.celery_settings")
app.steps["worker"].add("mpls_celery.runtime.worker.launcher_watch:LauncherWatchStep")


@worker_init.connect
@worker_process_init.connect
def _limit_threads(**_: Any) -> None:
    """Many worker processes share a few cores: one torch thread each unless told otherwise."""
    import torch

    torch.set_num_threads(max(1, load_settings().torch_threads))
