"""The config's sections below the top level, each field typed, ranged and described (the README's
config reference is generated from these descriptions: ``python -m pet_config.reference``)."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pet_io.sources import DataSpec
from prompt_models.adapters import LoraSettings
from prompt_models.examples import MAX_SCORED_PER_LABEL
from prompt_models.soft_prompts import SoftPromptConfig

from .training import DistillTrainConfig, PatternTrainConfig, SearchTrainConfig, StrictModel

Format = Literal["csv", "tsv", "jsonl", "json", "parquet"]


class ModelConfig(StrictModel):
    path: str = Field("", description="the backbone: a name from `pet models list` (installed on first use) or a local folder with a masked or causal LM")
    max_length: int = Field(128, ge=1, description="token limit of a pattern-wrapped input (templates must fit: checked up front)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where models run; auto: CUDA when there is a GPU")


class DataSpecConfig(StrictModel):
    path: str = Field(description="the file (relative to the config's folder); CSV, TSV, JSON Lines, JSON, Parquet, .gz")
    text_a: str = Field("text_a", description="column of the (first) text")
    text_b: str | None = Field(None, description="column of the second text of a pair task")
    label: str | None = Field("label", description="column of the gold label (ignored for unlabeled data)")
    format: Format | None = Field(None, description="file format; default from the suffix")
    header: bool = Field(True, description="CSV/TSV: the first row names the columns (else they are 0, 1, ...)")
    limit: int | None = Field(None, ge=1, description="keep the first N rows (after shuffling with `seed`, if given)")
    seed: int | None = Field(None, description="shuffle the rows with this seed before `limit`")
    read_options: dict = Field(default_factory=dict, description="extra keyword arguments of the reader (pandas / datasets), e.g. `{sep: \";\"}` for a semicolon-separated CSV (`pet init` writes it)")

    @model_validator(mode="after")
    def _distinct_texts(self) -> "DataSpecConfig":
        if self.text_b is not None and self.text_b == self.text_a:  # one column read twice: no pair
            raise ValueError(f"text_a and text_b are one column ({self.text_a!r}); text_b is a pair's second text, "
                             "another column (leave it out for one text)")
        return self

    def core(self, path: str) -> DataSpec:
        return DataSpec(**dict(self.model_dump(), path=path))


class DataConfig(StrictModel):
    train: DataSpecConfig | None = Field(None, description="labeled training examples (required for a run)")
    dev: DataSpecConfig | None = Field(None, description="labeled dev examples: model selection and promotion (and the int8 ONNX check when there is no test)")
    test: DataSpecConfig | None = Field(None, description="labeled test examples: reported; also decides promotion when there is no dev, and whether the int8 ONNX student is accepted")
    unlabeled: DataSpecConfig | None = Field(None, description="unlabeled texts the ensemble soft-labels for distillation")

    @model_validator(mode="after")
    def _same_shape(self) -> "DataConfig":
        """Every split holds what the training examples hold: a label column that is no text (the model would read
        the answer), and one text or a pair as train has (a pair template given one text stops a run midway)."""
        for split in ("train", "dev", "test"):
            spec = getattr(self, split)
            if spec is not None and spec.label is not None and spec.label in (spec.text_a, spec.text_b):
                which = "text_a" if spec.label == spec.text_a else "text_b"
                raise ValueError(f"data.{split}: {which} and label are one column ({spec.label!r}); the model would "
                                 "read the answer: name the text column(s) apart from the label")
        if self.train is None:
            return self
        pair = self.train.text_b is not None
        for split in ("dev", "test", "unlabeled"):
            spec = getattr(self, split)
            if spec is not None and (spec.text_b is not None) != pair:
                raise ValueError(
                    f"data.{split} has no text_b, but the training examples are text pairs (data.train.text_b "
                    f"{self.train.text_b!r}): name its second text column with text_b" if pair else
                    f"data.{split}.text_b is {spec.text_b!r}, but the training examples are single texts (no "
                    "data.train.text_b): remove it, or give data.train.text_b")
        return self


class VerbalizerConfig(StrictModel):
    label_words: dict[str, list[str]] = Field(default_factory=dict, description="label -> its words (several allowed); every label needs at least one")
    multi_token: Literal["mean", "first", "max"] = Field("mean", description="masked LM: how a multi-token word's sub-token logits combine (a causal LM scores the exact sequence)")


class SoftPromptSection(StrictModel):
    kind: Literal["none", "prompt_tuning", "p_tuning", "prefix_tuning"] = Field("none", description="trainable continuous prompt tokens, if any")
    num_tokens: int = Field(4, ge=1, description="soft tokens when the template has no {soft:N}")
    encoder: Literal["lstm", "mlp"] = Field("lstm", description="p_tuning: the reparameterisation of the prompt embeddings")
    freeze_model: bool = Field(False, description="train the prompt alone, the backbone frozen")
    prefix_hidden: int = Field(256, ge=1, description="prefix_tuning: reparameterisation width")

    def core(self) -> SoftPromptConfig:
        return SoftPromptConfig(**self.model_dump())


class LoraSection(StrictModel):
    enabled: bool = Field(False, description="train PEFT LoRA adapters (merged into the saved model); faster to train, and such a model may label in bf16 (pet.label_precision). Off by default: over the six-task benchmark's 18 units its student was 0.14 points lower on dev, better on trec and subj, worse on sst-5 and mr (benchmarks/RESULTS.md)")
    r: int = Field(8, ge=1, description="LoRA rank")
    alpha: int = Field(16, ge=1, description="LoRA scaling alpha")
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout")
    target_modules: list[str] = Field(default_factory=lambda: ["all-linear"], description="modules adapted: ['all-linear'] (every Linear layer but the output head; SST-2 test 0.860 against 0.817 with PEFT's default q/v projections, benchmarks/RESULTS.md), names, or empty for PEFT's default for the architecture")

    def core(self) -> LoraSettings:
        return LoraSettings(**self.model_dump())


class DemonstrationConfig(StrictModel):
    enabled: bool = Field(False, description="LM-BFF demonstrations: labeled examples appended to each input")
    per_class: int = Field(1, ge=1, description="demonstrations per label")
    filter: Literal["none", "similarity"] = Field("none", description="similarity: sample among the training examples most similar to the input")
    top_fraction: float = Field(0.5, gt=0, le=1, description="with filter=similarity: the share of most similar examples sampled from")
    encoder_path: str | None = Field(None, description="with filter=similarity: the sentence encoder (e.g. all-minilm-l6-v2); default: the backbone's mean-pooled states")
    seed: int = Field(0, description="sampling seed")


class PETConfig(StrictModel):
    train: PatternTrainConfig = Field(default_factory=PatternTrainConfig, description="training of each pattern model")
    ensemble_weighting: Literal["accuracy", "uniform"] = Field("accuracy", description=f"accuracy: each model weighted by its pattern's training-set accuracy before training (on at most {MAX_SCORED_PER_LABEL} examples per label, one seeded sample for all models); uniform")
    temperature: float = Field(2.0, gt=0, description="softmax temperature of the soft labels, and of the distillation loss")
    shard_size: int = Field(512, ge=1, description="unlabeled texts per soft-labeling shard")
    label_precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="soft-labeling on a CPU: auto: bf16 weights for a LoRA-trained pattern model on a CPU with bf16 kernels (AMX / AVX512-BF16) and 512 texts or more, kept only if its labels of the first 128 texts agree with fp32's on 99% (prompt_models/label_precision.py); bf16: that check on any model; fp32: never. A GPU labels under bf16 autocast")
    soft_prompt: SoftPromptSection = Field(default_factory=SoftPromptSection, description="soft prompts")
    lora: LoraSection = Field(default_factory=LoraSection, description="LoRA adapters")
    demonstrations: DemonstrationConfig = Field(default_factory=DemonstrationConfig, description="demonstrations")


class DistillConfig(StrictModel):
    model_path: str | None = Field(None, description="the student: a zoo name or folder AutoModelForSequenceClassification loads (default model.path)")
    train: DistillTrainConfig = Field(default_factory=DistillTrainConfig, description="training of the student")
    seed: int = Field(0, description="seed of the student's new head and batches")
    with_train: bool | None = Field(None, description="the labeled training examples join the soft-labeled texts, with one-hot targets of their gold labels; unset: on from 3 labels, off for 2 (the soft labels only, as in PET): prompt_models/auto_settings.gold_in_distillation, benchmarks/RESULTS.md has the dev check")
    pair_tuning: bool = Field(False, description="SetFit's first step before distillation: the student's encoder is first tuned on pairs of the labeled examples (cosine 1 for the same label, else 0; SetFit's defaults, at most 500 steps); off by default: on dev +1 point on trec and -7.5 on sst-5, for about 7 minutes of a 2-core CPU (benchmarks/RESULTS.md)")
    onnx: bool = Field(True, description="also export the student to ONNX, fp32 and int8, and check it in bf16 where the CPU has bf16 kernels (int8 and bf16 each refused if it loses > 0.5 test points, else dev; with neither, if it changes > 0.5% of the fp32 labels of unlabeled texts), for `pet predict --engine`")


class IPETConfig(StrictModel):
    enabled: bool = Field(False, description="iPET: generations of models trained on each other's labels")
    generations: int = Field(2, ge=1, description="iPET generations")
    growth_factor: int = Field(5, ge=1, description="training set growth per generation")
    sample_fraction: float = Field(0.25, gt=0, le=1, description="share of the other models that label for each model (PET's lambda)")
    seed: int = Field(0, description="sampling seed")


class TemplateSearchConfig(StrictModel):
    enabled: bool = Field(False, description="LM-BFF automatic template search before PET")
    generator_path: str | None = Field(None, description="a T5 with <extra_id_N> sentinels or a causal LM (zoo name or folder); required when enabled")
    num_candidates: int = Field(8, ge=1, description="templates generated")
    beam_width: int = Field(16, ge=1, description="beam search width")
    max_new_tokens: int = Field(12, ge=1, description="generated tokens per template")
    top_templates: int = Field(2, ge=1, description="best templates (on dev) that feed the PET stage")
    examples_per_prompt: int = Field(8, ge=1, description="training examples shown to the generator per prompt")
    train: SearchTrainConfig = Field(default_factory=SearchTrainConfig, description="brief fine-tuning that ranks a candidate")
    seed: int = Field(0, description="seed")


class LabelWordSearchConfig(StrictModel):
    enabled: bool = Field(False, description="LM-BFF automatic label-word search before PET")
    template: str | None = Field(None, description="the template searched with (default the first pattern)")
    top_k_per_class: int = Field(10, ge=1, description="candidate words per label by the zero-shot LM")
    num_candidates: int = Field(20, ge=1, description="word assignments kept by zero-shot accuracy")
    rerank_top: int = Field(5, ge=1, description="candidates fine-tuned briefly and re-ranked on dev")
    train: SearchTrainConfig = Field(default_factory=SearchTrainConfig, description="brief fine-tuning that ranks a candidate")
    seed: int = Field(0, description="seed")


PromoteMetric = Literal["dev_accuracy", "test_accuracy", "dev_macro_f1", "test_macro_f1"]


class AutoPromptsConfig(StrictModel):
    """Automatic prompts (``prompt_models/auto_prompts.py``): used when ``patterns`` or
    ``verbalizer.label_words`` is empty."""

    num_patterns: int = Field(2, ge=1, description="templates chosen (one pattern model each per seed)")
    search_words: Literal["codes", "always"] = Field("codes", description="codes: label words are searched only for label names that are codes (0, pos, LABEL_3), the other names are their words; always: searched sets compete with word names too (ranked on the selection split, which overfits when it is a few examples)")
    words_per_template: int = Field(3, ge=1, description="searched label-word sets scored per template (when words are searched)")
    words_per_label: int = Field(1, ge=1, description="searched words per label: each searched word followed by the label's next best words that no other label's examples score higher (PETAL); a label's score is the mean of its words'")
    templates: list[str] = Field(default_factory=list, description="extra candidate templates, ranked with the library's")
    prior_texts: int = Field(128, ge=1, description="unlabeled texts that estimate the label-word prior (calibration)")
    hyperparameters: Literal["rule", "config"] = Field("rule", description="rule: pet.train max_steps / learning_rate the config does not set come from auto_settings.suggest_train_settings; config: the defaults")
    trained_rerank: bool = Field(True, description="with a dev set, when no template written for this kind of text (the question templates for questions, auto_prompts.templates) is among the zero-shot choice, the best-ranked one is trained too and the num_patterns templates with the best trained dev accuracy are kept (LM-BFF's re-ranking; one more pattern model per seed)")
    zero_shot_reference: bool = Field(True, description="score the untrained backbone with the same prompts (calibrated) in every evaluation")
    seed: int = Field(0, description="seed (prior sample, split without dev, word search)")


class TrackingConfig(StrictModel):
    tracking_uri: str | None = Field(None, description="MLflow store (default $MLFLOW_TRACKING_URI as the process started, else sqlite in work_dir)")
    experiment: str = Field("pet", min_length=1, description="MLflow experiment")
    registered_model: str = Field("pet-classifier", min_length=1, description="registered model name of the distilled classifier")
    alias: str = Field("champion", min_length=1, description="alias the best classifier holds")
    promote_metric: PromoteMetric | None = Field(None, description="decides promotion (default dev_accuracy, else test_accuracy)")
    promote_margin: float = Field(0.0, description="a new classifier is promoted if its metric >= the champion's + margin")
    challenger_alias: str = Field("challenger", min_length=1, description="alias of a new classifier that was not promoted")
    beat_majority: bool = Field(True, description="a classifier must score above always answering the most frequent label of the promotion split to be promoted (a first one too)")


class RunnerConfig(StrictModel):
    kind: Literal["threads", "dask", "ray"] = Field("threads", description="where a stage's tasks run: this process, a Dask or a Ray cluster")
    address: str | None = Field(None, description="an existing cluster (e.g. tcp://scheduler:8786); default a local one")
    workers: int = Field(2, ge=1, description="worker processes of a local cluster")
