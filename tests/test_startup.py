"""Start-up stays cheap: `import andon`, the CLI module and `andon --help` do not load the heavy
libraries (each costs a few hundred milliseconds on every command). Checked on sys.modules of a
fresh interpreter, not by timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("duckdb", "pyarrow", "sqlalchemy", "pandas", "numpy")


def loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    return [m for m in HEAVY if m in modules]


@pytest.mark.parametrize("code", [
    "import andon",
    "import andon.cli",
    "from andon.cli import run_cli\nassert run_cli(['--help']) == 0",
    "from andon.cli import run_cli\nassert run_cli(['env', '--help']) == 0",
])
def test_start_up_does_not_load_heavy_libraries(code: str) -> None:
    assert loaded_after(code) == []


def test_api_names_still_resolve_on_first_use() -> None:
    import andon
    import andon.plan  # the submodule must not hide the function of the same name
    from andon.plan import Plan

    assert callable(andon.plan) and not isinstance(andon.plan, type(andon))
    assert andon.Plan is Plan
    assert set(andon.__all__) >= {"Project", "run", "query", "AndonError", "__version__"}
    for name in andon.__all__:
        assert getattr(andon, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = andon.nope  # type: ignore[attr-defined]
