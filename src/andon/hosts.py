"""This machine's processes: whether the holder of a lease or a staging folder still runs."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (or cannot be signalled)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
