"""The typed records tasks hand to each other and to the flows (JSON-able with ``dataclasses.asdict``)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pet_io.atomic import read_done


def _known_fields(cls, info: dict) -> dict:
    """``info`` without the keys ``cls`` has no field for (records written by a later version)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in info.items() if k in names}


@dataclass(frozen=True)
class SplitFile:
    """One checked split: the normalised copy in the work folder (JSONL for labeled splits,
    Parquet for the unlabeled one), its content digest, its size and the file it came from."""

    path: str
    digest: str
    n: int
    source: str


Splits = dict[str, SplitFile]  # "train", "dev", "test", "unlabeled" -> the checked file


@dataclass(frozen=True)
class PatternModelRef:
    """A trained pattern model in the work folder (its ``done.json`` holds every field but the last
    two, which say what this flow run did with it)."""

    key: str  # cache key: backbone, data digests, template, verbalizer, training config, seed
    path: str  # the unit's folder: model/, dev/test logits, done.json
    model_path: str
    template: str
    pattern_index: int
    seed: int
    generation: int
    run_id: str  # the MLflow run that trained it
    metrics: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    stage_run_id: str | None = None  # this flow run's stage run for it

    @classmethod
    def from_dict(cls, info: dict) -> "PatternModelRef":
        return cls(**_known_fields(cls, info))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def done_info(self) -> dict[str, Any]:
        """What ``done.json`` holds: the model, not what one flow run did with it."""
        info = self.to_dict()
        del info["cached"], info["stage_run_id"]
        return info

    @property
    def pre_train_accuracy(self) -> float:
        """Training-set accuracy before training: the ensemble weight (PET's ``weighting``)."""
        return self.metrics["pre_train_accuracy"]


@dataclass(frozen=True)
class EnsembleManifest:
    """What a pet run leaves for relabel runs: the ensemble's models and how their votes are merged."""

    ensemble_key: str
    models: list[PatternModelRef]
    weights: list[float]
    weighting: str
    temperature: float
    verbalizer: dict  # ``VerbalizerConfig`` as a dict: relabel labels with the words it was built with
    templates: list[str]
    mlflow_run_id: str
    prefect_flow_run_id: str | None = None

    @classmethod
    def from_dict(cls, info: dict, default_weighting: str, default_temperature: float) -> "EnsembleManifest":
        # manifests older than the weighting/temperature fields used the config's values
        info = {"weighting": default_weighting, "temperature": default_temperature, **info}
        models = [PatternModelRef.from_dict(m) for m in info["models"]]
        return cls(**dict(_known_fields(cls, info), models=models))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Shard:
    """A content-addressed slice of the unlabeled copy: ``n`` texts in a Parquet file."""

    path: str
    digest: str
    n: int


@dataclass(frozen=True)
class LabeledShard:
    """One shard's soft labels from one ensemble (``labels.parquet``: texts, logits, probs)."""

    path: str
    digest: str
    n: int
    cached: bool = False

    @classmethod
    def from_done(cls, folder: Path, cached: bool = True) -> "LabeledShard":
        info = read_done(folder)
        return cls(info["path"], info["digest"], info["n"], cached)


@dataclass(frozen=True)
class ModelLabeling:
    """What one pattern model did in a labeling stage (model-major: loaded once, or not at all)."""

    model_key: str
    shards_computed: int
    shards_cached: int


@dataclass(frozen=True)
class ClassifierRef:
    """A distilled classifier in the work folder, keyed by everything that produced it."""

    key: str
    path: str
    run_id: str
    n_train: int
    cached: bool = False


@dataclass(frozen=True)
class Registration:
    """The registry version a classifier became, and the alias it got."""

    name: str
    version: str
    alias: str
    model_uri: str
    reused: bool
    promoted: bool
    promotion: str
