"""The README is the front door: its quickstart must stay true."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examplekit import assert_every_check_ran

ROOT = Path(__file__).resolve().parents[1]


def quickstart() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quickstart.*?```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert block, "README.md has no Quickstart code block"
    return [ln.strip() for ln in block.group(1).splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def test_quickstart_has_exactly_two_commands() -> None:
    commands = quickstart()
    assert len(commands) == 2
    install, test = commands
    assert install.startswith("pip install .") and install.endswith("andon demo")
    assert '".[test]"' in test and "pytest" in test


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    assert quickstart()[1] in script  # the README's test command, as a line of its own
    assert "set -euo pipefail" in script


@pytest.mark.slow
def test_quickstart_demo_works_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    """Run the first quickstart command as written, in a new venv, in an empty folder."""
    install = quickstart()[0]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bindir = venv / "bin"
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    src = tmp_path / "andon-src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "*.egg-info", "__pycache__", ".andon", "andon-flights-demo",
        ".mypy_cache", ".ruff_cache", ".pytest_cache", "benchmarks"))
    # the command is run from the clone (for pip install .), then the demo from a new folder
    pip_part, demo_part = install.split("&&")
    command = pip_part.replace("pip", f"{bindir / 'python'} -m pip", 1).split()
    done = subprocess.run([*command, "--quiet"], cwd=src, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    demo = subprocess.run(demo_part.split(), cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "published 336,776 flights to prod" in demo.stdout
    project = work / "andon-flights-demo"
    assert (project / "andon.yaml").is_file()

    def andon(args: list[str] | tuple[str, ...]) -> tuple[int, str, str]:
        done = subprocess.run([str(bindir / "andon"), *args], cwd=project, env=env,
                              capture_output=True, text=True, timeout=600)
        return done.returncode, done.stdout, done.stderr

    assert_every_check_ran(project, andon)
    assert json.loads(andon(["tables", "--format", "json"])[1])
