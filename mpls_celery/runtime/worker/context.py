"""What every process of a run derives once from the run's Redis config (cached per process)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import pydantic
import redis

from mpls_celery.config.run_config import RunConfig
from mpls_celery.devices import limit_gpu_memory
from mpls_celery.errors import ConfigError, InvalidState, SecureRunError
from mpls_celery.experiment import Experiment, build_experiment
from mpls_celery.runtime.backend.connection import redis_client
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.layout import Layout, layout_from_json
from mpls_celery.settings import Settings, load_settings

_EXPERIMENTS: dict[str, Experiment] = {}
_BUILDING = threading.RLock()


@dataclass
class RunContext:
    store: RunStore
    config: RunConfig
    options: RuntimeOptions
    layout: Layout
    started_at: float
    model_hash: str = ""  # the launcher's initial weights; a worker that builds others refuses

    @classmethod
    def load(cls, store: RunStore) -> RunContext:
        """ConfigError when the run's config in Redis is not one (it will not become one)."""
        doc = store.run.config()
        try:
            config = RunConfig.model_validate(doc["run"])
            options = RuntimeOptions.model_validate(doc["options"])
            layout = layout_from_json(doc["layout"])
        except (pydantic.ValidationError, KeyError, TypeError, ValueError) as exc:
            first = str(exc).splitlines()[0:3]
            raise ConfigError(
                f"run {store.run_id}: its config in Redis is invalid: {first}"
            ) from None
        started = store.run.status().started
        if started is None:
            raise InvalidState(f"run {store.run_id} has no start time in its status")
        return cls(store, config, options, layout, started, str(doc.get("model_hash", "")))

    @property
    def experiment(self) -> Experiment:
        """Data and model are loaded only by processes that train (not by the pull pool), once
        per run and process even when a secure run gives each worker its own context."""
        run_id = self.store.run_id
        with _BUILDING:  # once per process, also when a thread pool's slices start together
            return self._experiment(run_id)

    def _experiment(self, run_id: str) -> Experiment:
        if run_id not in _EXPERIMENTS:
            settings = load_settings()
            config = self.config
            if settings.device:  # this host's own choice (mpls worker --device)
                config = config.with_overrides(device=settings.device)
            exp = build_experiment(config, settings.data_dir)
            limit_gpu_memory(settings.gpu_memory_fraction, exp.device)
            if self.model_hash and exp.model_hash != self.model_hash:
                raise ConfigError(
                    f"model {self.config.model} builds other initial weights on host "
                    f"{socket.gethostname()} than the launcher's ({exp.model_hash} != "
                    f"{self.model_hash}): is the same code (and torch) installed here?"
                )
            _EXPERIMENTS[run_id] = exp
        return _EXPERIMENTS[run_id]


def open_context(url: str, run_id: str, settings: Settings) -> RunContext:
    store = RunStore(redis_client(url, settings), run_id, settings.snapshot_redis_url)
    try:
        return RunContext.load(store)
    except redis.exceptions.NoPermissionError:
        raise SecureRunError(
            f"Redis refused to show run {run_id} to this process: a --secure run needs its "
            "credentials file (MPLS_CREDENTIALS_FILE)"
        ) from None
