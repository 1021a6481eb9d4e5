"""Stopping a child process together with everything it started.

Commands such as `dagster dev`, `wandb sync` or the W&B worker start processes of their own (a
code server, a daemon, `wandb-core`), and stopping only the child leaves those running. So such a
child is started as the leader of a process group of its own (``start_new_session=True``, see
:data:`OWN_GROUP`), and stopped here as a group: asked first, so a server can shut down cleanly,
then killed if any of it is still there once the grace period is over.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

# Popen keywords that make the child the leader of a group (and session) of its own, so
# `stop_process_group` reaches whatever it starts and never the caller's own group.
OWN_GROUP: dict[str, Any] = {"start_new_session": True}

_POLL_SECONDS = 0.05


def stop_process_group(process: subprocess.Popen[Any], grace_seconds: float = 5.0) -> None:
    """SIGTERM the process group ``process`` leads, wait up to ``grace_seconds`` for all of it to
    exit, SIGKILL whatever is left, and reap the leader.

    Waiting for the whole group and not only the leader matters: a leader often exits first and
    its children (a code server, a service it started) are still shutting down. Safe to call on a
    process that has already exited.
    """
    group = process.pid
    if process.poll() is None and _group_of(group) not in (None, group):
        # killpg with this id would reach no group at all, or someone else's: refuse rather than
        # leave the process running.
        raise ValueError(f"process {group} does not lead a process group of its own: start it with OWN_GROUP")
    if _signal_group(group, signal.SIGTERM) and _wait_for_group(process, group, grace_seconds):
        return
    if _signal_group(group, signal.SIGKILL):
        # SIGKILL cannot be ignored: the only wait left is the kernel's tearing down.
        _wait_for_group(process, group, max(grace_seconds, 1.0))
    process.wait()


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _signal_group(group: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when no member of it is left."""
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):  # gone, or the id now names someone else's group
        return False
    return True


def _wait_for_group(process: subprocess.Popen[Any], group: int, seconds: float) -> bool:
    """True once every member of the group is gone, False if some are still there after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        process.poll()  # reaps the leader once it exits: a zombie still counts as a member
        if not _signal_group(group, 0):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)
