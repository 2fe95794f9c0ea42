"""Pipeline configuration: the dataclasses a YAML file maps onto (``loading``), checked before any work starts."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pet_io.sources import DataSpec
from pet_zoo.install import KNOWN_MODELS
from prompt_models.adapters import LoraSettings
from prompt_models.patterns import Pattern
from prompt_models.soft_prompts import SoftPromptConfig
from prompt_models.training import TrainConfig
from prompt_models.verbalizer import Verbalizer


class ConfigError(ValueError):
    pass


# The user's MLFLOW_TRACKING_URI as the process started: mlflow.set_tracking_uri() (called by the
# flows for each config) overwrites the variable, which must not leak into the next config's default.
USER_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")


@dataclass
class ModelConfig:
    path: str = ""
    max_length: int = 128
    device: str = "auto"


@dataclass
class DataConfig:
    train: DataSpec | None = None
    dev: DataSpec | None = None
    test: DataSpec | None = None
    unlabeled: DataSpec | None = None


@dataclass
class VerbalizerConfig:
    label_words: dict = field(default_factory=dict)
    multi_token: str = "mean"


@dataclass
class DemonstrationConfig:
    enabled: bool = False
    per_class: int = 1
    filter: str = "none"  # none | similarity
    top_fraction: float = 0.5  # with filter=similarity: sample among the most similar half
    # with filter=similarity: the sentence encoder (LM-BFF uses SBERT, e.g. all-minilm-l6-v2);
    # default: mean-pooled states of the PET backbone itself
    encoder_path: str | None = None
    seed: int = 0


@dataclass
class PETConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    ensemble_weighting: str = "accuracy"  # accuracy | uniform
    temperature: float = 2.0
    shard_size: int = 512
    soft_prompt: SoftPromptConfig = field(default_factory=SoftPromptConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    demonstrations: DemonstrationConfig = field(default_factory=DemonstrationConfig)


@dataclass
class DistillConfig:
    model_path: str | None = None  # defaults to model.path
    train: TrainConfig = field(default_factory=lambda: TrainConfig(learning_rate=1e-4, max_steps=300, batch_size=16))
    seed: int = 0
    # also export the classifier to ONNX (fp32 + int8, the int8 graph guarded by accuracy) for fast CPU serving
    onnx: bool = True


@dataclass
class IPETConfig:
    enabled: bool = False
    generations: int = 2
    growth_factor: int = 5
    sample_fraction: float = 0.25  # share of the other models that label for each model (PET: lambda)
    seed: int = 0


@dataclass
class TemplateSearchConfig:
    enabled: bool = False
    generator_path: str | None = None  # a local seq2seq (T5) or causal LM
    num_candidates: int = 8
    beam_width: int = 16
    max_new_tokens: int = 12
    top_templates: int = 2  # how many of the best templates feed the PET stage
    examples_per_prompt: int = 8
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_steps=30))
    seed: int = 0


@dataclass
class LabelWordSearchConfig:
    enabled: bool = False
    template: str | None = None  # defaults to the first pattern
    top_k_per_class: int = 10
    num_candidates: int = 20
    rerank_top: int = 5  # candidates fine-tuned briefly and re-ranked on dev
    train: TrainConfig = field(default_factory=lambda: TrainConfig(max_steps=30))
    seed: int = 0


@dataclass
class TrackingConfig:
    tracking_uri: str | None = None  # default: env MLFLOW_TRACKING_URI, else sqlite in work_dir
    experiment: str = "pet"
    registered_model: str = "pet-classifier"
    alias: str = "champion"
    # a new classifier takes `alias` only if promote_metric (dev_accuracy, test_accuracy, dev_macro_f1,
    # test_macro_f1; default dev_accuracy, else test_accuracy) >= the current champion's on the same
    # split + promote_margin; else it gets `challenger_alias` and the champion stays
    promote_metric: str | None = None
    promote_margin: float = 0.0
    challenger_alias: str = "challenger"


@dataclass
class RunnerConfig:
    # where the tasks of a stage (pattern-model training, labeling, prompt scoring) run:
    # "threads" (this process, `parallelism` at once), "dask" (prefect-dask: a LocalCluster of
    # `workers` processes, or the cluster at `address`) or "ray" (prefect-ray; `address` of a
    # cluster, else a local one). Workers need the same code, models and work_dir paths.
    kind: str = "threads"
    address: str | None = None
    workers: int = 2


@dataclass
class PipelineConfig:
    name: str = "pet"
    labels: list = field(default_factory=list)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    patterns: list = field(default_factory=list)
    verbalizer: VerbalizerConfig = field(default_factory=VerbalizerConfig)
    seeds: list = field(default_factory=lambda: [0])
    pet: PETConfig = field(default_factory=PETConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    ipet: IPETConfig = field(default_factory=IPETConfig)
    template_search: TemplateSearchConfig = field(default_factory=TemplateSearchConfig)
    label_word_search: LabelWordSearchConfig = field(default_factory=LabelWordSearchConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    work_dir: str = "pet_artifacts"
    # where model-zoo names (e.g. model.path: smollm2-135m-instruct) are installed; default env
    # PET_MODELS_DIR, else ~/.cache/pet-pipeline/models (see `pet models list`)
    models_dir: str | None = None
    parallelism: int = 1
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    base_dir: str = "."  # where relative paths are resolved; set to the YAML file's folder

    # ------------------------------------------------------------------ derived objects
    def resolve(self, p: str | None) -> str | None:
        if p is None:
            return None
        path = Path(os.path.expanduser(p))
        return str(path if path.is_absolute() else (Path(self.base_dir) / path).resolve())

    @property
    def work_path(self) -> Path:
        return Path(self.resolve(self.work_dir))

    def verbalizer_obj(self) -> Verbalizer:
        return Verbalizer(self.verbalizer.label_words, self.verbalizer.multi_token)

    def pattern_objs(self) -> list[Pattern]:
        return [Pattern(t) for t in self.patterns]

    def spec(self, split: str) -> DataSpec | None:
        s = getattr(self.data, split)
        if s is None:
            return None
        return dataclasses.replace(s, path=self.resolve(s.path))

    def promotion_metric(self) -> str | None:
        """The metric that decides promotion (None: no held-out split, every new classifier is promoted)."""
        if self.tracking.promote_metric:
            return self.tracking.promote_metric
        return "dev_accuracy" if self.data.dev else ("test_accuracy" if self.data.test else None)

    def tracking_uri(self) -> str:
        if self.tracking.tracking_uri:
            uri = self.tracking.tracking_uri
            if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
                uri = "sqlite:///" + self.resolve(uri[len("sqlite:///") :])
            return uri
        if USER_TRACKING_URI:
            return USER_TRACKING_URI
        return "sqlite:///" + str(self.work_path / "mlflow.db")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def digest(self, *parts: str) -> str:
        """Digest of selected top-level sections (for cache keys)."""
        d = self.to_dict()
        sel = {k: d[k] for k in parts} if parts else d
        return hashlib.sha256(json.dumps(sel, sort_keys=True, default=str).encode()).hexdigest()

    # ------------------------------------------------------------------ checks
    def validate(self) -> "PipelineConfig":
        """Check everything a run needs. Pure: it reads config.json files and writes or installs
        nothing. Zoo names become folders first, in ``pet_zoo.resolve.resolve_models``; a known name
        still unresolved (``pet validate`` before an install) passes, its kind taken from the zoo."""
        if not self.model.path:
            raise ConfigError("model.path is required (a known model name or a local folder with a masked or causal LM)")
        for key, value in [("model.path", self.model.path), ("distill.model_path", self.distill.model_path),
                           ("pet.demonstrations.encoder_path", self.pet.demonstrations.encoder_path)]:
            if value in KNOWN_MODELS:
                continue  # a known name not installed yet (validate only)
            if value and not Path(self.resolve(value)).exists():
                raise ConfigError(f"{key} {self.resolve(value)!r} does not exist (a local folder or a name from `pet models list`)")
        if not self.patterns:
            raise ConfigError("at least one pattern is required under `patterns`")
        if not all(isinstance(t, str) for t in self.patterns):
            raise ConfigError("`patterns` must be a list of template strings")
        patterns = self.pattern_objs()  # raises PatternError with the template named
        from prompt_models.backbones import CAUSAL, backbone_kind  # transformers: imported once a config is read

        if self.model.path in KNOWN_MODELS:  # not installed yet: its kind is known from the zoo
            kind = CAUSAL if KNOWN_MODELS[self.model.path].kind == "causal-lm" else None
        else:
            kind = backbone_kind(self.resolve(self.model.path))  # reads config.json only
        if kind == CAUSAL:
            for p in patterns:
                p.check_causal()
        verb = self.verbalizer_obj()
        self.labels = [str(x) for x in self.labels] or list(verb.labels)
        if sorted(self.labels) != sorted(verb.labels):
            raise ConfigError(f"labels {self.labels} and verbalizer labels {verb.labels} differ")
        if self.data.train is None:
            raise ConfigError("data.train is required")
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            raise ConfigError("`seeds` must be a non-empty list of integers")
        if self.pet.ensemble_weighting not in ("accuracy", "uniform"):
            raise ConfigError("pet.ensemble_weighting must be 'accuracy' or 'uniform'")
        if self.pet.temperature <= 0 or self.distill.train.temperature <= 0:
            raise ConfigError("temperatures must be positive")
        if self.runner.kind not in ("threads", "dask", "ray"):
            raise ConfigError(f"runner.kind must be 'threads', 'dask' or 'ray', not {self.runner.kind!r}")
        if self.parallelism < 1 or self.runner.workers < 1:
            raise ConfigError("parallelism and runner.workers must be at least 1")
        if self.pet.shard_size < 1:
            raise ConfigError("pet.shard_size must be at least 1")
        if self.ipet.enabled and (self.ipet.generations < 1 or self.ipet.growth_factor < 1):
            raise ConfigError("ipet.generations and ipet.growth_factor must be at least 1")
        if self.ipet.enabled and len(self.patterns) * len(self.seeds) < 2:
            raise ConfigError("iPET needs at least two pattern models (patterns x seeds)")
        if self.template_search.enabled and not self.template_search.generator_path:
            raise ConfigError("template_search.generator_path is required when template search is enabled")
        metrics = [f"{split}_{m}" for split in ("dev", "test") for m in ("accuracy", "macro_f1")]
        metric = self.tracking.promote_metric
        if metric is not None and metric not in metrics:
            raise ConfigError(f"tracking.promote_metric must be one of {metrics}, not {metric!r}")
        if metric is not None and getattr(self.data, metric.split("_")[0]) is None:
            raise ConfigError(f"tracking.promote_metric {metric!r} needs data.{metric.split('_')[0]}")
        if self.tracking.challenger_alias == self.tracking.alias:
            raise ConfigError("tracking.challenger_alias must differ from tracking.alias")
        if self.pet.demonstrations.filter not in ("none", "similarity"):
            raise ConfigError("pet.demonstrations.filter must be 'none' or 'similarity'")
        return self
