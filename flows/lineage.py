"""Where the current champion came from: registry alias -> model version -> flow run -> stages and data."""
from __future__ import annotations

from pathlib import Path

import mlflow

from pet_config.schema import PipelineConfig


class LineageError(LookupError):
    pass


def store_exists(uri: str) -> bool:
    """False for a sqlite store whose file is not there (opening it would create it)."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).exists()  # sqlite:////abs/path or sqlite:///relative
    return True


def version_for(client, name: str, alias: str, uri: str):
    try:
        model = client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        raise LineageError(f"no registered model {name!r} in {uri}: run the pet flow first") from None
    try:
        return client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        known = sorted(getattr(model, "aliases", {}) or {})
        raise LineageError(f"model {name!r} has no alias {alias!r}; its aliases: {known}") from None


def _flow_lineage(client, parent) -> dict:
    stages = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["attributes.start_time ASC"]
    )
    return {
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
                "cached": r.data.tags.get("cached") == "true",  # the tag is "true" / "false"
                "source_run_id": r.data.tags.get("source_run_id"),
                "metrics": r.data.metrics,
            }
            for r in stages
        ],
    }


def champion_lineage(cfg: PipelineConfig, alias: str | None = None) -> dict:
    """The registered model behind ``alias`` and the flow run, datasets and stage runs that made it.

    A classifier registered by a relabel run also gets ``ensemble``: the pet run that trained the
    pattern models it was distilled from (their training data and stage runs). ``earlier_relabels``: the
    relabel runs of the same ensemble before this one, whose texts' soft labels it was distilled on too. Reads only.
    """
    name, alias, uri = cfg.tracking.registered_model, alias or cfg.tracking.alias, cfg.tracking_uri()
    if not store_exists(uri):
        raise LineageError(f"no MLflow store at {uri}: run the pet flow first")
    client = mlflow.MlflowClient(uri)
    mv = version_for(client, name, alias, uri)
    register_run = client.get_run(mv.run_id)
    parent_id = register_run.data.tags.get("mlflow.parentRunId")
    parent = client.get_run(parent_id) if parent_id else register_run
    out = {"model": name, "alias": alias, "version": str(mv.version), "version_tags": dict(mv.tags)}
    out.update(_flow_lineage(client, parent))
    source = parent.data.tags.get("ensemble_source_run_id")
    if source:  # relabel: the ensemble was trained by an earlier pet run
        out["ensemble"] = _flow_lineage(client, client.get_run(source))
    out["earlier_relabels"] = _earlier_relabels(client, parent)
    return out


def _earlier_relabels(client, parent) -> list[dict]:
    """The relabel flow runs that soft-labeled texts with ``parent``'s ensemble before it started: a run distills on
    every soft label its ensemble has in the store (a failed relabel's finished shards too), not only its own file's."""
    stages = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}' "
                                "and tags.stage = 'distill'")
    key = next((r.data.tags["ensemble_key"] for r in stages if r.data.tags.get("ensemble_key")), None)
    if key is None:  # a run that stopped before distilling: nothing was distilled on
        return []
    # filtered in the query and read page by page: the stage runs of every run of this ensemble carry the key too
    query = (f"tags.ensemble_key = '{key}' and tags.`prefect.flow_name` = 'relabel' and metrics.n_new_unlabeled > 0 "
             f"and attributes.start_time < {parent.info.start_time}")
    runs, token = [], None
    while True:
        page = client.search_runs([parent.info.experiment_id], query, order_by=["attributes.start_time ASC"],
                                  page_token=token)
        runs += [r for r in page if "mlflow.parentRunId" not in r.data.tags]
        if not (token := page.token):
            return [dict(_flow_lineage(client, r), n_new=int(r.data.metrics["n_new_unlabeled"])) for r in runs]


def check_champion_labels(cfg: PipelineConfig) -> None:
    """Refuse a run whose registered model's champion classifies other labels: two tasks sharing one
    ``tracking.registered_model`` (two configs with one ``name``) would compare a classifier with the other
    task's champion (a crash at the end of the run, after the new version was registered) and `pet predict`
    would go on labeling this task's texts with the other task's labels."""
    name, uri = cfg.tracking.registered_model, cfg.tracking_uri()
    if not store_exists(uri):
        return
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    try:
        champion = client.get_model_version_by_alias(name, cfg.tracking.alias)
    except mlflow.exceptions.MlflowException:  # no such model or alias yet
        return
    location = client.get_model_version_download_uri(name, str(champion.version))
    mlmodel = mlflow.artifacts.download_artifacts(artifact_uri=f"{location}/MLmodel", tracking_uri=uri)
    labels = (mlflow.models.Model.load(mlmodel).metadata or {}).get("labels")
    if labels is not None and [str(x) for x in labels] != list(cfg.labels):
        if sorted(str(x) for x in labels) == sorted(cfg.labels):  # an edited order, not another task
            raise LineageError(f"registered model {name!r}: its {cfg.tracking.alias} (v{champion.version}) has the "
                               f"same labels in another order {labels}; a classifier's outputs follow that order: "
                               f"write `labels: {[str(x) for x in labels]}` back, or give this config its own "
                               "`name` and `tracking.registered_model`")
        raise LineageError(f"registered model {name!r}: its {cfg.tracking.alias} (v{champion.version}) classifies "
                           f"labels {labels}, this config {list(cfg.labels)}; another task's pipeline? give this one "
                           "its own `name` and `tracking.registered_model`")


def lineage_lines(out: dict) -> str:
    """``champion_lineage`` for a person: the version, the flow run, each dataset and each stage on a line of its own
    (``--json`` gives all of it, the version's tags and the stages' metrics included)."""
    def flow(part: dict, head: str) -> list[str]:
        f = part["flow"]
        lines = [f"{head}: {f['prefect_flow_name']} flow run {f['prefect_flow_run_id']} (MLflow run {f['mlflow_run_name']}, "
                 f"{f['mlflow_run_id']}, {f['status']})"]
        lines += [f"  dataset {d['context'] or d['name']}: {d['source']} (digest {d['digest']})" for d in part["datasets"]]
        lines += [f"  stage {s['stage']}: run {s['run_id']}" + (f" (cached from {s['source_run_id']})" if s["cached"] else "")
                  for s in part["stages"]]
        return lines

    lines = [f"lineage: {out['model']} v{out['version']} ({out['alias']!r})"] + flow(out, "made by")
    if "ensemble" in out:
        lines += flow(out["ensemble"], "its pattern models trained by")
    for run in out.get("earlier_relabels", []):  # their unlabeled files only: their stages made other classifiers
        f = run["flow"]
        # a relabel that stopped midway labeled some of its texts: the shards it finished are in the store
        upto = "" if f["status"] == "FINISHED" else "up to "
        lines.append(f"also distilled on {upto}the {run['n_new']:,} new texts of relabel flow run {f['prefect_flow_run_id']} "
                     f"(MLflow run {f['mlflow_run_name']}, {f['mlflow_run_id']}, {f['status']})")
        lines += [f"  dataset {d['context'] or d['name']}: {d['source']} (digest {d['digest']})"
                  for d in run["datasets"] if (d["context"] or d["name"]) == "unlabeled"]
    return "\n".join(lines)
