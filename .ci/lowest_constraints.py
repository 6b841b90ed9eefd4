"""Print a pip constraints file pinning every direct dependency of andon (runtime and every
extra) to the lowest version pyproject.toml allows, so CI can test the bottom of each range.

Usage: python .ci/lowest_constraints.py > constraints.txt  (needs the `packaging` package)
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version


def lowest_pins(pyproject: Path) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    lines = [*project["dependencies"]]
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    pins: dict[str, Version] = {}
    for line in lines:
        req = Requirement(line)
        if req.name == project["name"]:
            continue  # andon[...] refers to its own extras, listed here already
        lower = [s.version for s in req.specifier if s.operator in (">=", "==")]
        if len(lower) != 1:
            sys.exit(f"pyproject.toml: {line!r} needs one lower bound (>= or ==) to be tested")
        # a package named twice (the core and an extra that needs a newer one): the extra's
        # bound is the lowest version a user installing every extra can get
        low = Version(lower[0])
        pins[req.name] = max(low, pins.get(req.name, low))
    return sorted(f"{name}=={version}" for name, version in pins.items())


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print("\n".join(lowest_pins(root / "pyproject.toml")))
