"""Tasks and backbone settings of the PET-effect benchmark (LM-BFF K=16 splits in ../shared/data)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pet_io.labeled import load_examples
from pet_io.sources import DataSpec
from prompt_models.examples import InputExample

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@dataclass(frozen=True)
class Backbone:
    kind: str = field(metadata={"help": "masked | causal: which pattern set the tasks use"})
    learning_rate: float = field(metadata={"help": "PET learning rate (full-model AdamW, linear decay)"})
    max_steps: int = field(metadata={"help": "optimizer steps per model, batch 8"})
    max_length: int = field(default=128, metadata={"help": "tokens per input (demonstrations get twice this)"})

    def describe(self) -> str:
        return f"{self.kind} LM, lr {self.learning_rate}, {self.max_steps} steps, batch 8, max_length {self.max_length}"


BACKBONES = {
    "smollm2-135m-instruct": Backbone("causal", 3e-5, 40, 64),
    "gemma-3-270m": Backbone("causal", 3e-5, 40, 64),
    "splade-tiny": Backbone("masked", 5e-4, 100, 128),
}


@dataclass(frozen=True)
class Task:
    folder: str
    reader: dict
    labels: list
    words: dict
    masked_patterns: list
    causal_patterns: list  # {mask} last: a causal LM reads the word as the continuation


SENTIMENT = dict(
    labels=["0", "1"],
    words={"0": ["terrible"], "1": ["great"]},
    masked_patterns=["{text_a} It was {mask} .", "{text_a} All in all , it was {mask} .", "Just {mask} ! {text_a}"],
    causal_patterns=["{text_a} It was {mask}", "{text_a} All in all, it was {mask}", "Review: {text_a} Verdict: {mask}"],
)
TASKS = {
    "SST-2": Task("SST-2", dict(text_a="sentence", label="label"), **SENTIMENT),
    "mr": Task("mr", dict(text_a="1", label="0", header=False), **SENTIMENT),
    "trec": Task(
        "trec",
        dict(text_a="1", label="0", header=False),
        [str(i) for i in range(6)],
        # LM-BFF's label order: description, entity, abbreviation, human, location, number
        {"0": ["description"], "1": ["thing"], "2": ["abbreviation"], "3": ["person"], "4": ["place"], "5": ["number"]},
        ["{mask} : {text_a}", "Q : {text_a} A : {mask}", "{text_a} The answer is a {mask} ."],
        ["{text_a} The answer is a {mask}", "Question: {text_a} Type of answer: {mask}", "Q: {text_a} A: {mask}"],
    ),
}


@dataclass
class TaskData:
    name: str
    labels: list
    words: dict
    patterns: list
    train: list[InputExample]
    dev: list[InputExample]
    test: list[InputExample]
    unlabeled: list[InputExample]


def model_folder(name_or_path: str) -> str:
    """A benchmark backbone/student name -> local folder (installing a known model on first use)."""
    if name_or_path == "splade-tiny":
        return str(SHARED / "models" / "splade-tiny")
    from pet_zoo.install import resolve_model_path

    return resolve_model_path(name_or_path)


def load_task(name: str, seed: int, test_limit: int | None, n_unlabeled: int, kind: str) -> TaskData:
    t = TASKS[name]
    base = SHARED / "data" / "lmbff_kshot" / t.folder / f"16-{seed}"
    ext = ".tsv" if (base / "train.tsv").exists() else ".csv"

    def split(s: str, **kw):
        return load_examples(DataSpec(str(base / f"{s}{ext}"), **t.reader, **kw), t.labels)

    test = split("test", limit=test_limit, seed=0) if test_limit else split("test")
    pool = SHARED / "data" / "lmbff_train_pools" / t.folder / "train.tsv"
    unlabeled = load_examples(
        DataSpec(str(pool), text_a="sentence", label=None, limit=n_unlabeled, seed=0), require_labels=False
    )
    patterns = t.causal_patterns if kind == "causal" else t.masked_patterns
    return TaskData(name, t.labels, t.words, patterns, split("train"), split("dev"), test, unlabeled)
