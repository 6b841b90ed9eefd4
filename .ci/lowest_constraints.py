"""Print a pip constraints file pinning every direct dependency of andon that `.[test]`
installs (runtime and the extras `test` names) to the lowest version pyproject.toml allows,
so CI can test the bottom of each range.

Usage: python .ci/lowest_constraints.py > constraints.txt  (needs the `packaging` package)
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version


def lowest_pins(pyproject: Path, extra: str = "test") -> list[str]:
    """Pins for what ``pip install ".[EXTRA]"`` installs: the core dependencies, the extra and
    the extras it names (``andon[a,b]``), not the extras it leaves out (an optional extra
    that needs a newer version of a core dependency must not lift that core bound here)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    lines = [*project["dependencies"]]
    wanted, seen = [extra], set()
    while wanted:
        name = wanted.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in extras[name]:
            req = Requirement(line)
            if req.name == project["name"]:
                wanted.extend(req.extras)  # andon[...]: its own extras
            else:
                lines.append(line)
    pins: dict[str, Version] = {}
    for line in lines:
        req = Requirement(line)
        lower = [s.version for s in req.specifier if s.operator in (">=", "==")]
        if len(lower) != 1:
            sys.exit(f"pyproject.toml: {line!r} needs one lower bound (>= or ==) to be tested")
        # a package named twice (the core and an extra that needs a newer one): the extra's
        # bound is the lowest version a user installing these extras can get
        low = Version(lower[0])
        pins[req.name] = max(low, pins.get(req.name, low))
    return sorted(f"{name}=={version}" for name, version in pins.items())


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print("\n".join(lowest_pins(root / "pyproject.toml")))
