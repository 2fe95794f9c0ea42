"""Which registered classifier `pet predict` runs, and loading it on an engine: the model half of `pet predict`
(``flows.predict`` reads and writes the files)."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path


class PredictError(ValueError):
    """The model cannot be loaded or the request is malformed: one line, exit code 2."""


@dataclass(frozen=True)
class ModelChoice:
    uri: str  # as the user would name it; a registered version is pinned (models:/NAME/V): an alias may move
    location: str  # where its artifacts are (file:, s3:, runs:, a folder)
    name: str | None = None
    version: str | None = None
    alias: str | None = None


def resolve_model(cfg, model_uri: str | None, version: str | None, alias: str | None) -> ModelChoice:
    """The registered version to load; a missing store, model, version or alias each says which."""
    import mlflow
    from mlflow.store.artifact.utils.models import get_model_name_and_version

    from flows.lineage import LineageError, store_exists, version_for

    if model_uri and not model_uri.startswith("models:/"):
        return ModelChoice(uri=model_uri, location=model_uri)
    name, uri = cfg.tracking.registered_model, cfg.tracking_uri()
    if not store_exists(uri):  # opening a missing sqlite file would create an empty store
        raise LineageError(f"no MLflow store at {uri}: run the pet flow first")
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    if model_uri:
        # MLflow resolves models:/ against the process-wide registry, not this config's: resolve it here
        try:
            found = get_model_name_and_version(client, model_uri)
        except mlflow.exceptions.MlflowException as exc:
            raise PredictError(f"cannot find {model_uri} in {uri}: {exc.message}") from None
        if len(found) == 1:  # models:/<logged model id>, not registered
            return ModelChoice(uri=model_uri, location=client.get_logged_model(found[0]).artifact_location)
        name, version = found
    if version is None:
        alias = alias or cfg.tracking.alias
        mv = version_for(client, name, alias, uri)
    else:
        try:
            client.get_registered_model(name)
        except mlflow.exceptions.MlflowException:
            raise LineageError(f"no registered model {name!r} in {uri}: run the pet flow first") from None
        try:
            mv = client.get_model_version(name, str(version))
        except mlflow.exceptions.MlflowException:
            known = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
            raise LineageError(f"model {name!r} has no version {version}; its versions: {known}") from None
    location = client.get_model_version_download_uri(name, str(mv.version))
    return ModelChoice(f"models:/{name}/{mv.version}", location, name, str(mv.version), alias)


def load_classifier(choice: ModelChoice, cfg, engine: str = "auto", batch_size: int = 64, rows: int | None = None):
    """The registered classifier, on the engine asked for (``prompt_models.engines``; ``auto`` timed on
    ``batch_size`` rows, chosen for an input of ``rows`` rows): an object with ``labels``, ``engine`` and ``predict_texts(texts_a, texts_b,
    batch_size)``. It is loaded as the served pyfunc model (``tasks.served_model``), so `pet predict` and
    `mlflow models serve` run the same model."""
    import mlflow

    from prompt_models.training import configure_threads

    configure_threads()
    if not sys.stderr.isatty():  # transformers' own bar (loading weights) only on a terminal, as in `pet run`
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    try:
        # no dst_path: a model in a local artifact store is read where it is, not copied
        local = mlflow.artifacts.download_artifacts(artifact_uri=choice.location, tracking_uri=cfg.tracking_uri())
        if "transformers" in mlflow.models.Model.load(local).flavors:  # registered before the pyfunc model
            return _load_transformers_version(Path(local), cfg, engine, batch_size, rows)
        return mlflow.pyfunc.load_model(local).unwrap_python_model().classifier(engine, cfg.model.device, batch_size, rows)
    except ValueError as exc:  # an engine the model does not offer (no export, refused, not checked, no bf16 here)
        raise PredictError(f"{choice.uri}: {exc}") from None
    except (mlflow.exceptions.MlflowException, OSError) as exc:
        # where it was looked for: a store moved or copied still names its artifacts' old folder
        where = f" from {choice.location}" if choice.location != choice.uri else ""
        raise PredictError(f"cannot load {choice.uri}{where}: {getattr(exc, 'message', exc)}") from None


def _load_transformers_version(local: Path, cfg, engine: str, batch_size: int, rows: int | None = None):
    from tasks.served_model import load_classifier

    def transformers_classifier():
        import mlflow

        from prompt_models.distill import SequenceClassifier

        parts = mlflow.transformers.load_model(str(local), return_type="components")
        meta = mlflow.models.Model.load(str(local)).metadata or {}
        model, tok = parts["model"], parts["tokenizer"]
        if tok.pad_token_id is None and tok.eos_token_id is not None:
            tok.pad_token = tok.eos_token  # as prompt_models.backbones.load_tokenizer: padded positions are masked
        labels = [str(model.config.id2label[i]) for i in range(model.config.num_labels)]
        # the length the classifier was trained with (logged since `pet predict`; older versions: the config's)
        return SequenceClassifier(model, tok, labels, int(meta.get("max_length") or cfg.model.max_length))

    return load_classifier({"onnx": local / "onnx"}, engine, cfg.model.device, transformers_classifier, batch_size, rows)
