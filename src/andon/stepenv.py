"""A Python step's own environment, as it declares it: pip requirements (lines, or a file
next to the step) or an OCI image. What it declares goes into the step's fingerprint, and
the requirements' hash names the virtualenv it runs in (``andon.execution.venvs``)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from andon.config import StepConfig
from andon.errors import ConfigError

# folders of a local package that are built output, not its source
_SKIP_DIRS = {"__pycache__", "build", "dist", ".git", ".venv"}


def requirement_lines(config: StepConfig, step_file: Path, step: str) -> list[str]:
    """The step's requirements: its list, or the lines of its requirements file (relative
    to the step's file), without blank lines and comments."""
    req = config.requirements
    if req is None:
        return []
    if isinstance(req, str):
        path = requirements_file(config, step_file)
        assert path is not None
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read the requirements file {req!r}: {e.strerror}",
                              file=step_file, step=step,
                              hint="the path is relative to the step's file") from None
        lines = text.splitlines()
    else:
        lines = list(req)
    return [s for s in (line.split(" #")[0].strip() for line in lines)
            if s and not s.startswith("#")]


def requirements_file(config: StepConfig, step_file: Path) -> Path | None:
    if not isinstance(config.requirements, str):
        return None
    return (step_file.parent / config.requirements).resolve()


def environment_text(config: StepConfig, step_file: Path, step: str) -> str:
    """What the step's environment adds to its fingerprint ("" when it declares none, so
    other steps keep their fingerprints): the requirement lines and the content of each
    local package they name, or the image."""
    if config.image is not None:
        return f"\nimage {config.image}"
    if config.requirements is None:
        return ""
    lines = requirement_lines(config, step_file, step)
    return "\nrequirements " + requirements_digest(lines, step_file.parent)


def requirements_digest(lines: list[str], folder: Path) -> str:
    """A digest of the requirement lines and of the files of each local path among them (a
    changed local package is a changed requirement)."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode() + b"\n")
        local = _local_path(line, folder)
        if local is not None:
            _hash_tree(h, local)
    return h.hexdigest()[:32]


def environment_key(lines: list[str], folder: Path) -> str:
    """The name of the virtualenv the requirements are installed in: their digest and the
    Python that runs them."""
    python = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}." \
             f"{sys.version_info[2]}-{sys.platform}"
    digest = hashlib.sha256(f"{python}\n{requirements_digest(lines, folder)}".encode())
    return digest.hexdigest()[:24]


def _local_path(line: str, folder: Path) -> Path | None:
    if line.startswith("-"):
        return None  # an option (--no-index, -r other.txt, -e ...)
    text = line.split(";")[0].strip()
    if not (text.startswith((".", "/", "~")) or os.sep in text):
        return None
    path = (folder / os.path.expanduser(text)).resolve()
    return path if path.exists() else None


def _hash_tree(h: hashlib._Hash, path: Path) -> None:
    if path.is_file():
        h.update(path.name.encode() + b"\0" + path.read_bytes())
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            file = Path(root) / name
            h.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
