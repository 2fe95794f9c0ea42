"""Where the current champion came from: registry alias -> model version -> flow run -> stages and data."""
from __future__ import annotations

import mlflow

from prompt_models.config import PipelineConfig


class LineageError(LookupError):
    pass


def champion_lineage(cfg: PipelineConfig, alias: str | None = None) -> dict:
    """The registered model behind ``alias`` and the flow run, datasets and stage runs that made it."""
    name, alias = cfg.tracking.registered_model, alias or cfg.tracking.alias
    client = mlflow.MlflowClient(cfg.tracking_uri())
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException as exc:
        raise LineageError(f"no model {name!r} with alias {alias!r} in {cfg.tracking_uri()}: run the pet flow first") from exc
    register_run = client.get_run(mv.run_id)
    parent_id = register_run.data.tags.get("mlflow.parentRunId")
    parent = client.get_run(parent_id) if parent_id else register_run
    stages = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["attributes.start_time ASC"]
    )
    return {
        "model": name,
        "alias": alias,
        "version": str(mv.version),
        "version_tags": dict(mv.tags),
        "flow": {
            "prefect_flow_run_id": parent.data.tags.get("prefect.flow_run_id"),
            "prefect_flow_name": parent.data.tags.get("prefect.flow_name"),
            "mlflow_run_id": parent.info.run_id,
            "mlflow_run_name": parent.info.run_name,
            "status": parent.info.status,
        },
        "datasets": [
            {
                "name": d.dataset.name,
                "digest": d.dataset.digest,
                "source": d.dataset.source,
                "context": next((t.value for t in d.tags if t.key == "mlflow.data.context"), None),
            }
            for d in parent.inputs.dataset_inputs
        ],
        "stages": [
            {
                "stage": r.data.tags.get("stage"),
                "run_id": r.info.run_id,
                "cached": r.data.tags.get("cached"),
                "source_run_id": r.data.tags.get("source_run_id"),
                "metrics": r.data.metrics,
            }
            for r in stages
        ],
    }
