"""Serve the pipeline's deployments from this process (``python -m deployments.serve``).

* ``pet-scheduled``: the full pet flow on a cron schedule (default 02:00 UTC daily).
* ``relabel-on-new-data``: the relabel flow, started by a ``pet.unlabeled.arrived`` event whose
  payload names the new file (see ``deployments.watch``, or emit it from any producer).

Environment: PET_CONFIG (config path, default configs/sst2.yaml), PET_CRON, PET_TIMEOUT_HOURS (a
run still going after this many hours is stopped and marked failed; default 6), PET_FAILURE_WEBHOOK
(see ``flows.hooks``).
"""
from __future__ import annotations

import os

from prefect import serve
from prefect.events import DeploymentEventTrigger

from flows.pet_flow import pet_flow, relabel_flow
from flows.runners import task_runner
from pet_config.loading import load_config

EVENT = "pet.unlabeled.arrived"


def build_deployments(config_path: str | None = None, cron: str | None = None) -> list:
    config_path = config_path or os.environ.get("PET_CONFIG", "configs/sst2.yaml")
    cron = cron or os.environ.get("PET_CRON", "0 2 * * *")
    timeout = float(os.environ.get("PET_TIMEOUT_HOURS", "6")) * 3600
    runner = task_runner(load_config(config_path))  # threads, Dask or Ray, as the config says
    scheduled = pet_flow.with_options(timeout_seconds=timeout, task_runner=runner).to_deployment(
        name="pet-scheduled",
        cron=cron,
        parameters={"config_path": config_path},
        concurrency_limit=1,  # a late nightly run never overlaps the previous one
        tags=["pet"],
        description="Train pattern models, soft-label, distill and register the champion classifier.",
    )
    on_new_data = relabel_flow.with_options(timeout_seconds=timeout, task_runner=runner).to_deployment(
        name="relabel-on-new-data",
        parameters={"config_path": config_path},
        triggers=[
            DeploymentEventTrigger(
                expect={EVENT},
                match={"prefect.resource.id": "pet.unlabeled.*"},
                parameters={"config_path": config_path, "unlabeled_path": "{{ event.payload.path }}"},
            )
        ],
        concurrency_limit=1,
        tags=["pet", "relabel"],
        description="Soft-label only new unlabeled texts with the existing ensemble and re-distill.",
    )
    return [scheduled, on_new_data]


if __name__ == "__main__":
    serve(*build_deployments())
