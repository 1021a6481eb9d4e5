"""Wall time and peak memory of a whole process tree, read from /proc (Linux), no dependency.

A command is started in its own session, so everything it spawns (Dagster's code server, the
W&B service, joblib workers) either stays in that session or descends from it. While it runs,
every process of the tree is sampled every `poll` seconds (the tree itself is re-read from all
of /proc every few samples) and the resident set sizes are summed; the largest sum is the tree's
peak. Shared pages are counted once per process, so the sum is an upper bound of what the tree
really holds. `wait4` adds the exact peak of the largest single
process (the kernel's own `ru_maxrss`), which is a lower bound.

Without /proc (not Linux) only the wall time and the `wait4` figure are reported.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rental_pipeline.processes import OWN_GROUP, stop_process_group

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
PROC = Path("/proc")


@dataclass
class Measurement:
    """One run of one command."""

    argv: list[str]
    returncode: int
    seconds: float
    peak_tree_rss: int | None  # bytes: the largest sampled sum over the tree
    max_process_rss: int  # bytes: the kernel's ru_maxrss of the largest single process
    processes: int  # distinct processes seen in the tree
    samples: int
    stdout: str = ""
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0  # wall clock (epoch seconds) when the command was started

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def peak_rss(self) -> int:
        """The tree figure when /proc was readable, else the single-process one."""
        return self.peak_tree_rss if self.peak_tree_rss is not None else self.max_process_rss

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("stdout")
        record.pop("stderr")
        record["peak_rss"] = self.peak_rss
        return record

    def tail(self, lines: int = 30) -> str:
        text = (self.stdout + "\n" + self.stderr).strip().splitlines()
        return "\n".join(text[-lines:])


class CommandFailed(RuntimeError):
    def __init__(self, measurement: Measurement) -> None:
        self.measurement = measurement
        super().__init__(
            f"{' '.join(measurement.argv)} exited {measurement.returncode} after {measurement.seconds:.1f} s:\n"
            f"{measurement.tail()}"
        )


def _stat(pid: str) -> tuple[int, int, int] | None:
    """(ppid, session, rss bytes) of a live process, or None once it is gone."""
    try:
        raw = (PROC / pid / "stat").read_bytes()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or parentheses.
    fields = raw[raw.rfind(b")") + 2 :].split()
    # After the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
    # stime cutime cstime priority nice threads itrealvalue starttime vsize rss ...
    return int(fields[1]), int(fields[3]), int(fields[21]) * PAGE_SIZE


def tree_rss(root: int, known: set[int], *, rescan: bool = True) -> int:
    """Summed RSS of `root`, its descendants and its session.

    `known` collects the pids seen, so a process that outlives its parent and is re-parented
    still counts. A rescan reads every process of the machine (about 10 ms); without one only the
    known members are read again, which is what keeps frequent sampling cheap.
    """
    if not rescan:
        total = 0
        for pid in list(known | {root}):
            found = _stat(str(pid))
            if found is None:
                known.discard(pid)
            else:
                total += found[2]
        return total
    table: dict[int, tuple[int, int, int]] = {}
    for entry in os.listdir(PROC):
        if entry.isdigit():
            found = _stat(entry)
            if found is not None:
                table[int(entry)] = found
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    members = {pid for pid, (_, session, _) in table.items() if session == root}
    members |= {pid for pid in known if pid in table}
    stack = [root, *members]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, ()):
            if child not in members:
                members.add(child)
                stack.append(child)
    members = {pid for pid in members | {root} if pid in table}
    known.clear()
    known |= members
    return sum(table[pid][2] for pid in members)


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    log_dir: Path | None = None,
    timeout: float | None = None,
    poll: float = 0.1,
    rescan_every: int = 5,
    check: bool = True,
) -> Measurement:
    """Run `argv` to completion, sampling its process tree; stdout and stderr go to files in
    `log_dir` (never to pipes, so a chatty command cannot block) and are kept on the result."""
    argv = [str(a) for a in argv]
    log_dir = Path(log_dir) if log_dir is not None else None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{time.time_ns()}-{Path(argv[0]).name}"
        out_path, err_path = log_dir / f"{stem}.out", log_dir / f"{stem}.err"
    else:
        out_path = err_path = Path(os.devnull)
    use_proc = PROC.joinpath("self", "stat").exists()
    known: set[int] = set()
    seen: set[int] = set()
    peak = 0
    samples = 0
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started_at = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, env=dict(env) if env is not None else None, cwd=cwd, stdout=out, stderr=err,
            stdin=subprocess.DEVNULL, **OWN_GROUP,
        )
        max_rss = 0
        while True:
            pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                max_rss = int(rusage.ru_maxrss) * 1024
                break
            if use_proc:
                peak = max(peak, tree_rss(process.pid, known, rescan=samples % rescan_every == 0))
                samples += 1
                seen |= known
            if timeout is not None and time.perf_counter() - started > timeout:
                # No grace: the command has had its time, and what it holds is not measured any more.
                stop_process_group(process, grace_seconds=0.0)
                break
            time.sleep(poll)
        seconds = time.perf_counter() - started
    _stop_leftovers(process.pid, seen)
    measurement = Measurement(
        argv=argv,
        returncode=process.returncode,
        seconds=seconds,
        peak_tree_rss=peak if use_proc and samples else None,
        max_process_rss=max_rss,
        processes=len(seen),
        samples=samples,
        stdout=_read(out_path),
        stderr=_read(err_path),
        started_at=started_at,
    )
    if measurement.peak_tree_rss is not None:
        # A run shorter than one poll still held at least its largest process.
        measurement.peak_tree_rss = max(measurement.peak_tree_rss, measurement.max_process_rss)
    if check and not measurement.ok:
        raise CommandFailed(measurement)
    return measurement


def _read(path: Path) -> str:
    if path == Path(os.devnull):
        return ""
    return path.read_text(encoding="utf-8", errors="replace")


def _stop_leftovers(root: int, known: set[int], grace: float = 3.0) -> None:
    """Processes of the run's session still alive after it exited (a service that lingers) get a
    short grace period, then are killed by their pid: they belong to this measurement only."""
    deadline = time.monotonic() + grace
    while True:
        alive = [pid for pid in known if pid != root and _session_of(pid) == root]
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _session_of(pid: int) -> int | None:
    found = _stat(str(pid))
    return found[1] if found is not None else None


def gib(nbytes: float | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**30:.2f} GiB"


def mib(nbytes: float | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / 2**20:,.0f} MiB"
