"""Start-up: how long a command takes before it does anything.

Times fresh processes (median of --repeat, 5 by default):
  python -c pass          the interpreter alone (the floor)
  import andon            the Python API
  andon --help            the command line, nothing loaded
  andon tables            on the flights example after one run (project load + store read)
and lists which heavy libraries `import andon` and `import andon.cli` load.
Targets: `andon --help` <= 0.3 s, `andon tables` <= 0.5 s.

The example project is created once in benchmarks/.work/startup-flights (git-ignored);
--fresh recreates it.

    python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import HERE, machine, median, row

HEAVY = ("duckdb", "pyarrow", "sqlalchemy", "pandas", "numpy", "sqlglot", "jinja2", "pydantic")
TARGETS = {"andon --help": 0.3, "andon tables": 0.5}


def andon_command() -> list[str]:
    script = Path(sys.executable).with_name("andon")
    return [str(script)] if script.exists() else [sys.executable, "-m", "andon"]


def timed(cmd: list[str], repeat: int, cwd: Path | None = None
          ) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + sys) of each run: CPU time is steadier when
    other work shares the cores."""
    seconds, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        seconds.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return seconds, cpu


def loaded(module: str) -> list[str]:
    probe = (f"import sys, {module}; "
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    return out.split()


def example(fresh: bool) -> Path:
    root = HERE / ".work" / "startup-flights"
    if fresh and root.exists():
        shutil.rmtree(root)
    if not (root / ".andon").exists():
        print("  creating the flights example and running it once (first time only) ...",
              flush=True)
        from andon import examples

        shutil.rmtree(root, ignore_errors=True)
        examples.init_project(root, "flights")
        subprocess.run([*andon_command(), "run", "-p", str(root)], check=True,
                       capture_output=True)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--fresh", action="store_true", help="recreate the example project")
    args = ap.parse_args()
    print(f"start-up, median of {args.repeat} fresh processes, {machine()}\n")
    root = example(args.fresh)
    andon = andon_command()
    cases = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "import andon": ([sys.executable, "-c", "import andon"], None),
        "andon --help": ([*andon, "--help"], None),
        "andon tables": ([*andon, "tables"], root),
    }
    print(row("command", "median s", "min s", "max s", "CPU s", "target s", "result"))
    for label, (cmd, cwd) in cases.items():
        s, cpu = timed(cmd, args.repeat, cwd)
        target = TARGETS.get(label)
        verdict = "" if target is None else ("PASS" if median(s) <= target else "FAIL")
        print(row(label, f"{median(s):.3f}", f"{min(s):.3f}", f"{max(s):.3f}",
                  f"{median(cpu):.3f}", "" if target is None else f"{target:.2f}", verdict))
    print()
    for module in ("andon", "andon.cli"):
        heavy = loaded(module)
        print(f"  import {module} loads: {', '.join(heavy) or 'none of ' + ', '.join(HEAVY)}")


if __name__ == "__main__":
    main()
