"""Section 6: start-up. The code location's import in a fresh interpreter (beside `import
dagster` and a bare interpreter, interleaved), `rental-pipeline --help`, and `dagster dev` from
its start until the web server answers."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from benchmarks.harness import BIN, PROJECT_ROOT, Bench, Workspace, fmt_s, log, median
from benchmarks.measure import mib, tree_rss
from rental_pipeline.processes import OWN_GROUP, stop_process_group

LABEL = "6 start-up"
DEV_GOAL_SECONDS = 6.0  # `dagster dev` answering on /server_info
IMPORT_GOAL_SECONDS = 1.2  # `import rental_pipeline.definitions` in a fresh interpreter


def run(bench: Bench) -> None:
    sizes, add = bench.sizes, bench.report.add
    imports = []
    # Short commands: the process is polled every 10 ms (not 100 ms) so the figure is the
    # command's, and /proc is rescanned rarely so the sampling costs the machine little.
    quick = {"poll": 0.01, "rescan_every": 50}
    with bench.workspace("import") as ws:
        for rep in range(sizes.import_repeats):
            log(f"startup: import {rep + 1}/{sizes.import_repeats}")
            bare = ws.run([sys.executable, "-c", "pass"], **quick)
            dagster = ws.run([sys.executable, "-c", "import dagster"], **quick)
            full = ws.run([sys.executable, "-c", "import rental_pipeline.definitions"], **quick)
            cli = ws.run([BIN / "rental-pipeline", "--help"], **quick)
            imports.append({"interpreter": bare.seconds, "dagster": dagster.seconds, "import": full.seconds,
                            "cli_help": cli.seconds, "peak_rss": full.peak_rss})
    seconds = median([i["import"] for i in imports])
    interpreter = median([i["interpreter"] for i in imports])
    dagster_only = median([i["dagster"] for i in imports])
    add(LABEL, "`import rental_pipeline.definitions` (fresh interpreter, whole process)",
        fmt_s(seconds), f"<= {IMPORT_GOAL_SECONDS} s", seconds <= IMPORT_GOAL_SECONDS,
        note=f"median of {len(imports)} interleaved; the floor, `import dagster`: "
        f"{dagster_only:.2f} s; bare interpreter {interpreter:.2f} s")
    add(LABEL, "`rental-pipeline --help`", fmt_s(median([i["cli_help"] for i in imports])),
        note=f"median of {len(imports)}")
    devs = []
    for rep in range(sizes.dev_repeats):
        log(f"startup: dagster dev {rep + 1}/{sizes.dev_repeats}")
        with bench.workspace("dev") as ws:
            devs.append(dagster_dev_ready(ws))
    ready = [d["seconds"] for d in devs if d["seconds"] is not None]
    if ready:
        value = median(ready)
        add(LABEL, "`dagster dev` until `/server_info` answers", fmt_s(value),
            f"<= {DEV_GOAL_SECONDS:g} s", value <= DEV_GOAL_SECONDS,
            note=f"median of {len(ready)}, peak RSS {mib(median([d['peak_rss'] for d in devs]))}")
    else:
        add(LABEL, "`dagster dev` until `/server_info` answers", "did not answer",
            f"<= {DEV_GOAL_SECONDS:g} s", False, note=devs[-1].get("error", "") if devs else "")
    bench.report.results["startup"] = {"import": imports, "import_seconds": seconds,
                                       "dagster_import_seconds": dagster_only, "dev": devs}


def dagster_dev_ready(ws: Workspace, limit: float = 180.0) -> dict[str, Any]:
    """Seconds from starting `dagster dev` to a 200 from `/server_info`, then the group is stopped.

    It runs in a group of its own because, started from a script, it ignores SIGINT and SIGTERM
    (design notes): the whole group is stopped by its id, which is this process's child.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}/server_info"
    ws.logs.mkdir(exist_ok=True)
    with open(ws.logs / "dev.out", "wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
            env=ws.env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            **OWN_GROUP,
        )
        known: set[int] = set()
        peak = 0
        seconds = None
        error = ""
        samples = 0
        try:
            while time.perf_counter() - started < limit:
                if process.poll() is not None:
                    error = f"dagster dev exited {process.returncode}"
                    break
                try:
                    with urllib.request.urlopen(url, timeout=1.0) as answer:
                        if answer.status == 200:
                            seconds = time.perf_counter() - started
                            break
                except (urllib.error.URLError, OSError):
                    pass
                peak = max(peak, tree_rss(process.pid, known, rescan=samples % 5 == 0))
                samples += 1
                time.sleep(0.1)
            else:
                error = f"no answer within {limit:.0f} s"
        finally:
            stop_process_group(process, grace_seconds=10.0)
    record = {"seconds": seconds, "peak_rss": peak, "processes": len(known), "port": port}
    if error:
        record["error"] = error + ": " + (ws.logs / "dev.out").read_text(errors="replace")[-2000:]
    return record


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
