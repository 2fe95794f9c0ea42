"""What happens when a pipeline run fails or crashes: a flow ``on_failure`` / ``on_crashed`` hook.

It logs one error line naming the flow run and, when ``PET_FAILURE_WEBHOOK`` is set, POSTs a small
JSON record (flow, run id, state, message) to that URL, e.g. a chat or paging webhook. For richer
routing use a Prefect automation on the ``prefect.flow-run.Failed`` event instead (see README).
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger("pet")


def failure_record(flow, flow_run, state) -> dict:
    return {
        "flow": flow.name,
        "flow_run_id": str(flow_run.id),
        "flow_run_name": flow_run.name,
        "state": state.type.value if state.type else str(state),
        "message": state.message,
        "parameters": {k: str(v) for k, v in (flow_run.parameters or {}).items()},
    }


def notify_failure(flow, flow_run, state) -> None:
    record = failure_record(flow, flow_run, state)
    log.error("pipeline run %s (%s) ended %s: %s", record["flow_run_name"], record["flow"], record["state"], record["message"])
    url = os.environ.get("PET_FAILURE_WEBHOOK")
    if url:
        import httpx

        try:
            httpx.post(url, json=record, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:  # a failed notification must not hide the failure itself
            log.error("could not notify %s: %s", url, exc)
