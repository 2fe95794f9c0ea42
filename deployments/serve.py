"""Serve the pipeline's deployments from this process (``python -m deployments.serve``).

* ``pet-scheduled``: the full pet flow on a cron schedule (default 02:00 UTC daily).
* ``relabel-on-new-data``: the relabel flow, started by a ``pet.unlabeled.arrived`` event whose
  payload names the new file (see ``deployments.watch``, or emit it from any producer).

Environment (``deployments.settings``): PET_CONFIG (config path, default configs/sst2.yaml),
PET_CRON, PET_TIMEOUT_HOURS (a run still going after this many hours is stopped and marked failed;
default 6), PET_FAILURE_WEBHOOK (see ``flows.hooks``). The served runs read the same environment.
"""
from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron

from deployments.definitions import DEPLOYMENTS, EVENT, EVENT_RESOURCE, trigger_parameters
from deployments.settings import settings
from flows.quiet import quiet_noise


def build_deployments() -> list[RunnerDeployment]:
    """The deployments of ``deployments.definitions`` with the environment's settings."""
    now = settings()
    out = []
    for d in DEPLOYMENTS:
        triggers = [DeploymentEventTrigger(expect={EVENT}, match={"prefect.resource.id": EVENT_RESOURCE},
                                           parameters=trigger_parameters(now.config_path))] if d.on_arrival else []
        out.append(RunnerDeployment.from_entrypoint(
            d.entrypoint,
            name=d.name,
            schedules=[Cron(now.cron, timezone="UTC")] if d.scheduled else None,
            triggers=triggers,
            parameters={"config_path": now.config_path},
            concurrency_limit=d.concurrency_limit,
            tags=list(d.tags),
            description=d.description,
        ))
    return out


if __name__ == "__main__":
    quiet_noise(0)  # inherited by the flow runs it starts (transformers' weights table, progress bars)
    serve(*build_deployments())
