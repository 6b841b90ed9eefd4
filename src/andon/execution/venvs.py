"""Per-step environments: a Python step that declares ``requirements:`` runs in a virtualenv
of its own, built once per requirements (cached by their hash and the Python version under
the project's ``.andon/venvs``); one that declares ``image:`` runs in that OCI image. Either
way it runs in a subprocess that reads its inputs and writes its output by path."""

from __future__ import annotations

import json
import re
import shutil
import site
import subprocess
import sys
import tempfile
import uuid
import venv
from pathlib import Path
from typing import TYPE_CHECKING

from andon.errors import ConfigError, StepError
from andon.execution.pytask import PythonTask, TaskOutcome
from andon.stepenv import environment_key, requirement_lines, requirements_file

if TYPE_CHECKING:
    from andon.steps import Step

READY = ".andon-ready"
RUNTIMES = ("docker", "podman")
_PIP_ERROR_RE = re.compile(r"^ERROR: (.*)$", re.MULTILINE)


class StepEnvRunner:
    """Runs a step in its own environment (``andon.execution.pytask.TaskRunner``)."""

    def __init__(self, project_root: Path) -> None:
        self.cache = project_root / ".andon" / "venvs"

    def run(self, task: PythonTask, step: Step) -> TaskOutcome:
        if step.config.image is not None:
            command = container_command(step.config.image, step, task)
        else:
            python = ensure_venv(self.cache, step)
            command = [str(python), "-m", "andon.execution.pytask"]
        return run_subprocess(command, task, step)

    def cancel(self) -> None:
        return None

    def close(self) -> None:
        return None


def ensure_venv(cache: Path, step: Step) -> Path:
    """The Python of the step's virtualenv, built when its requirements are new. Built in a
    temporary folder and renamed into place: a failed install leaves nothing cached."""
    lines = requirement_lines(step.config, step.file, step.name)
    folder = cache / environment_key(lines, step.file.parent)
    python = folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if (folder / READY).exists():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{folder.name}.{uuid.uuid4().hex[:8]}"
    try:
        venv.EnvBuilder(with_pip=False, symlinks=sys.platform != "win32").create(tmp)
        _pip_install(tmp, lines, step)
        # andon's own packages (pyarrow, andon itself) come after the step's requirements:
        # written after the install, so pip never sees (nor uninstalls) them
        (_site_packages(tmp) / "_andon_parent.pth").write_text(
            "".join(f"import site; site.addsitedir({p!r})\n" for p in _parent_site_dirs()),
            encoding="utf-8")
        (tmp / READY).write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            tmp.rename(folder)
        except OSError:
            if not (folder / READY).exists():  # not built meanwhile by another run
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return python


def _pip_install(env: Path, lines: list[str], step: Step) -> None:
    if not lines:
        return
    req = requirements_file(step.config, step.file)
    with tempfile.TemporaryDirectory(prefix="andon-req-") as scratch:
        if req is None:
            req = Path(scratch) / "requirements.txt"
            req.write_text("\n".join(lines) + "\n", encoding="utf-8")
        python = env / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
        command = [sys.executable, "-m", "pip", "--python", str(python), "install",
                   "--disable-pip-version-check", "--no-input", "-r", str(req)]
        done = subprocess.run(command, cwd=step.file.parent, capture_output=True, text=True,
                              check=False)
    if done.returncode != 0:
        output = done.stderr + done.stdout
        errors = _PIP_ERROR_RE.findall(output)
        culprit = next((line for line in lines if any(_names(line, e) for e in errors)), None)
        first = errors[0] if errors else f"pip exited with code {done.returncode}"
        raise StepError(
            "installing the step's requirements failed"
            + (f" at requirement {culprit!r}" if culprit else "") + f": {first}",
            file=step.file, line=step.line, step=step.name,
            detail="\n".join(output.strip().splitlines()[-8:]),
            hint="fix the requirement (pip install it in a fresh virtualenv to see the same "
            "error); the environment was not changed")


def _names(line: str, error: str) -> bool:
    name = re.split(r"[\s<>=!~;\[@]", line.strip(), maxsplit=1)[0]
    return bool(name) and name.lower() in error.lower()


def _site_packages(env: Path) -> Path:
    if sys.platform == "win32":
        return env / "Lib" / "site-packages"
    return env / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def _parent_site_dirs() -> list[str]:
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE and Path(site.getusersitepackages()).is_dir():
        dirs.append(site.getusersitepackages())
    return dirs


def container_runtime() -> tuple[str | None, str]:
    """(docker or podman whose daemon answers, or None; why none does)."""
    problems: list[str] = []
    for name in RUNTIMES:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            done = subprocess.run([path, "info"], capture_output=True, text=True, timeout=30,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            problems.append(f"{name}: {e}")
            continue
        if done.returncode == 0:
            return path, ""
        lines = [x.strip() for x in done.stderr.splitlines() if x.strip()]
        problems.append(f"{name}: {lines[-1] if lines else f'exit code {done.returncode}'}")
    if not problems:
        return None, f"no container runtime was found ({' or '.join(RUNTIMES)} on PATH)"
    return None, "no container runtime answers (" + "; ".join(problems) + ")"


def container_command(image: str, step: Step, task: PythonTask) -> list[str]:
    """Run the task in ``image`` (which must have andon installed), with the step's folder,
    its inputs and its output folder mounted at the same paths."""
    runtime, why = container_runtime()
    if runtime is None:
        raise ConfigError(
            f"the step runs in image {image!r}, but {why}",
            file=step.file, line=step.line, step=step.name,
            hint="install and start Docker or Podman, or remove image: to run the step with "
            "requirements: in a virtualenv")
    folders = {step.file.parent, Path(task.out).parent}
    folders |= {Path(f).parent for files in task.inputs.values() for f in files}
    mounts = [arg for f in sorted(folders) for arg in ("-v", f"{f}:{f}")]
    return [runtime, "run", "--rm", *mounts, "-w", str(step.file.parent), image,
            "python", "-m", "andon.execution.pytask"]


def run_subprocess(command: list[str], task: PythonTask, step: Step) -> TaskOutcome:
    """Run ``command TASK.json OUTCOME.json`` (andon.execution.pytask's main) and read the
    outcome; a process that dies without one is the step's failure, with its stderr."""
    scratch = Path(task.out).parent  # mounted in a container too
    name = uuid.uuid4().hex[:8]
    task_file, outcome_file = scratch / f".task-{name}.json", scratch / f".outcome-{name}.json"
    task_file.write_text(task.to_json(), encoding="utf-8")
    try:
        done = subprocess.run([*command, str(task_file), str(outcome_file)],
                              cwd=step.file.parent, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not outcome_file.exists():
            raise StepError(
                f"the step's Python process exited with code {done.returncode}",
                file=step.file, line=step.line, step=step.name,
                detail="\n".join(done.stderr.strip().splitlines()[-12:]),
                hint="see the error above; the environment was not changed")
        return TaskOutcome(**json.loads(outcome_file.read_text(encoding="utf-8")))
    finally:
        task_file.unlink(missing_ok=True)
        outcome_file.unlink(missing_ok=True)
