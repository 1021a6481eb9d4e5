"""The code location for Kubernetes: the project's definitions, each step in its own Kubernetes Job.

Locally every run executes in one process (`dagster.in_process_executor`, set in
`rental_pipeline/definitions.py`). On a cluster the K8sRunLauncher already gives each run its own
pod; this module goes one step further and runs every step (and every asset check step) as its
own Job through `dagster_k8s.k8s_job_executor`, so the training step can be given more CPU and
memory than the others and a failed step can be retried alone.

Steps inherit the run launcher's pod settings (volumes, secrets, env) from the Helm values, so
they all see the artifact store at $RENTAL_PIPELINE_HOME and the W&B key.

Load it with `dagster api grpc --python-file deploy/definitions_k8s.py` (see deploy/values.yaml).
It needs the `dagster-k8s` package, which the image installs (deploy/Dockerfile); the project
itself does not depend on it.
"""

import dagster as dg
from dagster_k8s import k8s_job_executor

from rental_pipeline import definitions as local

# Only this module-level Definitions object: Dagster refuses a module that exposes two.
defs = dg.Definitions(
    assets=local.defs.assets,
    asset_checks=local.defs.asset_checks,
    jobs=local.defs.jobs,
    schedules=local.defs.schedules,
    sensors=local.defs.sensors,
    resources=local.defs.resources,
    loggers=local.defs.loggers,
    metadata=local.defs.metadata,
    executor=k8s_job_executor.configured({"max_concurrent": 2}, name="k8s_job_executor"),
)
