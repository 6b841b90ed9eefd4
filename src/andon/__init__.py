"""andon: DataOps in one tool. Tested SQL and Python pipelines, content-addressed artifacts,
environments as pointers.

    import andon
    project = andon.Project.load("path/to/project")
    result = andon.run(project)            # plan, build, check, publish to prod
    session = andon.Session(project, user="alice")   # every verb, checked against her role
    cols, rows = andon.query(project, "SELECT count(*) FROM flights")
"""

from andon.catalog import lineage, query, rejects, run_details, runs, show, tables
from andon.errors import AndonError
from andon.events import RunResult, StepResult
from andon.plan import Plan, PlannedStep
from andon.project import Project
from andon.service import Session, plan, run
from andon.steps import step

__version__ = "0.1.0"

__all__ = [
    "AndonError",
    "Plan",
    "PlannedStep",
    "Project",
    "RunResult",
    "Session",
    "StepResult",
    "__version__",
    "lineage",
    "plan",
    "query",
    "rejects",
    "run",
    "run_details",
    "runs",
    "show",
    "step",
    "tables",
]
