"""Celery reads this module (lazily, by name) when the app is first configured: every process
derives identical settings from the environment here; an explicit `app.conf.update` still wins."""

from mpls_celery.runtime.backend.celery_app import celery_config
from mpls_celery.settings import load_settings

globals().update(celery_config(load_settings()))
