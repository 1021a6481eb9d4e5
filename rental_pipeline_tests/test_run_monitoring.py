"""Run monitoring: a run whose process was killed is marked failed by the daemon, not left STARTED.

The slow test is the real thing: `dagster job execute` on the project's instance config, its
`raw_data` step held by a loopback server that accepts the connection and never answers, the
process group killed with SIGKILL, then `dagster-daemon run` on the same instance. Only the poll
interval of the copied dagster.yaml is shortened (60 s to 1 s), and the run carries the per-run
limit `dagster/max_runtime` (4 s instead of the instance's hour), so it ends in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from rental_pipeline_tests.conftest import PROJECT_ROOT


def test_the_instance_configs_turn_run_monitoring_on(isolated_state):
    home = isolated_state / "dagster"
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    with dg.DagsterInstance.get() as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_max_runtime_seconds == 3600
        assert instance.run_monitoring_max_resume_run_attempts == 0  # the local launcher cannot resume
    local = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())["run_monitoring"]
    shared = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster-postgres.yaml").read_text())["run_monitoring"]
    assert shared == local
    cluster = yaml.safe_load((PROJECT_ROOT / "deploy" / "values.yaml").read_text())["dagsterDaemon"]["runMonitoring"]
    assert cluster["enabled"] is True


class SilentServer:
    """Accepts connections on loopback and never answers: a download that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connected = threading.Event()
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                connection, _ = self.listener.accept()
                self.held.append(connection)
                self.connected.set()
        except OSError:
            return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/listings.csv"

    def close(self) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.slow
def test_a_killed_run_is_marked_failed_by_the_daemon(isolated_state, tmp_path):
    home = isolated_state / "dagster"
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = 1
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    server = SilentServer()
    run_config = tmp_path / "hang.yaml"
    run_config.write_text(
        yaml.safe_dump({"ops": {"raw_data": {"config": {"source": server.url, "timeout_seconds": 600}}}})
    )
    bin_dir = Path(sys.executable).parent
    worker = subprocess.Popen(
        [str(bin_dir / "dagster"), "job", "execute", "-m", "rental_pipeline.definitions", "-j", "training_job",
         "-c", str(run_config), "--tags", json.dumps({"dagster/max_runtime": "4"})],
        cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    daemon = None
    try:
        with dg.DagsterInstance.get() as instance:
            _wait_for(server.connected.is_set, 90, "raw_data to start downloading")
            (run,) = instance.get_runs()
            assert run.status == dg.DagsterRunStatus.STARTED
            os.killpg(worker.pid, signal.SIGKILL)  # the run's process dies without a word
            worker.wait(timeout=15)
            # No daemon is running yet, so nothing can have noticed: no need to wait to see that.
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # nobody knows yet

            daemon = subprocess.Popen(
                [str(bin_dir / "dagster-daemon"), "run", "-m", "rental_pipeline.definitions"],
                cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            finished = _wait_for(
                lambda: (r := instance.get_run_by_id(run.run_id)).is_finished and r, 120, "the daemon to end the run"
            )
            assert finished.status == dg.DagsterRunStatus.FAILURE
            messages = [e.message for e in instance.all_logs(run.run_id) if e.message]
            assert any("maximum runtime" in m or "forcibly marked as failed" in m for m in messages)
    finally:
        _stop(worker)
        if daemon is not None:
            _stop(daemon)
        server.close()
