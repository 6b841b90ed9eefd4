"""``executor: dask``: Python steps run as tasks on a Dask distributed cluster (the scheduler
at ``scheduler:``, or a LocalCluster started on first use). A task carries file paths, never
tables; staging and sealing stay with the runner, so a worker that dies publishes nothing.
A step is run again (``retries:``) when the worker running it died."""

from __future__ import annotations

import dataclasses
import sys
import threading
import uuid
from typing import TYPE_CHECKING, Any

from andon.config import ExecutorConfig
from andon.errors import ConfigError, StepError
from andon.execution.pytask import PythonTask, TaskOutcome, run_task

if TYPE_CHECKING:
    from andon.steps import Step

INSTALL_HINT = "pip install 'andon[dask]'"


def open_dask(config: ExecutorConfig, threads: int) -> DaskRunner:
    """The ``dask`` executor kind (``andon.config.EXECUTORS``). Dask is imported by the
    first Python step shipped: without the extra, that step fails with the install hint."""
    return DaskRunner(config, threads)


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError("executor: dask needs Dask distributed, which is not installed",
                          hint=INSTALL_HINT) from None
    return distributed


class DaskRunner:
    """Ships Python steps' tasks to a Dask cluster (``andon.execution.pytask.TaskRunner``).
    The client (and a LocalCluster when no scheduler is given) opens on the first task: a
    run that builds no Python step starts nothing."""

    def __init__(self, config: ExecutorConfig, threads: int) -> None:
        self.config = config
        self.threads = threads
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()
        self._futures: set[Any] = set()
        self._pickled: set[str] = set()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        distributed = _distributed()
        if self.config.scheduler:
            try:
                return distributed.Client(self.config.scheduler, timeout=self.config.timeout,
                                          set_as_default=False)
            except (OSError, TimeoutError) as e:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at {self.config.scheduler!r}: {e}",
                    hint="start it (dask scheduler) or fix executor.scheduler in andon.yaml; "
                    "nothing was built") from None
        import dask

        workers = self.config.workers
        threads = max(1, self.threads // workers)  # the project's threads: setting
        memory = distributed.system.MEMORY_LIMIT // workers
        # the retries are andon's (``retries:``): the scheduler gives up at the first death
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            self._cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=threads, memory_limit=memory,
                resources={"memory": memory, "cores": threads}, dashboard_address=None)
        return distributed.Client(self._cluster, set_as_default=False)

    def run(self, task: PythonTask, step: Step) -> TaskOutcome:
        client = self.client()
        resources = step.config.resources.dask() if step.config.resources else {}
        if resources:
            _require(client, resources, step)
        assert step.function is not None
        task = dataclasses.replace(task, payload=self._pickle(step))
        from distributed import KilledWorker

        attempts = self.config.retries + 1
        # resources=None is not free: Dask then annotates the task (a few ms each)
        options: dict[str, Any] = {"resources": resources} if resources else {}
        for attempt in range(1, attempts + 1):
            future = client.submit(run_task, task, key=f"andon-{step.name}-{uuid.uuid4().hex}",
                                   pure=False, **options)
            self._futures.add(future)
            try:
                outcome: TaskOutcome = future.result()
                return outcome
            except KilledWorker:
                if attempt == attempts:
                    raise StepError(
                        f"the Dask worker running the step died, {attempts} time(s)",
                        file=step.file, line=step.line, step=step.name,
                        hint="a step that needs more memory than a worker has is killed: "
                        "set resources: {memory: ...} on the step or give the workers more "
                        "(executor.retries runs it again); the environment was not "
                        "changed") from None
            finally:
                self._futures.discard(future)
        raise AssertionError("unreachable")

    def _pickle(self, step: Step) -> bytes:
        """The step's function by value: a worker needs andon, not the project's files."""
        import cloudpickle  # type: ignore[import-untyped]

        assert step.function is not None
        module = step.function.__module__
        if module not in self._pickled and module in sys.modules:
            cloudpickle.register_pickle_by_value(sys.modules[module])
            self._pickled.add(module)
        return bytes(cloudpickle.dumps(step.function))

    def cancel(self) -> None:
        for future in list(self._futures):
            future.cancel()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None


def _require(client: Any, resources: dict[str, float], step: Step) -> None:
    """A step whose resources no worker has would wait forever: say so instead."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {}).values()
    offered = [w.get("resources") or {} for w in workers]
    if any(all(r.get(k, 0) >= v for k, v in resources.items()) for r in offered):
        return
    asked = ", ".join(f"{k} {_show(k, v)}" for k, v in resources.items())
    have = "; ".join(", ".join(f"{k} {_show(k, v)}" for k, v in r.items()) or "none"
                     for r in offered) or "no worker"
    raise StepError(
        f"no Dask worker has the resources the step asks for ({asked})",
        file=step.file, line=step.line, step=step.name, detail=f"workers offer: {have}",
        hint="start workers with --resources 'memory=8e9,cores=4' or lower the step's "
        "resources:")


def _show(kind: str, value: float) -> str:
    return f"{value / 1e9:.1f}GB" if kind == "memory" else f"{value:g}"
