"""The pipeline config as pydantic models: types, ranges and cross-field checks at load time
(``loading`` turns a failure into one line naming the key); ``validate()`` adds the checks that
read files (model folders, the tokenizer), still writing nothing."""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from pet_io.sources import DataSpec, csv_separator
from pet_zoo.registry import KNOWN_MODELS
from prompt_models.auto_settings import gold_in_distillation
from prompt_models.patterns import Pattern
from prompt_models.verbalizer import Verbalizer

from .sections import (
    AutoPromptsConfig,
    DataConfig,
    DistillConfig,
    IPETConfig,
    LabelWordSearchConfig,
    ModelConfig,
    PETConfig,
    RunnerConfig,
    TemplateSearchConfig,
    TrackingConfig,
    VerbalizerConfig,
)
from .training import StrictModel


class ConfigError(ValueError):
    pass


# The user's MLFLOW_TRACKING_URI as the process started: mlflow.set_tracking_uri() (called by the
# flows for each config) overwrites the variable, which must not leak into the next config's default.
USER_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI")


def min_tokens(template: str) -> int:
    """A tokenizer-free lower bound of a template's length: each word of its literal text is at
    least one token, {mask} one, {soft:N} N, and each text at least one."""
    n = 0
    for seg in Pattern(template).segments:
        n += {"literal": len(seg.value.split()), "soft": seg.count}.get(seg.kind, 1)
    return n


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"  # a pipeline name: a file name and part of MLflow/Prefect names


class PipelineConfig(StrictModel):
    # a file name (ensembles/NAME.json) and part of MLflow and Prefect names: no '/', ':', spaces
    name: str = Field("pet", pattern=NAME_PATTERN,
                      description="the pipeline's name: its ensemble manifest and its run slot (letters, digits, '.', '_', '-')")
    labels: list[str] = Field(default_factory=list, description="the labels in output order (default: the verbalizer's)")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the backbone")
    data: DataConfig = Field(default_factory=DataConfig, description="the splits")
    patterns: list[str] = Field(default_factory=list, description="templates with {text_a}, optional {text_b}, exactly one {mask} (last, for a causal LM), optional {soft:N}")
    verbalizer: VerbalizerConfig = Field(default_factory=VerbalizerConfig, description="label words")
    seeds: list[int] = Field([0], min_length=1, description="one pattern model per (pattern, seed)")
    pet: PETConfig = Field(default_factory=PETConfig, description="pattern models, ensemble, soft labels")
    distill: DistillConfig = Field(default_factory=DistillConfig, description="the distilled classifier")
    ipet: IPETConfig = Field(default_factory=IPETConfig, description="iPET")
    template_search: TemplateSearchConfig = Field(default_factory=TemplateSearchConfig, description="LM-BFF template search")
    label_word_search: LabelWordSearchConfig = Field(default_factory=LabelWordSearchConfig, description="LM-BFF label-word search")
    auto_prompts: AutoPromptsConfig = Field(default_factory=AutoPromptsConfig, description="automatic prompts (when patterns or label words are empty)")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig, description="MLflow tracking and registry")
    work_dir: str = Field("pet_artifacts", min_length=1, description="where results and caches are written")
    models_dir: str | None = Field(None, description="where zoo model names are installed (default $PET_MODELS_DIR, else ~/.cache/pet-pipeline/models)")
    parallelism: int = Field(1, ge=1, description="tasks of a stage at once with runner.kind threads")
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="task runner")
    base_dir: str = Field(".", description="where relative paths are resolved (set to the YAML file's folder)")

    # ------------------------------------------------------------------ checks at load time
    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, value):
        return [str(x) for x in value] if isinstance(value, list) else value  # YAML `0` is the label "0"

    @model_validator(mode="after")
    def _cross_field(self) -> "PipelineConfig":
        words = {str(k): v for k, v in self.verbalizer.label_words.items()}
        if words:
            self.verbalizer.label_words = words
            self.labels = self.labels or list(words)
            missing = [lab for lab in self.labels if not words.get(lab)]
            unknown = [lab for lab in words if lab not in self.labels]
            if missing:
                # a misspelt key (`sport:` for `sports`) is both: name the key that is there too
                stray = f"; it has {', '.join(map(repr, unknown))}, not a label" if unknown else ""
                raise ValueError(f"verbalizer.label_words has no words for label(s) {', '.join(map(repr, missing))}{stray}")
            if unknown:
                raise ValueError(f"verbalizer.label_words names {', '.join(map(repr, unknown))}, not in labels {self.labels}")
        if self.distill.with_train is None:  # decided here, so the resolved config and every stage see the same
            self.distill.with_train = gold_in_distillation(len(self.labels))
        for template in self.patterns:
            need = min_tokens(template)  # a PatternError names the template
            if self.model.max_length < need:
                raise ValueError(f"model.max_length={self.model.max_length} is too short for template {template!r}: "
                                 f"it needs at least {need} tokens")
        if self.ipet.enabled and (len(self.patterns) or self.auto_prompts.num_patterns) * len(self.seeds) < 2:
            raise ValueError("ipet.enabled needs at least two pattern models (patterns x seeds)")
        if self.template_search.enabled and not self.template_search.generator_path:
            raise ValueError("template_search.generator_path is required when template search is enabled")
        metric = self.tracking.promote_metric
        if metric is not None and getattr(self.data, metric.split("_")[0]) is None:
            raise ValueError(f"tracking.promote_metric {metric!r} needs data.{metric.split('_')[0]}")
        if self.tracking.challenger_alias == self.tracking.alias:
            raise ValueError("tracking.challenger_alias must differ from tracking.alias")
        return self

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

    @property
    def needs_auto_prompts(self) -> bool:
        """No patterns or no label words: the automatic-prompts stage chooses them."""
        return not self.patterns or not self.verbalizer.label_words

    def pattern_objs(self) -> list[Pattern]:
        return [Pattern(t) for t in self.patterns]

    def spec(self, split: str) -> DataSpec | None:
        s = getattr(self.data, split)
        return None if s is None else s.core(self.resolve(s.path))

    def with_unlabeled(self, path: str) -> "PipelineConfig":
        """This config reading its unlabeled texts from ``path``, in the configured unlabeled
        columns (else the training ones): how relabel and the inbox take a new file."""
        base = self.data.unlabeled or self.data.train.model_copy(update={"label": None})
        path = str(Path(path).expanduser().resolve())
        # a new CSV's own separator where it can tell (as `pet init` finds it), else the configured one
        options = {k: v for k, v in base.read_options.items() if k != "sep"}
        is_csv = Path(path).name.lower().endswith((".csv", ".csv.gz"))
        sep = csv_separator(path, base.read_options.get("sep"), base.header) if is_csv else None
        spec = base.model_copy(update={"path": path, "format": None, "limit": None, "seed": None, "label": None,
                                       "read_options": dict(options, sep=sep) if sep else options})
        return self.model_copy(update={"data": self.data.model_copy(update={"unlabeled": spec})})

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
        return self.model_dump()

    def validate(self) -> "PipelineConfig":
        """Check everything a run needs that reads files. Pure: it reads config.json and tokenizer
        files and writes or installs nothing. Zoo names become folders first, in
        ``pet_zoo.resolve.resolve_models``; a known name still unresolved (``pet validate`` before
        an install) passes, its kind taken from the zoo, its templates checked by word count only."""
        if not self.model.path:
            raise ConfigError("model.path is required (a known model name or a local folder with a masked or causal LM)")
        for key, value in [("model.path", self.model.path), ("distill.model_path", self.distill.model_path),
                           ("pet.demonstrations.encoder_path", self.pet.demonstrations.encoder_path)]:
            if value in KNOWN_MODELS:
                continue  # a known name not installed yet (validate only)
            if value and not Path(self.resolve(value)).exists():
                raise ConfigError(f"{key} {self.resolve(value)!r} does not exist (a local folder or a name from `pet models list`)")
        if self.needs_auto_prompts and len(self.labels) < 2:
            raise ConfigError("`labels` (at least two) are required when patterns or label words are left to "
                              "automatic prompts")
        if self.data.train is None:
            raise ConfigError("data.train is required")
        if self.verbalizer.label_words:
            self.verbalizer_obj()  # a VerbalizerError says what is wrong with the words
        from prompt_models.backbones import CAUSAL, backbone_kind  # transformers: imported once a config is read

        if self.model.path in KNOWN_MODELS:  # not installed yet: its kind is known from the zoo
            kind = CAUSAL if KNOWN_MODELS[self.model.path].kind == "causal-lm" else None
        else:
            kind = backbone_kind(self.resolve(self.model.path))  # reads config.json only
            self._check_lengths(kind == CAUSAL)
        if kind == CAUSAL:
            for p in self.pattern_objs() + [Pattern(t) for t in self.auto_prompts.templates]:
                p.check_causal()
        return self

    def _check_lengths(self, causal: bool) -> None:
        """Every template, with one token of text, fits model.max_length with the real tokenizer."""
        from prompt_models.backbones import load_tokenizer
        from prompt_models.patterns import PatternEncoder

        encoder = PatternEncoder(load_tokenizer(self.resolve(self.model.path)), self.model.max_length, causal=causal)
        for pattern in self.pattern_objs():
            need = encoder.min_length(pattern)
            if need > self.model.max_length:
                raise ConfigError(f"model.max_length={self.model.max_length} is too short for template "
                                  f"{pattern.template!r}: with this tokenizer it needs at least {need} tokens")
