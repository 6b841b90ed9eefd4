"""The landing zone: raw files copied as received, per source and arrival time, with sha256."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

import andon
from andon.config import SourceConfig
from andon.landing import Arrival, land, landing_state
from andon.store import open_store
from tests.conftest import Cli, ProjectFactory

YAML = """\
name: t
sources:
  orders:
    path: incoming/*.csv
    columns:
      id: {type: integer, required: true}
      name: string
"""


def project(make_project: ProjectFactory) -> Path:
    root = make_project({"andon.yaml": YAML})
    (root / "incoming").mkdir()
    return root


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Bytes, mode and mtime of every file under ``folder``."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(folder))] = (p.read_bytes(), st.st_mode, st.st_mtime_ns)
    return out


def landed_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / ".andon/landing").rglob("*") if p.is_file())


def test_new_files_are_copied_read_only_with_their_sha256(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    (root / "incoming/b.csv").write_text("id,name\n2,b\n")
    incoming = snapshot(root / "incoming")
    assert cli("run", "-p", root, "-q")[0] == 0
    files = landed_files(root)
    assert [p.name for p in files] == ["a.csv", "b.csv"]
    store = andon.Project.load(root).store
    rows = {r["original_path"]: r for r in store.landed_files("orders")}
    for p in files:
        original = root / "incoming" / p.name
        assert p.read_bytes() == original.read_bytes()
        assert stat.S_IMODE(p.stat().st_mode) == 0o444  # read-only copy
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        row = rows[str(original)]
        assert row["sha256"] == digest and row["bytes"] == p.stat().st_size
        # one folder per source and arrival, named by time and sha256
        assert p.parent.parent == root / ".andon/landing/orders"
        assert p.parent.name.endswith("-" + digest[:8])
        assert (root / ".andon/landing" / row["landed_path"]) == p
        assert row["run_id"] == 1
    # the sender's files are untouched: same bytes, same mode, same mtime, still there
    assert snapshot(root / "incoming") == incoming
    assert not list((root / "incoming").glob(".*"))


def test_incoming_files_are_never_modified_even_by_failing_runs(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    # one rejected row among twenty: under the default limit on rejects
    good = "".join(f"{i},a\n" for i in range(19))
    (root / "incoming/a.csv").write_text(f"id,name\n{good}x,b\n")
    (root / "incoming/empty.csv").write_bytes(b"")
    os.chmod(root / "incoming/a.csv", 0o640)
    before = snapshot(root / "incoming")
    assert cli("run", "-p", root, "-q")[0] == 1
    (root / "incoming/empty.csv").unlink()
    del before["empty.csv"]
    assert cli("run", "-p", root, "-q")[0] == 0
    assert cli("run", "-p", root, "-q")[0] == 0
    assert snapshot(root / "incoming") == before


def test_the_same_bytes_under_another_name_land_once_and_are_reported(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    content = "id,name\n1,a\n2,b\n"
    (root / "incoming/a.csv").write_text(content)
    (root / "incoming/a_copy.csv").write_text(content)  # same batch
    out = cli("plan", "-p", root, "--format", "json")[1]
    step = json.loads(out)["steps"][0]
    assert step["new_files"] == [str(root / "incoming/a.csv")]
    assert step["duplicate_files"] == [str(root / "incoming/a_copy.csv")]
    assert cli("run", "-p", root, "-q")[0] == 0
    assert [p.name for p in landed_files(root)] == ["a.csv"]
    # a later batch: the same bytes again, under a third name
    (root / "incoming/resent.csv").write_text(content)
    out = cli("plan", "-p", root, "--format", "json")[1]
    step = json.loads(out)["steps"][0]
    assert step["new_files"] == [] and step["action"] == "reuse"
    assert str(root / "incoming/resent.csv") in step["duplicate_files"]
    assert cli("run", "-p", root, "-q")[0] == 0
    assert [p.name for p in landed_files(root)] == ["a.csv"]
    out = cli("query", "SELECT count(*) AS n FROM orders", "-p", root, "--format", "json")[1]
    assert json.loads(out) == [{"n": 2}]


def test_duplicates_in_one_batch_point_at_the_file_that_lands(
    make_project: ProjectFactory,
) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    (root / "incoming/b.csv").write_text("id,name\n1,a\n")
    p = andon.Project.load(root)
    state = landing_state(p.store, root, "orders", p.config.sources["orders"],
                          root / "andon.yaml")
    assert [a.path.name for a in state.arrivals] == ["a.csv"]
    (dup,) = state.duplicates
    assert dup.path.name == "b.csv" and Path(dup.landed_as).name == "a.csv"


def test_a_file_that_changes_lands_again(make_project: ProjectFactory, cli: Cli) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    assert cli("run", "-p", root, "-q")[0] == 0
    (root / "incoming/a.csv").write_text("id,name\n1,a\n2,b\n")  # the sender appended a row
    assert cli("run", "-p", root, "-q")[0] == 0
    assert [p.name for p in landed_files(root)] == ["a.csv", "a.csv"]
    assert len({p.parent for p in landed_files(root)}) == 2


def test_landing_the_same_bytes_twice_returns_the_first_landing(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    """Two runs (say of prod and dev) land the same new file at once: both must ingest it."""
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    source = SourceConfig.model_validate({"path": "incoming/*.csv", "columns": {"id": "integer"}})
    path = root / "incoming/a.csv"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    arrival = Arrival(path, digest, path.stat().st_size, source)
    landing_root = tmp_path / "landing"
    first = land(store, landing_root, "orders", (arrival,), run_id=1)
    second = land(store, landing_root, "orders", (arrival,), run_id=2)
    assert len(first) == len(second) == 1
    assert second[0]["landed_path"] == first[0]["landed_path"]
    assert second[0]["run_id"] == 1
    assert len(store.landed_files("orders")) == 1
    assert [p.name for p in landing_root.rglob("*") if p.is_file()] == ["a.csv"]  # no litter


def test_a_bad_file_keeps_its_whole_batch_out_of_landing(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    root = project(make_project)
    (root / "incoming/a.csv").write_text("id,name\n1,a\n")
    (root / "incoming/b.csv").write_text("name\nno id column\n")
    p = andon.Project.load(root)
    state = landing_state(p.store, root, "orders", p.config.sources["orders"],
                          root / "andon.yaml")
    with pytest.raises(andon.AndonError) as e:
        land(p.store, tmp_path / "landing", "orders", state.arrivals, run_id=1)
    assert e.value.file == "b.csv" and e.value.line == 1 and "id" in e.value.message
    assert p.store.landed_files("orders") == []
    assert not (tmp_path / "landing").exists()


def test_a_batch_is_recorded_whole_or_not_at_all(
    make_project: ProjectFactory, tmp_path: Path
) -> None:
    """The files of a batch are recorded in one transaction: when one of them changes while it
    is being copied, none of the batch is recorded and no copy is left behind."""
    root = project(make_project)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    source = SourceConfig.model_validate({"path": "incoming/*.csv", "columns": {"id": "integer"}})
    arrivals = []
    for name in ("a", "b", "c"):
        path = root / f"incoming/{name}.csv"
        path.write_text(f"id,name\n1,{name}\n")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        arrivals.append(Arrival(path, digest, path.stat().st_size, source))
    (root / "incoming/c.csv").write_text("id,name\n1,c\n2,written after it was found\n")
    landing_root = tmp_path / "landing"
    with pytest.raises(andon.AndonError, match="changed while it was being landed"):
        land(store, landing_root, "orders", tuple(arrivals), run_id=1)
    assert store.landed_files("orders") == []
    assert [p for p in landing_root.rglob("*") if p.is_file()] == []
    # another run landed b meanwhile: a lands, b is the other run's copy
    other = land(store, landing_root, "orders", (arrivals[1],), run_id=2)
    rows = land(store, landing_root, "orders", tuple(arrivals[:2]), run_id=3)
    assert [r["run_id"] for r in rows] == [3, 2]
    assert rows[1]["landed_path"] == other[0]["landed_path"]
    assert sorted(p.name for p in landing_root.rglob("*") if p.is_file()) == ["a.csv", "b.csv"]
    for row in rows:
        landed = landing_root / row["landed_path"]
        assert hashlib.sha256(landed.read_bytes()).hexdigest() == row["sha256"]
