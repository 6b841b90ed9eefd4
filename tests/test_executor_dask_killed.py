"""A Dask worker killed in the middle of a step (andon's own LocalCluster, worker processes):
the step runs again (``retries:``), or fails cleanly with no partial artifact."""

from __future__ import annotations

from pathlib import Path

import pytest

import andon
from andon.project import Project
from tests.taskkit import write

pytest.importorskip("distributed", reason="pip install 'andon[dask]'")

STEPS = '''
import os
import signal
from pathlib import Path

import andon


@andon.step
def fragile(clean, params):
    marker = Path(params["marker"])
    if params["always"] or not marker.exists():
        marker.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies mid-step
    return clean
'''


def project(root: Path, *, retries: int, always: bool) -> Path:
    files = {
        "andon.yaml": f"""
            name: killed
            params:
              marker: {root / "marker"}
              always: {str(always).lower()}
            executor: {{kind: dask, workers: 1, retries: {retries}}}
            sources:
              raw:
                path: in/*.csv
                columns:
                  id: {{type: integer, required: true}}
            """,
        "in/data.csv": "id\n1\n2\n",
        "pipelines/p/clean.sql": "SELECT id FROM raw",
        "pipelines/p/steps.py": STEPS,
    }
    return write(root, files)


def test_a_step_whose_worker_is_killed_runs_again_on_the_restarted_worker(
        tmp_path: Path) -> None:
    root = project(tmp_path, retries=1, always=False)
    result = andon.run(Project.load(root))
    assert result.ok, result.error
    assert (root / "marker").read_text() == "killed"  # the first attempt was killed
    p = Project.load(root)
    assert andon.query(p, "SELECT id FROM fragile ORDER BY id")[1] == [(1,), (2,)]


def test_a_step_whose_worker_dies_every_time_fails_cleanly_with_nothing_published(
        tmp_path: Path) -> None:
    root = project(tmp_path, retries=0, always=True)
    result = andon.run(Project.load(root))
    assert result.status == "failed" and result.commit_id is None
    failed = {s.name: s.error for s in result.steps if s.action == "failed"}
    assert list(failed) == ["fragile"]
    err = failed["fragile"]
    assert err is not None
    assert err.message == "the Dask worker running the step died, 1 time(s)"
    assert "resources:" in err.hint and err.line is not None
    warehouse = root / ".andon" / "warehouse"
    assert not (warehouse / "fragile").exists() or not any((warehouse / "fragile").iterdir())
    staging = [p for p in warehouse.rglob("*") if "fragile" in p.name]
    assert staging == []  # no partial artifact, no staging folder left
