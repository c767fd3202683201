"""What every process of a run derives once from the run's Redis config (cached per process)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mpls_celery.config.run_config import RunConfig
from mpls_celery.experiment import Experiment, build_experiment
from mpls_celery.runtime.layout import Layout, layout_from_json
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.store import RunStore
from mpls_celery.settings import load_settings


@dataclass
class RunContext:
    store: RunStore
    config: RunConfig
    options: RuntimeOptions
    layout: Layout
    started_at: float

    @classmethod
    def load(cls, store: RunStore) -> RunContext:
        doc = store.config()
        status = store.status()
        return cls(
            store=store,
            config=RunConfig.model_validate(doc["run"]),
            options=RuntimeOptions.model_validate(doc["options"]),
            layout=layout_from_json(doc["layout"]),
            started_at=float(status.get("started", 0.0)),
        )

    @cached_property
    def experiment(self) -> Experiment:
        """Data and model are loaded only by processes that train (not by the pull pool)."""
        return build_experiment(self.config, load_settings().data_dir)
