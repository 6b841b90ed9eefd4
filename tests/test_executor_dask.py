"""``executor: dask``: Python steps shipped to a Dask cluster (one in-process LocalCluster for
the module) give the same tables as the local run; resources, errors and bad settings."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import andon
from andon.errors import ConfigError
from andon.project import Project
from tests.taskkit import write

distributed = pytest.importorskip("distributed", reason="pip install 'andon[dask]'")

YAML = """
name: daskpy
params:
  factor: 10
sources:
  raw:
    path: in/*.csv
    columns:
      id: {type: integer, required: true}
      v: double
      cat: string
"""
STEPS = '''
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import andon


def _scale(x, factor):  # a helper of the module: shipped with the step
    return x * factor


@andon.step
def enriched(clean: pd.DataFrame, params, context) -> pd.DataFrame:
    out = clean.copy()
    out["w"] = _scale(out["v"].fillna(0), params["factor"])
    out["env"] = context["environment"]
    return out


@andon.step(resources={"memory": "100MB", "cores": 1})
def by_cat(enriched: pa.Table) -> pa.Table:
    groups = enriched.group_by("cat").aggregate([("w", "sum"), ("id", "count")])
    return groups.sort_by("cat")


@andon.step
def top(by_cat, enriched):
    return by_cat.filter(pc.greater(by_cat["w_sum"], 0))
'''
FILES = {
    "andon.yaml": YAML,
    "in/data.csv": "id,v,cat\n1,1.5,a\n2,2.5,b\n3,,a\n4,-1,c\n",
    "pipelines/p/clean.sql": "SELECT id, v, upper(cat) AS cat FROM raw",
    "pipelines/p/steps.py": STEPS,
}
TABLES = ("clean", "enriched", "by_cat", "top")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """One LocalCluster for the module, in this process (threads): fast to start."""
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
        resources={"memory": 2e9, "cores": 2})
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def on_dask(root: Path, scheduler: str, retries: int = 1) -> Path:
    with (root / "andon.yaml").open("a") as f:
        f.write(f"executor:\n  kind: dask\n  scheduler: {scheduler}\n  retries: {retries}\n")
    return root


def tables(root: Path) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    project = Project.load(root)
    return {t: andon.query(project, f"SELECT * FROM {t} ORDER BY ALL") for t in TABLES}


@pytest.fixture(scope="module")
def local_result(tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    root = write(tmp_path_factory.mktemp("local"), FILES)
    result = andon.run(Project.load(root))
    assert result.ok, result.error
    return tables(root)


def test_python_steps_run_on_dask_with_the_local_runs_results(
        tmp_path: Path, scheduler: str,
        local_result: dict[str, tuple[list[str], list[tuple[object, ...]]]]) -> None:
    root = on_dask(write(tmp_path, FILES), scheduler)
    client = distributed.Client(scheduler, set_as_default=False)
    try:
        before = client.run_on_scheduler(_tasks_seen)
        result = andon.run(Project.load(root))
        after = client.run_on_scheduler(_tasks_seen)
    finally:
        client.close()
    assert result.ok, result.error
    assert {s.name: s.action for s in result.steps} == {
        "raw": "built", "clean": "built", "enriched": "built", "by_cat": "built",
        "top": "built"}
    assert after - before == 3  # the three Python steps went through the scheduler
    assert tables(root) == local_result
    assert local_result["by_cat"][1] == [("A", 15.0, 2), ("B", 25.0, 1), ("C", -10.0, 1)]
    # nothing but the sealed artifacts is left behind: no staging folder, no temporary file
    staging = [p for p in (root / ".andon" / "warehouse").rglob("*") if ".tmp" in p.name]
    assert staging == []


def _tasks_seen(dask_scheduler: object) -> int:
    """How many tasks named andon-... the scheduler has seen (run on the scheduler)."""
    log = getattr(dask_scheduler, "transition_log", ())
    return len({str(entry[0]) for entry in log if str(entry[0]).startswith("andon-")})


def test_a_step_asking_for_more_than_any_worker_has_fails_with_what_they_offer(
        tmp_path: Path, scheduler: str) -> None:
    files = {**FILES, "pipelines/p/steps.py": STEPS.replace('"cores": 1', '"cores": 64')}
    root = on_dask(write(tmp_path, files), scheduler)
    result = andon.run(Project.load(root))
    assert result.status == "failed"
    failed = {s.name: s for s in result.steps if s.action == "failed"}
    assert list(failed) == ["by_cat"]
    err = failed["by_cat"].error
    assert err is not None
    assert "no Dask worker has the resources the step asks for (memory 0.1GB, cores 64)" \
        in err.message
    assert "cores 2" in err.detail and "--resources" in err.hint
    assert err.file is not None and err.file.endswith("steps.py")
    assert result.commit_id is None  # nothing published


def test_an_exception_in_a_shipped_step_names_the_line_of_the_users_file(
        tmp_path: Path, scheduler: str) -> None:
    files = {**FILES, "pipelines/p/steps.py": STEPS.replace(
        "    out = clean.copy()\n", "    out = clean.copy()\n    raise ValueError('bad row')\n")}
    root = on_dask(write(tmp_path, files), scheduler)
    result = andon.run(Project.load(root))
    err = next(s.error for s in result.steps if s.name == "enriched")
    assert err is not None
    assert err.message == "the Python step raised ValueError: bad row"
    assert err.line == 15 and err.step == "enriched"
    assert "raise ValueError('bad row')" in err.detail and "andon/execution" not in err.detail
    assert not list((root / ".andon" / "warehouse").glob("enriched/*"))


def test_an_unknown_executor_is_an_error_of_andon_yaml_with_a_suggestion(
        tmp_path: Path) -> None:
    root = write(tmp_path, FILES)
    with (root / "andon.yaml").open("a") as f:
        f.write("executor: dsak\n")
    with pytest.raises(ConfigError) as e:
        Project.load(root)
    assert "unknown executor 'dsak'; did you mean 'dask'?" in str(e.value)
    assert e.value.file is not None and e.value.file.endswith("andon.yaml")


def test_an_unreachable_scheduler_fails_the_python_steps_and_publishes_nothing(
        tmp_path: Path) -> None:
    root = write(tmp_path, FILES)
    with (root / "andon.yaml").open("a") as f:
        f.write("executor: {kind: dask, scheduler: 'tcp://127.0.0.1:9', timeout: 1}\n")
    result = andon.run(Project.load(root))
    assert result.status == "failed" and result.commit_id is None
    err = next(s.error for s in result.steps if s.name == "enriched")
    assert err is not None and "cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" \
        in err.message
    shutil.rmtree(root)


def test_every_setting_of_the_executor_and_of_a_steps_environment_is_documented() -> None:
    from andon.config import ExecutorConfig, StepResources

    text = (Path(__file__).resolve().parents[1] / "docs" / "scaling.md").read_text()
    keys = [*ExecutorConfig.model_fields, *StepResources.model_fields,
            "requirements", "image", "resources"]
    for key in keys:
        assert f"`{key}:`" in text or f"{key}:" in text, f"docs/scaling.md: {key}"


def test_a_cancelled_run_cancels_the_step_in_flight_on_the_cluster(
        tmp_path: Path, scheduler: str) -> None:
    import threading
    import time

    from andon.execution.cancel import CancelToken
    from andon.service import Session, local_user

    files = {**FILES, "pipelines/p/steps.py": STEPS.replace(
        "    out = clean.copy()\n", "    import time\n    time.sleep(2)\n    out = clean.copy()\n")}
    root = on_dask(write(tmp_path, files), scheduler)
    token = CancelToken()
    started = threading.Event()

    class Listener:  # cancels once the shipped step has started
        def __getattr__(self, name: str) -> object:
            return lambda *a, **k: None

        def step_started(self, name: str, stage: str) -> None:
            if name == "enriched":
                started.set()

    threading.Thread(target=lambda: (started.wait(30), time.sleep(0.3),
                                     token.cancel("test")), daemon=True).start()
    result = Session(Project.load(root), local_user()).run(listener=Listener(), cancel=token)
    assert result.status == "cancelled" and result.commit_id is None
    actions = {s.name: s.action for s in result.steps}
    assert actions["enriched"] == "cancelled"
    assert actions["by_cat"] in ("skipped", "cancelled")
    assert not (root / ".andon" / "warehouse" / "enriched").exists()
