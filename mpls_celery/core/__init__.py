"""Pure algorithms: no I/O, no Celery, no Redis, no Textual. Both engines import from here."""
