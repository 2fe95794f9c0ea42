"""The pipeline's deployments, defined once.

``deployments.serve`` serves them from one process; ``python -m deployments.render_yaml`` writes
them into prefect.yaml for ``prefect deploy`` (tests/test_deployments.py checks the committed file
is what this module renders). Both point at the flows of ``deployments/entrypoints.py``: pet_flow
and relabel_flow with the config's task runner (threads x parallelism, Dask or Ray) and the run
timeout applied. Prefect runs a deployment by importing its entrypoint afresh (``serve`` too), so
options given to a flow object anywhere else would be lost.
"""
from __future__ import annotations

from dataclasses import dataclass

EVENT = "pet.unlabeled.arrived"
EVENT_RESOURCE = "pet.unlabeled.*"
WORK_POOL = "pet-process"


@dataclass(frozen=True)
class Deployment:
    name: str
    attr: str  # the configured flow's name in deployments/entrypoints.py
    description: str
    tags: tuple[str, ...]
    scheduled: bool = False  # on PET_CRON
    on_arrival: bool = False  # started by an EVENT whose payload `path` names the new file
    concurrency_limit: int = 1  # a late run never overlaps the previous one

    @property
    def entrypoint(self) -> str:
        return f"deployments/entrypoints.py:{self.attr}"


DEPLOYMENTS = (
    Deployment(
        name="pet-scheduled",
        attr="pet_scheduled",
        description="Train pattern models, soft-label, distill and register the champion classifier.",
        tags=("pet",),
        scheduled=True,
    ),
    Deployment(
        name="relabel-on-new-data",
        attr="relabel_on_new_data",
        description="Soft-label only new unlabeled texts with the existing ensemble and re-distill.",
        tags=("pet", "relabel"),
        on_arrival=True,
    ),
)


def trigger_parameters(config_path: str) -> dict:
    """The flow parameters of a run started by EVENT (Prefect fills the payload template)."""
    return {"config_path": config_path, "unlabeled_path": "{{ event.payload.path }}"}


def configured(flow_obj, config_path: str, timeout_seconds: float):
    """``flow_obj`` as a deployment runs it: on the config's task runner, stopped after the timeout."""
    from flows.runners import task_runner
    from pet_config.loading import load_config

    return flow_obj.with_options(timeout_seconds=timeout_seconds, task_runner=task_runner(load_config(config_path)))
