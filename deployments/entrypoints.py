"""The flows every deployment runs (see ``deployments.definitions``).

Prefect imports this file afresh for each deployed run, in the checkout the flows run from, with
PET_CONFIG and PET_TIMEOUT_HOURS in the environment (``deployments.serve``'s own environment, or
the job variables prefect.yaml gives the worker); the runner comes from that config.
"""
from __future__ import annotations

from flows.quiet import quiet_noise

quiet_noise(0)  # before transformers and MLflow load: a served run's log reads like the `pet` command's
from deployments.definitions import configured  # noqa: E402
from deployments.settings import settings  # noqa: E402
from flows.pet_flow import pet_flow, relabel_flow  # noqa: E402

_now = settings()
pet_scheduled = configured(pet_flow, _now.config_path, _now.timeout_seconds)
relabel_on_new_data = configured(relabel_flow, _now.config_path, _now.timeout_seconds)
