"""Stopping a process group (rental_pipeline/processes.py), with real processes. Each child says
when it is ready, so no test depends on how fast the machine is."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from rental_pipeline.processes import OWN_GROUP, stop_process_group


def living_members(group: int) -> list[int]:
    """Processes of ``group`` that are not zombies (a zombie waits for a parent that may not be
    this test's, e.g. a container's first process that never reaps)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_bytes()
        except OSError:
            continue
        state, _ppid, pgrp = raw[raw.rfind(b")") + 2 :].split()[:3]
        if int(pgrp) == group and state != b"Z":
            members.append(int(entry.name))
    return members


def start(script: str) -> subprocess.Popen[str]:
    """`bash -c script` leading a group of its own; returns once it printed `ready`."""
    process = subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True, **OWN_GROUP)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def test_a_group_that_ignores_sigterm_is_killed_children_included() -> None:
    # Ignored signals stay ignored across fork and exec: the child `sleep` ignores SIGTERM too.
    process = start("trap '' TERM; sleep 600 & echo ready; wait")
    assert len(living_members(process.pid)) == 2
    stop_process_group(process, grace_seconds=0.2)
    assert process.returncode == -signal.SIGKILL
    assert living_members(process.pid) == []


def test_a_group_that_stops_on_sigterm_is_not_killed() -> None:
    process = start("sleep 600 & echo ready; wait")
    stop_process_group(process, grace_seconds=60)
    assert process.returncode == -signal.SIGTERM
    assert living_members(process.pid) == []


def test_children_left_behind_by_an_exited_leader_are_stopped() -> None:
    process = start("trap '' TERM; sleep 600 & echo ready")
    process.wait()  # the leader is gone; its child still runs in the group
    assert len(living_members(process.pid)) == 1
    stop_process_group(process, grace_seconds=0.2)
    assert living_members(process.pid) == []


def test_a_process_without_a_group_of_its_own_is_refused() -> None:
    process = subprocess.Popen(["sleep", "600"])
    try:
        with pytest.raises(ValueError, match="does not lead a process group"):
            stop_process_group(process)
        assert process.poll() is None  # nothing was signalled
    finally:
        process.kill()
        process.wait()
