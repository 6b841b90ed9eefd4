"""File-arrival sensors: which files in a source's folder are new since the sensor's cursor.

The cursor maps each file seen (relative to the project) to its size and modification time,
so a file replaced in place counts as new again; a file still being written (changed less
than ``settle_seconds`` ago) waits for the next evaluation."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from andon.schedule.model import SensorConfig

if TYPE_CHECKING:
    from andon.config import SourceConfig
    from andon.project import Project


@dataclass(frozen=True)
class Scan:
    """The files of the source now (the next cursor) and those of them that are new."""

    cursor: dict[str, list[int]]
    new: tuple[str, ...]


def source_of(project: Project, sensor: SensorConfig) -> SourceConfig:
    """The sensor's source, its path rendered with the project's parameters."""
    step = project.dag.steps.get(sensor.source)
    if step is not None and step.source is not None:
        return step.source
    from andon.config import SourceConfig
    from andon.errors import ConfigError

    source = project.config.sources[sensor.source]
    if not isinstance(source, SourceConfig):  # sources are of a kind (andon.kinds)
        raise ConfigError(f"source {sensor.source!r} is of kind {source.kind!r}: a sensor "
                          "watches the folder of a files source")
    return source


def _files(project: Project, sensor: SensorConfig) -> list[Path]:
    from andon.landing import discover
    from andon.project import CONFIG_FILE

    return discover(project.root, sensor.source, source_of(project, sensor),
                    project.root / CONFIG_FILE)


def check_folder(project: Project, sensor: SensorConfig) -> None:
    """Raise SourceError when the source's folder (or single file) does not exist."""
    _files(project, sensor)


def scan(project: Project, name: str, sensor: SensorConfig,
         seen: dict[str, list[int]]) -> Scan:
    """Compare the source's files with ``seen``. A folder that vanished raises SourceError
    naming the sensor."""
    from andon.errors import SourceError

    try:
        files = _files(project, sensor)
    except SourceError as e:
        raise SourceError(f"sensor {name!r}: {e.message}", file=e.file, step=e.step,
                          hint=e.hint) from e
    wall = time.time()  # modification times are the file system's clock, not the scheduler's
    cursor: dict[str, list[int]] = {}
    new: list[str] = []
    for path in files:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue  # gone between listing and looking
        rel = os.path.relpath(path, project.root)
        signature = [st.st_size, st.st_mtime_ns]
        if seen.get(rel) == signature:
            cursor[rel] = signature
        elif wall - st.st_mtime >= sensor.settle_seconds:
            cursor[rel] = signature
            new.append(rel)
    return Scan(cursor, tuple(new))
