"""Per-step environments: a Python step with ``requirements:`` runs in a virtualenv of its
own (offline here: a wheel built by the test, installed with --no-index), cached by the
requirements' hash; the requirements are part of its fingerprint."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

import andon
from andon.errors import ConfigError
from andon.execution.venvs import container_runtime
from andon.project import Project
from tests.taskkit import write

YAML = """
name: venvs
sources:
  raw:
    path: in/*.csv
    columns:
      id: {type: integer, required: true}
"""
REQS = '["--no-index", "--find-links wheels", "tinypkg==1.0"]'
STEPS = f'''
import pyarrow as pa

import andon


@andon.step(requirements={REQS})
def doubled(raw: pa.Table) -> pa.Table:
    import tinypkg  # installed in the step's own virtualenv only

    ids = raw.column("id").to_pylist()
    return pa.table({{"id": ids, "twice": [tinypkg.double(i) for i in ids],
                     "where": [tinypkg.__file__] * len(ids)}})


@andon.step
def plain(raw):
    return raw
'''


def wheel(folder: Path, version: str = "1.0") -> Path:
    """A pure-Python wheel of ``tinypkg`` (no build backend, no index needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"tinypkg-{version}.dist-info"
    files = {
        "tinypkg/__init__.py": f"VERSION = {version!r}\n\n\ndef double(x):\n    return 2 * x\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: tinypkg\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    path = folder / f"tinypkg-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
        z.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose step needs tinypkg, run once (the virtualenv built once)."""
    root = write(tmp_path_factory.mktemp("venv"), {
        "andon.yaml": YAML + "environments:\n  prod: {protected: false}\n",
        "in/data.csv": "id\n1\n2\n3\n",
        "pipelines/p/steps.py": STEPS,
    })
    wheel(root / "pipelines" / "p" / "wheels")
    result = andon.run(Project.load(root))
    assert result.ok, result.error
    return root


def venvs(root: Path) -> list[Path]:
    return sorted((root / ".andon" / "venvs").iterdir())


def test_a_step_with_requirements_runs_in_its_own_virtualenv(built: Path) -> None:
    with pytest.raises(ImportError):
        import tinypkg  # noqa: F401  (not in andon's environment)
    cols, rows = andon.query(Project.load(built), "SELECT * FROM doubled ORDER BY id")
    assert cols == ["id", "twice", "where"]
    assert [r[:2] for r in rows] == [(1, 2), (2, 4), (3, 6)]
    (env,) = venvs(built)
    assert all(Path(r[2]).is_relative_to(env) for r in rows)
    assert (env / ".andon-ready").read_text().splitlines()[-1] == "tinypkg==1.0"


def test_the_virtualenv_is_reused_when_the_step_is_rebuilt_with_the_same_requirements(
        built: Path) -> None:
    (before,) = venvs(built)
    ready = (before / ".andon-ready").stat().st_ino
    steps = built / "pipelines" / "p" / "steps.py"
    steps.write_text(steps.read_text().replace("tinypkg.double(i)", "tinypkg.double(i) + 1"))
    result = andon.run(Project.load(built))
    assert result.ok, result.error
    assert {s.name: s.action for s in result.steps}["doubled"] == "built"
    assert venvs(built) == [before] and (before / ".andon-ready").stat().st_ino == ready
    rows = andon.query(Project.load(built), "SELECT twice FROM doubled ORDER BY id")[1]
    assert rows == [(3,), (5,), (7,)]


def test_the_requirements_are_part_of_the_fingerprint(tmp_path: Path) -> None:
    files = {"andon.yaml": YAML, "in/data.csv": "id\n1\n", "pipelines/p/steps.py": STEPS}
    root = write(tmp_path, files)

    def fingerprints() -> dict[str, str]:
        return {s.name: s.fingerprint for s in andon.plan(Project.load(root)).steps}

    first = fingerprints()
    steps = root / "pipelines" / "p" / "steps.py"
    steps.write_text(steps.read_text().replace("tinypkg==1.0", "tinypkg==1.1"))
    second = fingerprints()
    assert second["doubled"] != first["doubled"]
    assert second["plain"] == first["plain"] and second["raw"] == first["raw"]
    # a requirements file next to the step: its content counts
    (root / "pipelines" / "p" / "requirements.txt").write_text("tinypkg==1.0\n")
    steps.write_text(steps.read_text().replace(REQS.replace("1.0", "1.1"),
                                               '"requirements.txt"'))
    third = fingerprints()
    (root / "pipelines" / "p" / "requirements.txt").write_text("tinypkg==1.2\n")
    assert fingerprints()["doubled"] not in (third["doubled"], first["doubled"])


def test_a_requirement_pip_cannot_install_fails_the_step_naming_it(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "andon.yaml": YAML, "in/data.csv": "id\n1\n",
        "pipelines/p/steps.py": STEPS.replace("tinypkg==1.0", "no-such-andon-pkg==9.9"),
    })
    result = andon.run(Project.load(root))
    assert result.status == "failed" and result.commit_id is None
    err = next(s.error for s in result.steps if s.name == "doubled")
    assert err is not None
    assert err.message.startswith("installing the step's requirements failed at requirement "
                                  "'no-such-andon-pkg==9.9': ")
    assert err.file is not None and err.file.endswith("steps.py")
    assert err.line == 6  # the line of @andon.step(requirements=...)
    assert "No matching distribution found for no-such-andon-pkg==9.9" in err.render()
    assert venvs(root) == []  # nothing half-built is cached


@pytest.mark.skipif(container_runtime()[0] is not None, reason="a container runtime runs here")
def test_an_image_without_a_container_runtime_is_a_clear_error(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "andon.yaml": YAML, "in/data.csv": "id\n1\n",
        "pipelines/p/steps.py": STEPS.replace(f"requirements={REQS}", 'image="python:3.11"'),
    })
    result = andon.run(Project.load(root))
    err = next(s.error for s in result.steps if s.name == "doubled")
    assert err is not None and result.commit_id is None
    # none on PATH, or one whose daemon does not answer (a docker client alone, here)
    assert err.message.startswith("the step runs in image 'python:3.11', but no container "
                                  "runtime ")
    assert err.message.endswith(("was found (docker or podman on PATH)", ")"))
    assert "install and start Docker or Podman" in err.hint


def test_requirements_on_a_sql_step_or_with_an_image_are_errors(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "andon.yaml": YAML,
        "pipelines/p/s.sql": "/* ---\nrequirements: [pandas]\n--- */\nSELECT * FROM raw",
    })
    with pytest.raises(ConfigError) as e:
        Project.load(root)
    assert "requirements: applies to Python steps" in e.value.message and e.value.line == 2
    root = write(tmp_path / "both", {
        "andon.yaml": YAML,
        "pipelines/p/steps.py": STEPS.replace(f"requirements={REQS}",
                                              f'requirements={REQS}, image="x"'),
    })
    with pytest.raises(ConfigError) as e:
        Project.load(root)
    assert "declare requirements or an image, not both" in e.value.message
