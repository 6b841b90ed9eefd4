"""A Python step as a task that runs away from the runner: on a Dask worker, or in a step's
own virtualenv. It reads its inputs and writes its output by reference (artifact file paths),
so no table travels through a scheduler or a pipe; the runner stages and seals what it wrote.

``python -m andon.execution.pytask TASK.json OUTCOME.json`` runs one task in a subprocess
(the step's virtualenv)."""

from __future__ import annotations

import json
import os
import sys
import traceback
import typing
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from andon.errors import AndonError, StepError

if TYPE_CHECKING:
    import pyarrow as pa

    from andon.config import ExecutorConfig
    from andon.engines.base import Engine
    from andon.steps import Step

DYNAMIC = "<dynamic-code>"  # cloudpickle's file name of code it pickled by value
_ANDON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class PythonTask:
    """What a worker needs to build one Python step's output file: plain values (picklable
    and JSON-able) and file paths, never tables."""

    step: str
    file: str  # the step's Python file (errors; imported when there is no payload)
    function: str  # the function's name in its file
    line: int
    inputs: dict[str, list[str]]  # parameter -> the artifact files of that input
    annotations: dict[str, str]  # parameter -> its annotation as text (pandas, polars, ...)
    kwargs: dict[str, Any]  # params and context: JSON values
    out: str  # the Parquet file to write, in the runner's staging folder
    payload: bytes | None = field(default=None, repr=False)  # the function, cloudpickled

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "payload"},
                          default=str)

    @classmethod
    def from_json(cls, text: str) -> PythonTask:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class TaskOutcome:
    """How a task ended: the rows written, or the step's error as plain values (a user's
    exception class may not exist where the runner unpickles it)."""

    rows: int = 0
    message: str | None = None  # None: succeeded
    hint: str = ""
    line: int | None = None
    detail: str = ""

    def raise_for(self, task: PythonTask) -> int:
        """The rows written, or the StepError this outcome describes."""
        if self.message is None:
            return self.rows
        raise StepError(self.message, file=task.file, line=self.line, step=task.step,
                        detail=self.detail, hint=self.hint)


def run_task(task: PythonTask) -> TaskOutcome:
    """Run one task where it was sent: read the inputs, call the function, write its result
    to ``task.out`` (through a temporary name: a killed worker leaves no ``.parquet``)."""
    try:
        func = _load(task)
        kwargs = dict(task.kwargs)
        reader = _reader()
        for name, files in task.inputs.items():
            kwargs[name] = convert_in(reader.read_arrow(files), task.annotations.get(name, ""))
    except AndonError as e:
        return TaskOutcome(message=e.message, hint=e.hint, line=e.line, detail=e.detail)
    try:
        result = func(**kwargs)
    except Exception as e:
        # a function pickled by value has lost its file name: it is the step's file
        detail = user_traceback(e, {DYNAMIC: task.file})
        return TaskOutcome(message=raised_message(e), detail=detail, hint=RAISED_HINT,
                           line=user_line(e, Path(task.file), DYNAMIC))
    try:
        table = convert_out(result, step=task.step, file=Path(task.file), line=task.line)
    except AndonError as e:
        return TaskOutcome(message=e.message, hint=e.hint, line=e.line)
    from andon.kinds import artifact_format

    out = Path(task.out)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    rows = artifact_format("parquet").write(table, tmp)
    os.replace(tmp, out)
    return TaskOutcome(rows=rows)


_READERS: dict[int, Engine] = {}


def _reader() -> Engine:
    """One engine per process reads the inputs (a worker runs many tasks)."""
    engine = _READERS.get(os.getpid())
    if engine is None:
        from andon import engines

        engine = _READERS[os.getpid()] = engines.create("duckdb", threads=1)
    return engine


def _load(task: PythonTask) -> typing.Callable[..., Any]:
    if task.payload is not None:
        import cloudpickle  # type: ignore[import-untyped]

        return typing.cast(typing.Callable[..., Any], cloudpickle.loads(task.payload))
    from andon.steps import import_file

    path = Path(task.file)
    module = import_file(path, f"andon_task_{path.stem}_{uuid.uuid4().hex[:8]}", "step")
    return typing.cast(typing.Callable[..., Any], getattr(module, task.function))


# where tasks run -----------------------------------------------------------------------------


class TaskRunner(Protocol):
    """Runs Python steps' tasks away from the runner's process (the ``executor:`` of
    andon.yaml, or a step's own environment). ``run`` blocks until the task's outcome;
    ``cancel`` stops the tasks in flight; ``close`` lets go of what it opened."""

    def run(self, task: PythonTask, step: Step) -> TaskOutcome: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


def in_process(config: ExecutorConfig, threads: int) -> TaskRunner | None:
    """The ``threads`` executor: Python steps run in the runner's own threads."""
    return None


def open_runner(config: ExecutorConfig, threads: int) -> TaskRunner | None:
    """The task runner of andon.yaml's ``executor:`` (None: Python steps run here)."""
    from andon.config import EXECUTORS

    runner: TaskRunner | None = EXECUTORS.get_kind(config.kind).open(config, threads)
    return runner


# what a Python step's function gets and returns (shared with the in-process build) ---------

RAISED_HINT = "fix the function; the environment was not changed"


def raised_message(e: BaseException) -> str:
    return f"the Python step raised {type(e).__name__}: {e}"


def annotation_text(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else repr(annotation)


def convert_in(table: pa.Table, annotation: Any) -> Any:
    """An input table as the type its parameter is annotated with."""
    text = annotation_text(annotation)
    if "pandas" in text or "pd." in text:
        return table.to_pandas()
    if "polars" in text or "pl." in text:
        import polars as pl

        return pl.from_arrow(table)
    return table


def convert_out(result: Any, *, step: str, file: Path, line: int) -> pa.Table:
    """A step function's result as an Arrow table (StepError: a type it cannot return)."""
    import pyarrow as pa

    if isinstance(result, pa.Table):
        return result
    if isinstance(result, pa.RecordBatchReader):
        return result.read_all()
    module = type(result).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(result, preserve_index=False)
    if module == "polars":
        return typing.cast(pa.Table, result.to_arrow())
    if module == "duckdb" and hasattr(result, "to_arrow_table"):
        return typing.cast(pa.Table, result.to_arrow_table())
    raise StepError(
        f"the Python step returned {type(result).__name__}",
        file=file,
        line=line,
        step=step,
        hint="return a pyarrow.Table, a pandas.DataFrame or a polars.DataFrame",
    )


def user_traceback(e: BaseException, rename: dict[str, str] | None = None) -> str:
    """The traceback without andon's own frames (``rename``: file names to show instead)."""
    frames = [
        traceback.FrameSummary(rename[f.filename], f.lineno, f.name)
        if rename and f.filename in rename else f
        for f in traceback.extract_tb(e.__traceback__)
        if not f.filename.startswith(_ANDON_DIR)
    ]
    lines = ["Traceback (most recent call last):", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(e), e)
    return "".join(x if x.endswith("\n") else x + "\n" for x in lines).rstrip()


def user_line(e: BaseException, file: Path, *aliases: str) -> int | None:
    """The last line of ``file`` (or of a file named one of ``aliases``) in the exception's
    traceback."""
    line = None
    names = {str(file), *aliases}
    for f in traceback.extract_tb(e.__traceback__):
        if f.filename in names:
            line = f.lineno
    return line


def main(argv: list[str]) -> int:
    """Run the task in ``argv[0]`` (JSON) and write its outcome to ``argv[1]`` (JSON)."""
    task = PythonTask.from_json(Path(argv[0]).read_text(encoding="utf-8"))
    outcome = run_task(task)
    Path(argv[1]).write_text(json.dumps(asdict(outcome)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
