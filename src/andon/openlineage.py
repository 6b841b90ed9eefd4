"""OpenLineage events of every run (https://openlineage.io, spec 2-0-2).

A run is a job ``PROJECT`` (START when it starts; COMPLETE, FAIL or ABORT when it ends, with
the check results as data-quality assertions of the tables they checked); every step it
builds is a job ``PROJECT.STEP`` whose run has the andon run as parent, with its input and
output datasets, their schemas and the output's column lineage. Run ids are UUIDs derived
from the project and andon's run id, so the same run always has the same id.

Events go to ``.andon/openlineage/events.jsonl`` (one JSON object a line) or, when
``openlineage.url`` is set in andon.yaml, are POSTed to that server's lineage API. Sending
never fails a run: a transport error is logged as a warning.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from andon.events import Listener, NullListener, RunResult, StepResult

if TYPE_CHECKING:
    from andon.config import OpenLineageConfig
    from andon.lineage import Graph
    from andon.plan import Plan
    from andon.project import Project

log = logging.getLogger("andon.openlineage")

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PRODUCER = "https://pypi.org/project/andon/"
FACETS = "https://openlineage.io/spec/facets/"
SCHEMA_FACET = FACETS + "1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
COLUMN_FACET = FACETS + "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
QUALITY_FACET = (FACETS + "1-0-1/DataQualityAssertionsDatasetFacet.json"
                 "#/$defs/DataQualityAssertionsDatasetFacet")
ERROR_FACET = FACETS + "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
PARENT_FACET = FACETS + "1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet"
JOB_TYPE_FACET = FACETS + "2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
SQL_FACET = FACETS + "1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet"

END_STATES = {"succeeded": "COMPLETE", "failed": "FAIL", "cancelled": "ABORT"}
STEP_STATES = {"built": "COMPLETE", "failed": "FAIL", "cancelled": "ABORT"}
SUBTYPES = {"identity": "IDENTITY", "transformation": "TRANSFORMATION",
            "aggregation": "AGGREGATION", "join": "JOIN", "filter": "FILTER",
            "group_by": "GROUP_BY", "sort": "SORT", "window": "WINDOW",
            "conditional": "CONDITIONAL"}

Event = dict[str, Any]
Transport = Callable[[Event], None]


def run_uuid(project: str, run_id: int, step: str | None = None) -> str:
    """A stable UUID for an andon run (or one step of it) of a project."""
    name = f"andon:{project}:run:{run_id}" + (f":step:{step}" if step else "")
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _facet(url: str, **body: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": url, **body}


# transports -------------------------------------------------------------------------------

@dataclass
class FileTransport:
    """Appends each event as one JSON line to ``folder/events.jsonl``."""

    folder: Path

    @property
    def path(self) -> Path:
        return self.folder / "events.jsonl"

    def __call__(self, event: Event) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")


@dataclass
class HttpTransport:
    """POSTs each event as JSON to the server's lineage API (Marquez, DataHub, ...)."""

    url: str
    api_key: str | None = None
    timeout: float = 5.0

    def __call__(self, event: Event) -> None:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=json.dumps(event, default=str).encode(),
                                     headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            resp.read()


def transport_for(project: Project, environment: str) -> Transport | None:
    """The project's transport (None: OpenLineage is switched off)."""
    cfg: OpenLineageConfig = project.config.openlineage
    if not cfg.enabled:
        return None
    if not cfg.url:
        return FileTransport(project.root / ".andon" / "openlineage")
    key = None
    if cfg.api_key_secret:
        from andon.secrets import get_secret

        key = get_secret(project.store, project.root, cfg.api_key_secret, environment)
    url = cfg.url.rstrip("/") + "/" + cfg.endpoint.lstrip("/")
    return HttpTransport(url, key, cfg.timeout)


# events -----------------------------------------------------------------------------------

@dataclass
class Emitter:
    """Builds a run's events and sends them; a failed send is a warning, never an error."""

    project: Project
    transport: Transport
    namespace: str = ""
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        cfg = self.project.config.openlineage
        self.namespace = self.namespace or cfg.namespace or f"andon://{self.project.name}"

    def send(self, event: Event) -> None:
        try:
            self.transport(event)
        except (OSError, urllib.error.URLError, ValueError) as e:
            what = f"{event['eventType']} {event['job']['name']}"
            message = f"OpenLineage event not sent ({what}): {e}"
            self.errors.append(message)
            log.warning(message)

    def dataset(self, environment: str, table: str) -> dict[str, str]:
        return {"namespace": self.namespace, "name": f"{environment}.{table}"}

    def event(self, kind: str, run_id: str, job: str, *, run_facets: Mapping[str, Any] = {},
              job_facets: Mapping[str, Any] = {}, inputs: Sequence[Event] = (),
              outputs: Sequence[Event] = (), when: str | None = None) -> Event:
        return {
            "eventType": kind,
            "eventTime": when or _now(),
            "producer": PRODUCER,
            "schemaURL": SPEC,
            "run": {"runId": run_id, "facets": dict(run_facets)},
            "job": {"namespace": self.namespace, "name": job, "facets": dict(job_facets)},
            "inputs": list(inputs),
            "outputs": list(outputs),
        }

    def run_started(self, run_id: int, plan: Plan) -> None:
        self.send(self.event("START", run_uuid(self.project.name, run_id), self.project.name,
                             job_facets=_job_type("DAG")))

    def run_finished(self, plan: Plan, result: RunResult, graph: Graph | None,
                     schemas: Mapping[str, Sequence[tuple[str, str]]]) -> None:
        parent = run_uuid(self.project.name, result.run_id)
        env = result.environment
        for step in result.steps:
            state = STEP_STATES.get(step.action)
            if state is not None:
                self.send(self.step_event(state, parent, env, step, graph, schemas))
        facets: dict[str, Any] = {}
        if result.error is not None:
            facets["errorMessage"] = _facet(ERROR_FACET, message=result.error.render(),
                                            programmingLanguage="python")
        self.send(self.event(END_STATES[result.status], parent, self.project.name,
                             run_facets=facets, job_facets=_job_type("DAG"),
                             inputs=self.checked(env, result.checks, schemas)))

    def step_event(self, state: str, parent: str, env: str, result: StepResult,
                   graph: Graph | None, schemas: Mapping[str, Sequence[tuple[str, str]]]
                   ) -> Event:
        name = result.name
        step = self.project.dag.steps.get(name)
        parents = step.parents if step is not None else ()
        run_facets: dict[str, Any] = {"parent": _facet(
            PARENT_FACET, run={"runId": parent},
            job={"namespace": self.namespace, "name": self.project.name})}
        if result.error is not None:
            run_facets["errorMessage"] = _facet(ERROR_FACET, message=result.error.render(),
                                                programmingLanguage="python")
        job_facets = _job_type("TASK")
        if step is not None and step.kind == "sql" and step.sql:
            job_facets["sql"] = _facet(SQL_FACET, query=step.sql)
        inputs = [self.with_schema(self.dataset(env, p), schemas.get(p)) for p in parents]
        output = self.with_schema(self.dataset(env, name), schemas.get(name))
        if state == "COMPLETE" and graph is not None and name in graph.steps:
            facet = self.column_facet(env, graph, name)
            if facet is not None:
                output["facets"]["columnLineage"] = facet
        step_run = str(uuid.uuid5(uuid.UUID(parent), name))  # stable, like the run's
        return self.event(state, step_run, f"{self.project.name}.{name}",
                          run_facets=run_facets, job_facets=job_facets, inputs=inputs,
                          outputs=[output])

    def with_schema(self, ds: dict[str, str], schema: Sequence[tuple[str, str]] | None
                    ) -> Event:
        out: Event = {**ds, "facets": {}}
        if schema:
            out["facets"]["schema"] = _facet(SCHEMA_FACET, fields=[
                {"name": c, "type": t} for c, t in schema])
        return out

    def column_facet(self, env: str, graph: Graph, table: str) -> dict[str, Any] | None:
        lin = graph.steps[table]
        if lin.level != "column" or not lin.edges:
            return None  # not traced, or a source: its columns come from files
        indirect = [e for e in lin.edges if e.output == "*"]
        fields: dict[str, Any] = {}
        for col in lin.columns:
            inputs: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for e in [x for x in lin.edges if x.output == col] + indirect:
                kind = "INDIRECT" if e.indirect else "DIRECT"
                inputs.setdefault((e.table, e.column), []).append(
                    {"type": kind, "subtype": SUBTYPES.get(e.kind, e.kind.upper()),
                     "description": e.kind, "masking": e.masking})
            fields[col] = {"inputFields": [
                {**self.dataset(env, t), "field": c, "transformations": tr}
                for (t, c), tr in inputs.items()]}
        return _facet(COLUMN_FACET, fields=fields)

    def checked(self, env: str, checks: Sequence[Any],
                schemas: Mapping[str, Sequence[tuple[str, str]]]) -> list[Event]:
        """The tables the run checked, with each check as a data-quality assertion."""
        by_table: dict[str, list[dict[str, Any]]] = {}
        for c in checks:
            if c.status == "recorded":
                continue  # a metric recorded, not a pass/fail assertion
            assertion: dict[str, Any] = {"assertion": c.name, "success": c.status == "passed"}
            column = _check_column(c)
            if column:
                assertion["column"] = column
            by_table.setdefault(c.table, []).append(assertion)
        out = []
        for table, assertions in by_table.items():
            ds = self.with_schema(self.dataset(env, table), schemas.get(table))
            ds["inputFacets"] = {"dataQualityAssertions": _facet(QUALITY_FACET,
                                                                 assertions=assertions)}
            out.append(ds)
        return out


def _check_column(check: Any) -> str | None:
    threshold = getattr(check, "threshold", None) or {}
    column = threshold.get("column") if isinstance(threshold, dict) else None
    return str(column) if column else None


def _job_type(kind: str) -> dict[str, Any]:
    return {"jobType": _facet(JOB_TYPE_FACET, processingType="BATCH", integration="ANDON",
                              jobType=kind)}


# the run listener -------------------------------------------------------------------------

class RunLineage:
    """A run listener (wrapping the caller's): records the column lineage of what the run
    built and emits its OpenLineage events. Neither can fail the run."""

    def __init__(self, project: Project, inner: Listener | None = None,
                 transport: Transport | None = None) -> None:
        self.project = project
        self.inner = inner or NullListener()
        self.plan: Plan | None = None
        self.emitter: Emitter | None = None
        self._transport = transport
        self.started = time.time()

    def run_started(self, run_id: int, plan: Any) -> None:
        self.plan = plan
        try:
            transport = self._transport or transport_for(self.project, plan.environment)
        except Exception as e:
            log.warning("OpenLineage is off for this run: %s", e)
            transport = None
        if transport is not None:
            self.emitter = Emitter(self.project, transport)
            self.emitter.run_started(run_id, plan)
        self.inner.run_started(run_id, plan)

    def step_started(self, name: str, action: str) -> None:
        self.inner.step_started(name, action)

    def step_finished(self, result: StepResult) -> None:
        self.inner.step_finished(result)

    def run_finished(self, result: RunResult) -> None:
        graph = None
        schemas: dict[str, list[tuple[str, str]]] = {}
        if self.plan is not None:
            from andon.lineage import record

            try:
                graph = record(self.project, self.plan)
                fps = {s.name: s.fingerprint for s in self.plan.steps}
                rows = self.project.store.artifacts(fps.values())
                schemas = {n: [(str(c[0]), str(c[1])) for c in rows[fp]["schema"]]
                           for n, fp in fps.items() if fp in rows}
            except Exception as e:
                log.warning("column lineage not recorded: %s", e)
            if self.emitter is not None:
                try:
                    self.emitter.run_finished(self.plan, result, graph, schemas)
                except Exception as e:
                    log.warning("OpenLineage events not sent: %s", e)
        self.inner.run_finished(result)


__all__ = ["Emitter", "FileTransport", "HttpTransport", "RunLineage", "run_uuid",
           "transport_for"]
