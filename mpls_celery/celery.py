"""`celery -A mpls_celery worker` finds the app here (Celery looks for `<package>.celery.app`)."""

from mpls_celery.runtime.backend.celery_app import app

__all__ = ["app"]
