"""Helpers shared by the benchmark scripts (not a benchmark itself)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def machine() -> str:
    """One line for the header; the load average shows whether others shared the cores."""
    python = sys.version.split()[0]
    load = os.getloadavg()[0]
    note = "" if load < 1.0 else "  (busy: timings are inflated; rerun when idle)"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {python}, "
            f"load average {load:.2f}{note}")


def write_project(root: Path, steps: dict[str, str], sources: str = "") -> None:
    """A fixture project: andon.yaml and one SQL file per step under pipelines/bench/."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "andon.yaml").write_text(f"name: bench\n{sources}")
    folder = root / "pipelines" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in steps.items():
        (folder / f"{name}.sql").write_text(sql + "\n")


def venv_python(name: str, requirements: Sequence[str], probe: str) -> Path:
    """The python of benchmarks/.venvs/<name>, created and ``pip install``ed on first use.

    ``probe`` is a module whose import tells the venv is ready.
    """
    venv = VENVS / name
    python = venv / "bin" / "python"
    if python.exists():
        probe = subprocess.run([str(python), "-c", f"import {probe}"], capture_output=True)
        if probe.returncode == 0:
            return python
    print(f"  installing {' '.join(requirements)} into {venv} (first time only) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return python


def row(label: str, *cells: str) -> str:
    return f"  {label:<44}" + "".join(f"{c:>16}" for c in cells)
