"""The methods of the PET-effect benchmark, each trained on one task split and scored on its test set.

``shared`` holds what several rows reuse for one (backbone, task, seed): the trained pattern models
and their logits, so pet, pet_ensemble, distilled and ipet train the pattern models once.
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks.bench_tasks import BACKBONES, TaskData, model_folder
from prompt_models.adapters import LoraSettings
from prompt_models.demonstrations import DemonstrationSampler, load_sentence_encoder, sentence_embeddings
from prompt_models.distill import distill_soft_labels
from prompt_models.ensemble import ensemble_weights, merge_logits, soft_labels
from prompt_models.examples import gold_indices
from prompt_models.ipet import build_generation_sets, pseudo_labeled_examples
from prompt_models.lmbff import generate_templates, load_generator, search_label_words
from prompt_models.pet import PETModel
from prompt_models.soft_prompts import SoftPromptConfig
from prompt_models.training import TrainConfig, set_seed
from prompt_models.verbalizer import Verbalizer

GENERATOR = "smollm2-135m-instruct"  # LM-BFF template generation with the instruct model (causal)
SBERT = "all-minilm-l6-v2"  # demonstration similarity, as LM-BFF uses SBERT
EVAL_BATCH = 32


def _cfg(backbone: str, **kw) -> TrainConfig:
    b = BACKBONES[backbone]
    # the auxiliary LM loss (alpha 1e-4 in PET) is left out: it barely moves results and costs a pass
    base = dict(learning_rate=b.learning_rate, max_steps=b.max_steps, batch_size=8, progress=False,
                mlm_alpha=0.0, max_length=b.max_length, eval_batch_size=EVAL_BATCH)
    return TrainConfig(**{**base, **kw})


def _gold(data: TaskData, examples) -> np.ndarray:
    return gold_indices(examples, data.labels)


def _acc(logits: np.ndarray, data: TaskData) -> float:
    return float((logits.argmax(-1) == _gold(data, data.test)).mean())


def _pet(backbone: str, data: TaskData, template: str, words: dict, seed: int, **kw) -> PETModel:
    set_seed(seed)  # new heads / prompt encoders are initialised from the global generator
    max_length = kw.pop("max_length", BACKBONES[backbone].max_length)
    return PETModel.from_pretrained(model_folder(backbone), template, Verbalizer(words), max_length, **kw)


def _train_eval(backbone, data, template, words, seed, cfg=None, **kw) -> tuple[float, PETModel]:
    m = _pet(backbone, data, template, words, seed, **kw)
    m.train_model(data.train, cfg or _cfg(backbone), seed)
    return _acc(m.predict_logits(data.test, EVAL_BATCH), data), m


def _pattern_models(backbone: str, data: TaskData, seed: int, shared: dict) -> list[dict]:
    if "patterns" not in shared:
        shared["patterns"] = []
        for t in data.patterns:
            m = _pet(backbone, data, t, data.words, seed)
            pre = m.evaluate(data.train, EVAL_BATCH)["accuracy"]
            m.train_model(data.train, _cfg(backbone), seed)
            shared["patterns"].append({"template": t, "pre": pre, "model": m, "test": m.predict_logits(data.test, EVAL_BATCH)})
    return shared["patterns"]


def _unlabeled_logits(models: list[dict], data: TaskData) -> list[np.ndarray]:
    for p in models:
        if "unlabeled" not in p:
            p["unlabeled"] = p["model"].predict_logits(data.unlabeled, EVAL_BATCH)
    return [p["unlabeled"] for p in models]


def _rerank_on_dev(backbone, data, seed, candidates: list[tuple[str, dict]]) -> tuple[str, dict]:
    """LM-BFF: each candidate fine-tuned briefly, the best on the 16-shot dev set wins."""
    brief = _cfg(backbone, max_steps=max(1, BACKBONES[backbone].max_steps // 3))
    best, best_acc = candidates[0], -1.0
    for template, words in candidates:
        m = _pet(backbone, data, template, words, seed)
        m.train_model(data.train, brief, seed)
        acc = float((m.predict_logits(data.dev, EVAL_BATCH).argmax(-1) == _gold(data, data.dev)).mean())
        if acc > best_acc:
            best, best_acc = (template, words), acc
    return best


def _finetune(backbone, data, seed, shared, student) -> tuple[float, dict]:
    lr = BACKBONES[backbone].learning_rate
    onehot = np.eye(len(data.labels))[_gold(data, data.train)]
    best = (None, -1.0, None)
    for cand in (lr, 4 * lr):  # a fresh head needs a larger step than PET; dev picks
        # cross-entropy on the gold labels: the distillation loss on one-hot targets at T = 1
        clf, _ = distill_soft_labels(model_folder(backbone), data.labels, BACKBONES[backbone].max_length, data.train,
                                     onehot, _cfg(backbone, learning_rate=cand, temperature=1.0), seed)
        dev = clf.evaluate(data.dev, EVAL_BATCH)["accuracy"]
        if dev > best[1]:
            best = (clf, dev, cand)
    return best[0].evaluate(data.test, EVAL_BATCH)["accuracy"], {"learning_rate": best[2]}


def _pet_row(backbone, data, seed, shared, student) -> tuple[float, dict]:
    models = _pattern_models(backbone, data, seed, shared)
    accs = [_acc(p["test"], data) for p in models]
    return float(np.mean(accs)), {"per_pattern": accs, "patterns": [p["template"] for p in models]}


def _pet_ensemble(backbone, data, seed, shared, student) -> tuple[float, dict]:
    models = _pattern_models(backbone, data, seed, shared)
    t0 = time.time()
    for p in models:  # inference cost of the ensemble, for the distillation trade-off
        p["model"].predict_logits(data.test, EVAL_BATCH)
    speed = len(data.test) / (time.time() - t0)
    merged = merge_logits([p["test"] for p in models], ensemble_weights([p["pre"] for p in models]))
    return _acc(merged, data), {"test_texts_per_s": round(speed, 1)}


def _distilled(backbone, data, seed, shared, student) -> tuple[float, dict]:
    """The product's soft-label -> distill stage, in memory."""
    models = _pattern_models(backbone, data, seed, shared)
    weights = ensemble_weights([p["pre"] for p in models])
    probs = soft_labels(merge_logits(_unlabeled_logits(models, data), weights), 2.0)
    path = model_folder(backbone) if student == "teacher" else model_folder(student)
    cfg = _cfg(backbone, learning_rate=1e-4, max_steps=300, batch_size=16, temperature=2.0)
    clf, _ = distill_soft_labels(path, data.labels, 128, data.unlabeled, probs, cfg, seed)
    t0 = time.time()
    acc = clf.evaluate(data.test, EVAL_BATCH)["accuracy"]
    speed = len(data.test) / (time.time() - t0)
    params = sum(p.numel() for p in clf.model.parameters())
    return acc, {"student": student, "student_params": params, "test_texts_per_s": round(speed, 1)}


def _ipet(backbone, data, seed, shared, student) -> tuple[float, dict]:
    """One generation of the product's iPET step: each new model learns from train + texts labeled by the others."""
    models = _pattern_models(backbone, data, seed, shared)
    sets = build_generation_sets(_unlabeled_logits(models, data), [p["pre"] for p in models], _gold(data, data.train),
                                 generation=1, factor=5, fraction=0.5, seed=seed)
    test_logits = []
    for p, extra in zip(models, pseudo_labeled_examples(sets, data.unlabeled, data.labels, generation=1)):
        m = _pet(backbone, data, p["template"], data.words, seed)
        m.train_model(data.train + extra, _cfg(backbone), seed)
        test_logits.append(m.predict_logits(data.test, EVAL_BATCH))
    merged = merge_logits(test_logits, ensemble_weights([p["pre"] for p in models]))
    return _acc(merged, data), {"n_added_per_model": len(sets[0][1])}


def _auto_words(backbone, data, seed, shared, student) -> tuple[float, dict]:
    template = data.patterns[0]
    probe = _pet(backbone, data, template, data.words, seed)
    cands = search_label_words(probe, data.train, data.labels, top_k_per_class=10, num_candidates=3, seed=seed)
    _, best = _rerank_on_dev(backbone, data, seed, [(template, c["label_words"]) for c in cands])
    acc, _ = _train_eval(backbone, data, template, best, seed)
    return acc, {"label_words": best}


def _auto_template(backbone, data, seed, shared, student) -> tuple[float, dict]:
    gen = load_generator(model_folder(GENERATOR))
    cands = generate_templates(gen, data.train, Verbalizer(data.words), num_candidates=3, beam_width=4,
                               max_new_tokens=6, examples_per_prompt=8, seed=seed,
                               for_causal=BACKBONES[backbone].kind == "causal")
    del gen
    if not cands:  # nothing usable generated: say so in the row rather than fall back silently
        return float("nan"), {"template": None, "generator": GENERATOR}
    best, _ = _rerank_on_dev(backbone, data, seed, [(c["template"], data.words) for c in cands])
    acc, _ = _train_eval(backbone, data, best, data.words, seed)
    return acc, {"template": best, "generator": GENERATOR}


def _demo(backbone, data, seed, shared, student) -> tuple[float, dict]:
    encoder, enc_tok = load_sentence_encoder(model_folder(SBERT))
    m = _pet(backbone, data, data.patterns[0], data.words, seed, max_length=2 * BACKBONES[backbone].max_length)
    m.demonstrations = DemonstrationSampler(data.train, m.verbalizer, 1, seed, lambda exs: sentence_embeddings(encoder, enc_tok, exs))
    m.train_model(data.train, _cfg(backbone), seed)
    return _acc(m.predict_logits(data.test, EVAL_BATCH), data), {"encoder": SBERT}


def _lora(backbone, data, seed, shared, student) -> tuple[float, dict]:
    cfg = _cfg(backbone, learning_rate=10 * BACKBONES[backbone].learning_rate)
    lora = LoraSettings(enabled=True, r=8, alpha=16)
    return _train_eval(backbone, data, data.patterns[0], data.words, seed, cfg, lora=lora)[0], {}


def _soft_prompt(kind: str):
    def row(backbone, data, seed, shared, student) -> tuple[float, dict]:
        return _train_eval(backbone, data, data.patterns[0], data.words, seed, soft=SoftPromptConfig(kind=kind))[0], {}

    return row


ROWS = {  # in the order of the results table
    "finetune": _finetune, "pet": _pet_row, "pet_ensemble": _pet_ensemble, "distilled": _distilled, "ipet": _ipet,
    "auto_words": _auto_words, "auto_template": _auto_template, "demo": _demo,
    **{kind: _soft_prompt(kind) for kind in ("prompt_tuning", "p_tuning", "prefix_tuning")},
    "lora": _lora,
}
METHODS = tuple(ROWS)


def run_method(method: str, backbone: str, data: TaskData, seed: int, shared: dict, student: str) -> tuple[float, dict]:
    """Test accuracy and details of one row; ``shared`` keeps the pattern models several rows reuse."""
    if method not in ROWS:
        raise ValueError(f"unknown method {method}")
    return ROWS[method](backbone, data, seed, shared, student)
