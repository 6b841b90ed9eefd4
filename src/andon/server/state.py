"""What every request of the server shares (``ServerState``), reached from a request by
``state_of``: the project, the address served, the runs started here and the caches."""

from __future__ import annotations

from fastapi import Request

from andon.project import Project
from andon.server.cache import ArtifactPages
from andon.server.callers import Callers
from andon.server.live import LiveRuns
from andon.server.recent import Recent

LOOPBACK = ("127.0.0.1", "::1", "localhost")
READS = ("GET", "HEAD", "OPTIONS")  # methods that change nothing


class ServerState:
    """What every request shares: the project (read once, tolerant of broken files, as the
    CLI's reading commands), the address served, the runs this process started, and answers
    reused for a second (``recent``: forgotten whenever a request may have changed something)."""

    def __init__(self, project: Project, host: str) -> None:
        self.project = project
        self.host = host
        self.loopback = host in LOOPBACK or host.startswith("127.")
        self.runs = LiveRuns()
        self.pages = ArtifactPages()
        self.recent = Recent()
        self.callers = Callers(project, self.recent)  # who calls: kept per store version

    def local_admin(self) -> bool:
        """Whether a request without a token acts as the local user: only on a loopback
        address while no users are configured (then, as in the CLI, that user is admin)."""
        return self.loopback and not self.project.store.users.any()


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.andon
    return state


__all__ = ["LOOPBACK", "READS", "ServerState", "state_of"]
