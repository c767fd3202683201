"""Celery task boundary: the only catch-all in the package lives here, and it logs."""

from __future__ import annotations

import logging
import os
import socket

from mpls_celery.runtime.celery_app import app

log = logging.getLogger(__name__)


@app.task(name="mpls.ping")
def ping(payload: str = "pong") -> dict[str, object]:
    """Liveness probe: proves a worker consumes `mpls.nodes` and returns JSON."""
    return {"payload": payload, "host": socket.gethostname(), "pid": os.getpid()}
