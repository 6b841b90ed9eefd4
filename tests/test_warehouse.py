"""The warehouse: artifacts appear only by atomic rename from _staging; abandoned staging is
cleaned up; a read-only or full warehouse is a clear WarehouseError that changes nothing."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from andon.errors import WarehouseError
from andon.warehouse import MANIFEST, STAGING, Manifest, Warehouse
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
STEP = "SELECT id, upper(name) AS name FROM orders"


def project(make_project: ProjectFactory) -> Path:
    root = make_project({"andon.yaml": YAML, "pipelines/p/clean.sql": STEP})
    (root / "incoming").mkdir()
    (root / "incoming/a.csv").write_text("id,name\n1,a\n2,b\n")
    return root


def manifest(step: str, fp: str) -> Manifest:
    return Manifest(fingerprint=fp, step=step, code_hash="c", files=(f"{step}/{fp}/x.parquet",),
                    rows=1, bytes=1, schema=(("x", "BIGINT"),), meta={})


def published(cli: Cli, root: Path) -> Any:
    code, out, _ = cli("tables", "-p", root, "--format", "json")
    return json.loads(out) if code == 0 else None


def visible_artifacts(wh: Path) -> list[Path]:
    """Artifact folders outside _staging and _parts."""
    return [d for step in wh.iterdir() if step.is_dir() and step.name not in (STAGING, "_parts")
            for d in step.iterdir()]


def test_seal_moves_staging_into_place_atomically(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    wh.ensure()
    with wh.staging("s") as staging:
        assert staging.parent == wh.staging_root
        (staging / "x.parquet").write_bytes(b"data")
        assert not wh.artifact_dir("s", "f1").exists()  # nothing visible while building
        sealed = wh.seal(staging, manifest("s", "f1"))
        assert not staging.exists()
    final = wh.artifact_dir("s", "f1")
    assert sorted(p.name for p in final.iterdir()) == [MANIFEST, "x.parquet"]
    assert Manifest.from_json((final / MANIFEST).read_text()) == sealed
    assert wh.read_manifest("s", "f1") == sealed
    assert list(wh.staging_root.iterdir()) == []


def test_a_failed_build_leaves_no_staging(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    wh.ensure()
    with pytest.raises(RuntimeError), wh.staging("s") as staging:
        (staging / "half.parquet").write_bytes(b"ha")
        raise RuntimeError("the step failed")
    assert list(wh.staging_root.iterdir()) == []
    assert not (tmp_path / "wh/s").exists()


def test_sealing_a_fingerprint_twice_keeps_the_first(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    wh.ensure()
    with wh.staging("s") as a:
        (a / "x.parquet").write_bytes(b"first")
        first = wh.seal(a, manifest("s", "f1"))
    with wh.staging("s") as b:
        (b / "x.parquet").write_bytes(b"second")
        again = wh.seal(b, manifest("s", "f1") .__class__(**{**manifest("s", "f1").__dict__,
                                                              "rows": 2}))
    assert again == first
    assert (wh.artifact_dir("s", "f1") / "x.parquet").read_bytes() == b"first"
    assert list(wh.staging_root.iterdir()) == []


def test_a_folder_without_manifest_is_not_an_artifact(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    wh.ensure()
    junk = wh.artifact_dir("s", "f1")
    junk.mkdir(parents=True)
    (junk / "x.parquet").write_bytes(b"junk")
    assert wh.read_manifest("s", "f1") is None
    with wh.staging("s") as staging:
        (staging / "x.parquet").write_bytes(b"good")
        wh.seal(staging, manifest("s", "f1"))
    assert (junk / "x.parquet").read_bytes() == b"good"
    # a manifest whose files are gone is not an artifact either
    (junk / "x.parquet").unlink()
    assert wh.read_manifest("s", "f1") is None


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_staging_left_by_a_dead_process_is_cleaned_by_the_next_run(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    wh = Warehouse(root / ".andon/warehouse")
    wh.ensure()
    host = wh._token.split(".")[0]
    dead = wh.staging_root / f"{host}.{dead_pid()}.clean.1234abcd"
    alive = wh.staging_root / f"{host}.{os.getppid()}.clean.5678abcd"  # a running process
    other_host = wh.staging_root / f"elsewhere.{dead_pid()}.clean.9999abcd"
    for d in (dead, alive, other_host):
        d.mkdir()
        (d / "part-0.parquet").write_bytes(b"half written")
    assert cli("run", "-p", root, "-q")[0] == 0
    assert not dead.exists()
    assert alive.exists() and other_host.exists()  # not ours to judge
    assert sorted(p.name for p in wh.staging_root.iterdir()) == sorted(
        [alive.name, other_host.name])
    for art in visible_artifacts(wh.root):
        assert (art / MANIFEST).is_file()


def test_warehouse_under_a_regular_file_is_not_writable(
    make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    (root / "blocker").write_text("a file, not a folder")
    text = (root / "andon.yaml").read_text()
    (root / "andon.yaml").write_text(text + "warehouse: blocker/wh\n")
    code, _, err = cli("run", "-p", root, "-q")
    assert code == 1
    assert "not writable" in err and "blocker" in err
    assert (root / "blocker").read_text() == "a file, not a folder"


def test_os_errors_become_warehouse_errors_that_say_what_to_do(tmp_path: Path) -> None:
    import errno

    from andon.warehouse import os_error, write_error

    full = os_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path, "s")
    assert "no space" in full.message and full.step == "s" and "free disk space" in full.hint
    big = os_error(OSError(errno.EFBIG, "File too large"), tmp_path)
    assert "no space" in big.message
    ro = os_error(OSError(errno.EROFS, "Read-only file system"), tmp_path)
    assert "not writable" in ro.message
    duck = write_error(RuntimeError('IO Error: Could not write file "x": No space left on '
                                    'device", "errno":"28"'), tmp_path, "s")
    assert isinstance(duck, WarehouseError) and "no space" in duck.message
    assert write_error(RuntimeError("Conversion Error: abc"), tmp_path) is None


# Real read-only and full file systems. Tests run as root, so chmod does not stop writes:
# a private mount namespace gets a read-only bind mount or a tiny tmpfs over the warehouse.


def _namespace_ok() -> bool:
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def mounts() -> None:
    if shutil.which("unshare") is None or not _namespace_ok():
        if os.geteuid() != 0:
            pytest.skip("needs root (a private mount namespace) to mount a read-only or full "
                        "file system")
        pytest.fail("running as root but `unshare -m` does not work here")


def run_mounted(root: Path, mount: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``andon run`` in a private mount namespace where ``mount`` was run first."""
    cmd = (f"{mount} && exec {shlex.quote(sys.executable)} -m andon run -p "
           f"{shlex.quote(str(root))} -q " + " ".join(shlex.quote(a) for a in args))
    return subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"})


def test_read_only_warehouse_is_a_clear_error_and_changes_nothing(
    mounts: None, make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    assert cli("run", "-p", root, "-q")[0] == 0
    before = published(cli, root)
    (root / "incoming/b.csv").write_text("id,name\n3,c\n")
    wh = shlex.quote(str(root / ".andon/warehouse"))
    proc = run_mounted(root, f"mount --bind {wh} {wh} && mount -o remount,bind,ro {wh}")
    assert proc.returncode == 1, proc.stderr
    assert "not writable" in proc.stderr and "Read-only file system" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert published(cli, root) == before
    out = cli("query", "SELECT count(*) AS n FROM clean", "-p", root, "--format", "json")[1]
    assert json.loads(out) == [{"n": 2}]
    assert cli("run", "-p", root, "-q")[0] == 0  # writable again: the new file goes in


BIG_ROWS = 60_000


def big_csv(path: Path) -> None:
    with path.open("w") as f:
        f.write("id,name\n")
        for i in range(BIG_ROWS):
            f.write(f"{i},{os.urandom(12).hex()}\n")


def test_full_warehouse_during_ingest_is_a_clear_error_and_changes_nothing(
    mounts: None, make_project: ProjectFactory, cli: Cli
) -> None:
    root = project(make_project)
    assert cli("run", "-p", root, "-q")[0] == 0
    before = published(cli, root)
    big_csv(root / "incoming/big.csv")
    wh = shlex.quote(str(root / ".andon/warehouse"))
    proc = run_mounted(root, f"mount -t tmpfs -o size=256k tmpfs {wh}")
    assert proc.returncode == 1, proc.stderr
    assert "no space left" in proc.stderr, proc.stderr
    assert "cannot parse" not in proc.stderr  # a full disk is not the file's fault
    assert published(cli, root) == before
    out = cli("runs", "show", "latest", "-p", root, "--format", "json")[1]
    run = json.loads(out)
    assert run["status"] == "failed" and "no space left" in run["error"]
    # with room again the same files are taken
    assert cli("run", "-p", root, "-q")[0] == 0
    out = cli("query", "SELECT count(*) AS n FROM clean", "-p", root, "--format", "json")[1]
    assert json.loads(out) == [{"n": 2 + BIG_ROWS}]


def test_full_warehouse_during_a_sql_step_is_a_warehouse_error(
    mounts: None, make_project: ProjectFactory, cli: Cli
) -> None:
    root = make_project({
        "andon.yaml": "name: t\n",
        "pipelines/p/big.sql": "SELECT i, md5(CAST(i AS VARCHAR)) AS h FROM range(200000) t(i)",
    })
    wh = shlex.quote(str(root / ".andon/warehouse"))
    proc = run_mounted(root, f"mkdir -p {wh} && mount -t tmpfs -o size=256k tmpfs {wh}")
    assert proc.returncode == 1, proc.stderr
    assert "no space left" in proc.stderr, proc.stderr
