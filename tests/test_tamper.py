"""Artifacts are verified against the size and sha256 sealed in their manifest: a file
changed behind andon's back is reported by `andon test`, refused by a run that reuses it and
by promotion, and nothing is published."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

import andon
from andon.warehouse import ArtifactTampered, Manifest, Warehouse
from tests.conftest import Cli, ProjectFactory
from tests.envkit import SMALL, edit, head, rows, steps_of


@pytest.fixture
def small(make_project: ProjectFactory, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANDON_USER", "alice")
    root = make_project(SMALL)
    assert cli("run", "-p", root, "-q")[0] == 0
    return root


def artifact_file(root: Path, step: str, env: str = "prod") -> Path:
    fp = steps_of(root, env)[step]
    project = andon.Project.load(root)
    try:
        row = project.store.artifact(fp)
        assert row is not None and row["meta"]["digests"]  # sealed with digests
        files = list(row["files"])
    finally:
        project.close()
    assert len(files) == 1
    return root / ".andon" / "warehouse" / files[0]


def forge(path: Path, values: str) -> None:
    """Overwrite an artifact file with a Parquet file of the same schema."""
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * FROM read_parquet('{path}') WHERE false UNION ALL "
                f"SELECT * FROM (VALUES {values})) TO '{path}.forged' (FORMAT parquet)")
    con.close()
    Path(f"{path}.forged").replace(path)


FORGED_ROW = "(1, 'A', 10), (2, 'B', 20), (3, 'A', 30), (4, 'A', 9999)"


def test_andon_test_reports_a_forged_file(small: Path, cli: Cli) -> None:
    path = artifact_file(small, "facts")
    forge(path, FORGED_ROW)
    code, _, err = cli("test", "-p", small)
    assert code != 0
    assert "changed after it was sealed" in err and "'facts'" in err
    assert path.name in err and steps_of(small)["facts"][:12] in err
    assert "hint: restore the file from a backup" in err
    code, out, err = cli("test", "-p", small, "--format", "json")
    error = json.loads(out or err)["error"]
    assert error["kind"] == "failed" and error["step"] == "facts"
    assert error["file"].endswith(path.name)


def test_a_run_reusing_a_forged_artifact_fails_and_publishes_nothing(
    small: Path, cli: Cli
) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0  # shares prod's artifacts
    forge(artifact_file(small, "facts"), FORGED_ROW)
    before = head(small, "dev")
    edit(small, "big", "id >=", "id >= 0 AND id >=")  # big rebuilds on top of facts
    code, out, err = cli("run", "-p", small, "--env", "dev", "--format", "json")
    result = json.loads(out)
    assert code != 0 and result["status"] == "failed", out + err
    by_name = {s["name"]: s for s in result["steps"]}
    assert by_name["facts"]["action"] == "failed"
    assert "changed after it was sealed" in by_name["facts"]["error"]
    assert by_name["big"]["action"] == "skipped"
    assert head(small, "dev") == before


def test_promotion_refuses_a_forged_candidate(small: Path, cli: Cli) -> None:
    assert cli("env", "create", "dev", "-p", small)[0] == 0
    edit(small, "facts", "(2, 'B', 20)", "(2, 'B', 25)")
    assert cli("run", "-p", small, "-q", "--env", "dev")[0] == 0
    forge(artifact_file(small, "facts", "dev"), "(1, 'A', 10), (2, 'B', 25), (3, 'A', 30), "
                                                "(4, 'A', 9999)")
    before = head(small)
    code, _, err = cli("promote", "dev", "-p", small)
    assert code != 0 and "changed after it was sealed" in err and "'facts'" in err
    assert head(small) == before
    assert rows(cli, small, "SELECT count(*) AS n FROM facts") == [{"n": 3}]


def same_size_forgery(path: Path) -> None:
    size = path.stat().st_size
    forge(path, "(1, 'A', 10), (2, 'B', 20), (3, 'A', 31)")  # one amount changed
    assert path.stat().st_size == size


def test_a_forged_file_of_the_same_size_is_caught_by_the_hash(small: Path, cli: Cli) -> None:
    path = artifact_file(small, "facts")
    same_size_forgery(path)
    code, _, err = cli("test", "-p", small)
    assert code != 0 and "its sha256 differs from the manifest's" in err and path.name in err
    # a run into prod (protected) hashes what it reuses, too
    code, out, err = cli("run", "-p", small, "--format", "json")
    assert code != 0 and "its sha256 differs" in out, out + err


def test_a_manifest_without_digests_is_verified_by_size(small: Path) -> None:
    path = artifact_file(small, "facts")
    warehouse = Warehouse(small / ".andon" / "warehouse")
    rel = warehouse.rel(path)
    old = Manifest(fingerprint="f" * 64, step="facts", code_hash="c", files=(rel,), rows=3,
                   bytes=path.stat().st_size, schema=(), meta={})
    warehouse.verify(old, full=True)  # sealed before digests: size only, still readable
    forge(path, FORGED_ROW)
    with pytest.raises(ArtifactTampered, match="verified by size only"):
        warehouse.verify(old, full=True)
