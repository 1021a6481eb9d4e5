"""The code location for Kubernetes: the project's definitions, each step in its own Kubernetes Job,
every artifact in S3-compatible object storage.

Locally every run executes in one process (`dagster.in_process_executor`, set in
`rental_pipeline/definitions.py`) on a store in a local folder. On a cluster the K8sRunLauncher
already gives each run its own pod; this module goes one step further and runs every step (and
every asset check step) as its own Job through `dagster_k8s.k8s_job_executor`, so the training
step can be given more CPU and memory than the others and a failed step can be retried alone.

Pods on different nodes share no folder, so the artifact store must be object storage: its root is
`$RENTAL_PIPELINE_STORE` (`s3://bucket/prefix`, set in deploy/values.yaml), read in each pod when
the resource starts. Credentials come from the pod's environment or role, never from here.

Load it with `dagster api grpc --python-file deploy/definitions_k8s.py` (see deploy/values.yaml).
It needs the `dagster-k8s` package, which the image installs (deploy/Dockerfile, the project's
`k8s` extra).
"""

import os

import dagster as dg
from dagster_k8s import k8s_job_executor

from rental_pipeline import definitions as local
from rental_pipeline.io_manager import ArtifactStoreResource

STORE_VARIABLE = "RENTAL_PIPELINE_STORE"

if not os.environ.get(STORE_VARIABLE, "").startswith("s3://"):
    raise RuntimeError(
        f"{STORE_VARIABLE} must name the team's object storage (s3://bucket/prefix, see deploy/values.yaml): "
        f"run and step pods share no folder, so a local store would lose every artifact between steps "
        f"(found {os.environ.get(STORE_VARIABLE)!r})"
    )

# Only the store changes: the local code location's IO manager (`artifact_io_manager`) takes the
# run's `artifact_store` resource by key, so assets, checks and the IO manager all use this one,
# or the root a run's config gives it.
artifact_store = ArtifactStoreResource(root=dg.EnvVar(STORE_VARIABLE))

# Only this module-level Definitions object: Dagster refuses a module that exposes two.
defs = dg.Definitions(
    assets=local.defs.assets,
    asset_checks=local.defs.asset_checks,
    jobs=local.defs.jobs,
    schedules=local.defs.schedules,
    sensors=local.defs.sensors,
    resources={**local.defs.resources, "artifact_store": artifact_store},
    loggers=local.defs.loggers,
    metadata=local.defs.metadata,
    executor=k8s_job_executor.configured({"max_concurrent": 2}, name="k8s_job_executor"),
)
