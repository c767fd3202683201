"""What a run is made of besides its workers' state, created by the launcher that starts it and
adopted by one that re-attaches: its config in Redis and its manifest, a secure run's ACL users
and credentials file, its Celery processes, the file that lets local commands find it — and all
of it released again at the end."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import redis

from mpls_celery.config.run_config import RunConfig
from mpls_celery.errors import ConfigError
from mpls_celery.experiment import Experiment
from mpls_celery.runtime.backend.acl import (
    Credentials,
    create_users,
    credentials_path,
    delete_users,
    load_credentials,
    restore_users,
)
from mpls_celery.runtime.backend.connection import safe_url
from mpls_celery.runtime.launch.attachment import LauncherLease
from mpls_celery.runtime.launch.local_runs import LocalRun, register, unregister
from mpls_celery.runtime.launch.processes import CeleryProcesses
from mpls_celery.runtime.launch.redis_supervisor import RedisSupervisor
from mpls_celery.runtime.launch.request import UpRequest
from mpls_celery.runtime.launch.slices import SliceSender
from mpls_celery.runtime.options import RuntimeOptions
from mpls_celery.runtime.state.decode import RecordBounds
from mpls_celery.runtime.store import RunStore
from mpls_celery.runtime.worker.layout import Layout, layout_of, layout_to_json
from mpls_celery.settings import Settings
from mpls_celery.telemetry.rundir import write_manifest


class RunSetup:
    def __init__(self, run_id: str, settings: Settings, run_dir: Path) -> None:
        self.run_id, self.settings, self.run_dir = run_id, settings, run_dir
        self.layout: Layout = []
        self.credentials: Credentials | None = None
        self.store: RunStore | None = None
        self.local: LocalRun | None = None
        self.admin: redis.Redis | None = None  # the launcher's own connection (ACL management)
        self.url = ""  # its URL: the slices' broker connection
        self._reported: tuple[list[int], int] = ([], 0)

    # a new run ---------------------------------------------------------------------------------
    @staticmethod
    def check_config(config: RunConfig) -> None:
        """Every process reads the run's config back from its JSON: it must survive the trip."""
        if RunConfig.model_validate_json(config.model_dump_json()) != config:
            raise ConfigError("the run config does not survive its JSON form; check its values")

    def open(self, admin: redis.Redis, url: str) -> RunStore:
        """The run's store on the launcher's own connection."""
        self.admin, self.url = admin, url
        self.store = RunStore(admin, self.run_id)
        return self.store

    def create(self, exp: Experiment, req: UpRequest) -> None:
        assert self.store is not None and self.admin is not None
        store, url = self.store, self.url
        if req.options.secure:
            self.credentials = create_users(self.admin, url, self.run_id, req.config.workers)
            self.credentials.save(credentials_path(self.settings, self.run_id))
        self.layout = layout_of(exp.layers, exp.new_model().state_dict())
        store.run.create(
            {
                "run": req.config.model_dump(mode="json"),
                "options": req.options.model_dump(mode="json"),
                "layout": layout_to_json(self.layout),
                "model_hash": exp.model_hash,
            }
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_manifest(
            self.run_dir,
            "runtime",
            req.config.model_dump(mode="json"),
            run_id=self.run_id,
            options=req.options.model_dump(mode="json"),
            redis_url=safe_url(url),
            eval_interval=req.eval_interval,
            model_hash=exp.model_hash,
        )

    # a run whose launcher died -----------------------------------------------------------------
    def adopt(self, layout: Layout, local: LocalRun | None) -> None:
        self.layout, self.local = layout, local
        path = credentials_path(self.settings, self.run_id)
        if path.exists():
            self.credentials = load_credentials(path)

    # what the roles need -----------------------------------------------------------------------
    @staticmethod
    def bounds(exp: Experiment) -> RecordBounds:
        """A pull moves at most every layer of every peer (wire bytes, twice for headers)."""
        peers = max(1, exp.config.workers - 1)
        return RecordBounds(
            workers=exp.config.workers,
            layers=len(exp.layers),
            algorithm=exp.config.algorithm,
            max_pull_bytes=2 * float(sum(exp.layer_bytes)) * peers + 1e6,
        )

    def slice_sender(self, options: RuntimeOptions) -> SliceSender:
        return SliceSender(self.run_id, self.url, options.per_worker_queues)

    def start_processes(self, req: UpRequest, supervisor: RedisSupervisor) -> CeleryProcesses:
        n = req.config.workers
        paths = [*req.import_dirs, os.environ.get("PYTHONPATH", "")]
        slices = req.concurrency or min(n, 32)
        env = {
            "MPLS_LAUNCHER_PID": str(os.getpid()),
            "PYTHONPATH": os.pathsep.join(p for p in paths if p),  # the user's model and data
            "MPLS_GPU_MEMORY_FRACTION": f"{0.9 / slices:.4f}",  # one GPU shared by all of them
        }
        worker_url = supervisor.url
        if self.credentials is not None:
            env["MPLS_CREDENTIALS_FILE"] = str(credentials_path(self.settings, self.run_id))
            worker_url = self.credentials.broker_url
        processes = CeleryProcesses(
            worker_url,
            self.run_dir / "logs",
            node_concurrency=slices,
            pull_concurrency=max(4, min(2 * n, 64)),
            tag=self.run_id,
            extra_env=env,
            grace=req.options.launcher_grace,
        )
        return processes.start(adopt=self.local.celery_pids if self.local else None)

    def register(self, supervisor: RedisSupervisor, processes: CeleryProcesses | None) -> None:
        """This run's file for `mpls status/runs/down/tui` and `up --resume`."""
        embedded = supervisor.embedded
        started = self.local.started if self.local else time.time()
        register(
            self.settings,
            LocalRun(
                run_id=self.run_id,
                redis_url=supervisor.url,
                launcher_pid=os.getpid(),
                run_dir=str(self.run_dir.resolve()),
                embedded=embedded is not None,
                redis_pid=embedded.pid if embedded else None,
                started=started,
                redis_data_dir=str(embedded.data_dir) if embedded and embedded.data_dir else None,
                celery_pids=list(processes.pids) if processes else [],
                local_workers=processes is not None,
            ),
        )
        self._supervisor = supervisor

    def report(self, processes: CeleryProcesses | None, refused: dict[str, object]) -> None:
        """Keep the local file's pids and the status's refusal count current (on change)."""
        assert self.store is not None
        pids = list(processes.pids) if processes else []
        counts = refused.get("counts")
        total = sum(counts.values()) if isinstance(counts, dict) else 0
        if (pids, total) == self._reported:
            return
        if pids != self._reported[0]:
            self.register(self._supervisor, processes)
        if total != self._reported[1]:
            self.store.run.set_status(refused=total)
        self._reported = (pids, total)

    def restore_users(self) -> None:
        """A restarted server forgets runtime ACL users: set them again."""
        if self.credentials is not None and self.admin is not None:
            restore_users(self.admin, self.credentials)

    # the end -----------------------------------------------------------------------------------
    def close(
        self,
        supervisor: RedisSupervisor,
        processes: CeleryProcesses | None,
        lease: LauncherLease | None,
    ) -> None:
        if processes is not None:
            processes.stop()
        with contextlib.suppress(redis.exceptions.RedisError):
            if lease is not None:
                lease.detach()
            if self.credentials is not None and self.admin is not None:  # users end with the run
                delete_users(self.admin, self.run_id, len(self.credentials.workers))
        credentials_path(self.settings, self.run_id).unlink(missing_ok=True)
        supervisor.stop()
        unregister(self.settings, self.run_id)
