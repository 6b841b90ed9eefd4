"""Registries of kinds: source kinds in andon.yaml, step kinds from other packages through a
real entry point, artifact formats recorded in manifests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from andon.errors import ConfigError
from andon.kinds import step_kind
from andon.project import Project
from andon.warehouse import Manifest
from tests.conftest import ProjectFactory

SOURCE = """
name: k
sources:
  trips:{kind}
    path: incoming
    format: csv
    columns:
      id: integer
"""


@pytest.mark.parametrize("kind", ["", "\n    kind: files"])
def test_files_is_the_source_kind_written_or_not(make_project: ProjectFactory, kind: str) -> None:
    root = make_project({"andon.yaml": SOURCE.format(kind=kind), "incoming/a.csv": "id\n1\n"})
    project = Project.load(root)
    source = project.dag.steps["trips"].source
    assert source is not None and source.kind == "files"


def test_an_unknown_source_kind_says_where_and_what_was_meant(make_project: ProjectFactory
                                                              ) -> None:
    root = make_project({"andon.yaml": SOURCE.format(kind="\n    kind: filez")})
    with pytest.raises(ConfigError) as e:
        Project.load(root)
    assert e.value.file == str(root / "andon.yaml")
    assert e.value.line == 4
    assert "unknown source kind 'filez'; did you mean 'files'?" in str(e.value)


def test_an_unknown_step_kind_gets_did_you_mean() -> None:
    with pytest.raises(ConfigError) as e:
        step_kind("pyhton", file=Path("p/a.py"), line=3)
    assert e.value.file == "p/a.py" and e.value.line == 3
    assert "did you mean 'python'?" in (e.value.hint or "")


def test_a_manifest_without_a_format_is_parquet() -> None:
    old = {"fingerprint": "f", "step": "s", "code_hash": "c", "files": ["a.parquet"], "rows": 1,
           "bytes": 10, "schema": [["id", "BIGINT"]], "meta": {}}
    assert Manifest.from_json(json.dumps(old)).format == "parquet"
    again = Manifest.from_json(Manifest.from_json(json.dumps(old)).to_json())
    assert again.format == "parquet"


PLUGIN = '''
import io

import pyarrow.csv as pcsv

from andon.build import seal_table
from andon.config import StepConfig
from andon.kinds import StepKind
from andon.steps import Step


def load(file, pipeline, params, cache):
    return [Step(name=file.stem, kind={kind!r}, pipeline=pipeline, file=file,
                 config=StepConfig(), code=file.read_text())]


def build(ctx, step, ps):
    return seal_table(ctx, ps, pcsv.read_csv(io.BytesIO(step.code.encode())))


CSV_TEXT = StepKind("csvtext", build, suffixes=(".txt",), load=load)
'''


def _install_plugin(where: Path, kind: str) -> dict[str, str]:
    """A package declaring the ``andon.step_kinds`` entry point, installed the way pip lays
    it out (module + ``*.dist-info``), on PYTHONPATH of the andon run."""
    where.mkdir()
    (where / "csvtext_kind.py").write_text(PLUGIN.format(kind=kind))
    info = where / "csvtext_kind-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: csvtext-kind\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[andon.step_kinds]\ncsvtext = csvtext_kind:CSV_TEXT\n")
    path = os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path}


def _andon(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "andon", *args, "-p", str(root)], env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_step_kind_from_another_package_runs_end_to_end(make_project: ProjectFactory,
                                                          tmp_path: Path) -> None:
    env = _install_plugin(tmp_path / "site", "csvtext")
    root = make_project({
        "andon.yaml": "name: k\nenvironments:\n  prod:\n    protected: false\n",
        "pipelines/p/numbers.txt": "n,label\n1,a\n2,b\n39,c\n",
        "pipelines/p/total.sql": "SELECT sum(n) AS total, count(*) AS rows FROM numbers\n",
    })
    run = _andon(root, env, "run", "-q")
    assert run.returncode == 0, run.stderr
    query = _andon(root, env, "query", "SELECT * FROM total", "--format", "json")
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"total": 42, "rows": 3}]
    # the text is the step's code: editing it rebuilds it and what reads it
    (root / "pipelines/p/numbers.txt").write_text("n,label\n1,a\n")
    assert _andon(root, env, "run", "-q").returncode == 0
    query = _andon(root, env, "query", "SELECT total FROM total", "--format", "json")
    assert json.loads(query.stdout) == [{"total": 1}]


def test_a_step_of_an_unregistered_kind_is_named_with_its_file(make_project: ProjectFactory,
                                                               tmp_path: Path) -> None:
    env = _install_plugin(tmp_path / "site", "csvtxt")  # the plug-in misspells its own kind
    root = make_project({"andon.yaml": "name: k\n", "pipelines/p/numbers.txt": "n\n1\n"})
    run = _andon(root, env, "run", "-q")
    assert run.returncode != 0
    assert "numbers.txt" in run.stderr
    assert "unknown step kind 'csvtxt'" in run.stderr
    assert "did you mean 'csvtext'?" in run.stderr


def test_without_the_package_text_files_are_not_steps(make_project: ProjectFactory) -> None:
    root = make_project({"andon.yaml": "name: k\n", "pipelines/p/notes.txt": "n\n1\n"})
    assert "notes" not in Project.load(root).dag.steps
