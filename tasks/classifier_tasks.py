"""Prefect tasks of the final stage: distill the soft labels into a sequence classifier, evaluate it, and
register it (champion or challenger, see ``promotion``)."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Sequence

import mlflow
from prefect import task
from prefect.cache_policies import NO_CACHE

from pet_config.schema import PipelineConfig
from pet_io.atomic import is_done, publish, read_done
from pet_io.digests import digest, model_digest
from pet_io.example_files import iter_examples, read_examples
from prompt_models import engines, onnx_student
from prompt_models.examples import gold_indices
from prompt_models.pair_tuning import PAIR_SETTINGS
from prompt_models.distill import SequenceClassifier, distill_soft_labels, with_gold_targets
from prompt_models.training import configure_threads, pick_device

from . import figures, promotion, served_model, tracking
from .caching import train_cfg_key
from .data_tasks import logger
from .label_tasks import label_store, read_soft_labels
from .pattern_tasks import EVAL_SPLITS
from .records import ClassifierRef, LabeledShard, Registration, SplitFile, Splits

@task(name="distill", cache_policy=NO_CACHE)
def distill(cfg: PipelineConfig, labeled_shards: Sequence[LabeledShard], ens_key: str, parent_run_id: str | None,
            train: SplitFile | None = None) -> ClassifierRef:
    """Train the final sequence classifier on the soft labels (KL at T, times T^2), and on ``train`` with its
    gold labels where ``distill.with_train`` is set; where ``distill.pair_tuning`` is set, its encoder is
    first tuned on SetFit's pairs of ``train``."""
    configure_threads()
    base = cfg.resolve(cfg.distill.model_path or cfg.model.path)
    train_cfg = distill_train_cfg(cfg)
    shard_digests = sorted(s.digest for s in labeled_shards)
    pairs_of = train if cfg.distill.pair_tuning else None
    train = train if cfg.distill.with_train else None
    key = classifier_key(cfg, ens_key, shard_digests, train.digest if train else None,
                         pairs_of.digest if pairs_of else None)
    folder = cfg.work_path / "classifiers" / key
    with tracking.stage_run(cfg, parent_run_id, "distill", {"cache_key": key, "ensemble_key": ens_key}) as run:
        mlflow.log_params({"base_model": base, "n_shards": len(shard_digests), "temperature": train_cfg.temperature})
        if is_done(folder):
            info = read_done(folder)
            mlflow.set_tags({"cached": "true", "source_run_id": info["run_id"]})
            return ClassifierRef(**info, cached=True)
        examples, probs = read_soft_labels([s.path for s in labeled_shards])
        tracking.log_examples_input(examples, "soft_labeled", str(label_store(cfg, ens_key)), "training", digest(shard_digests))
        mlflow.log_metrics({"n_soft_labeled": len(examples), "n_gold_labeled": train.n if train else 0})
        gold_split = train or pairs_of
        gold = read_examples(gold_split.path) if gold_split else None
        if gold_split:
            tracking.log_examples_input(gold, "train", gold_split.source, "training", gold_split.digest)  # lineage of both inputs
        if train:
            examples, probs = with_gold_targets(examples, probs, gold, cfg.verbalizer_obj().labels)
        clf, fit = distill_soft_labels(base, cfg.verbalizer_obj().labels, cfg.model.max_length, examples, probs, train_cfg,
                                       cfg.distill.seed, pick_device(cfg.model.device),
                                       tracking.step_logger("distill", train_cfg.max_steps, "distill_loss", logger()),
                                       gold if pairs_of else None)
        mlflow.log_metric("final_distill_loss", fit["final_loss"])
        if fit.get("pairs"):
            mlflow.log_metrics({"n_pairs": fit["pairs"]["n_pairs"], "pair_steps": fit["pairs"]["steps"]})

        def write(tmp: Path) -> dict:
            clf.save(tmp / "model")
            return {"key": key, "path": str(folder / "model"), "run_id": run.info.run_id, "n_train": len(examples)}

        return ClassifierRef(**publish(folder, write), cached=False)


def distill_train_cfg(cfg: PipelineConfig):
    # the student learns the teacher's probabilities at the temperature they were made with
    return cfg.distill.train.core(temperature=cfg.pet.temperature)


def classifier_key(cfg: PipelineConfig, ens_key: str, shard_digests: Sequence[str], train_digest: str | None = None,
                   pairs_digest: str | None = None) -> str:
    return digest(
        {
            "ensemble": ens_key,
            **({"gold_train": train_digest} if train_digest else {}),  # absent: the keys of earlier versions hold
            # the pair step's settings are constants of pair_tuning: in the key, so a change re-distills
            **({"pairs_of": pairs_digest, "pair_settings": PAIR_SETTINGS} if pairs_digest else {}),
            "shards": sorted(shard_digests),
            "base": model_digest(cfg.resolve(cfg.distill.model_path or cfg.model.path)),
            "train_cfg": train_cfg_key(distill_train_cfg(cfg)),
            "labels": cfg.verbalizer_obj().labels,
            "max_length": cfg.model.max_length,
            "seed": cfg.distill.seed,
        }
    )


@task(name="evaluate-classifier", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def evaluate_classifier(cfg: PipelineConfig, data: Splits, classifier: ClassifierRef, parent_run_id: str | None) -> dict:
    configure_threads()
    clf = SequenceClassifier.load(classifier.path)
    clf.model.to(pick_device(cfg.model.device))
    metrics = {}
    with tracking.stage_run(cfg, parent_run_id, "evaluate-classifier", {"classifier_key": classifier.key}):
        for split in ("dev", "test"):
            if split in data:
                m = clf.evaluate(read_examples(data[split].path), cfg.pet.train.eval_batch_size)
                metrics[f"{split}_accuracy"] = m["accuracy"]
                metrics[f"{split}_macro_f1"] = m["macro_f1"]
                figures.log_confusion(m["confusion"], clf.labels, split, "classifier")
        if cfg.distill.onnx:
            metrics.update(onnx_guard(cfg, data, clf, classifier))
        mlflow.log_metrics(metrics)
    return metrics


def onnx_dir(classifier: ClassifierRef) -> Path:
    return Path(classifier.path).parent / "onnx"


GUARD_UNLABELED_TEXTS = 2000  # the int8 graph's and the bf16 model's check when a run has no labeled dev or test split


def onnx_guard(cfg: PipelineConfig, data: Splits, clf: SequenceClassifier, classifier: ClassifierRef) -> dict:
    """Export the classifier to ONNX (once per classifier), measure the fp32 and int8 graphs' accuracy on
    test (else dev), and the torch model's in bf16 where this CPU has bf16 kernels; accept the int8 graph and the
    bf16 model for serving only if each loses at most 0.5 points against the fp32 graph. With no labeled split,
    the fp32 graph's labels of unlabeled texts are the reference: each must agree on 99.5%."""
    folder = onnx_dir(classifier)
    meta_file = folder / onnx_student.META_FILE
    if not meta_file.exists() or onnx_student.OnnxMeta.read(folder).quantization != onnx_student.QUANTIZATION:
        onnx_student.export(clf, folder)  # none yet, or an int8 graph made by an earlier method
    meta = onnx_student.OnnxMeta.read(folder)
    split = next((s for s in ("test", "dev") if s in data), "unlabeled")
    redo_int8 = meta.guard_split != split or meta.int8_accuracy is None  # an interrupted guard is redone
    # bf16 is checked where the CPU runs it at speed (elsewhere the check alone would take minutes); a classifier
    # made on another CPU is checked when a run here reuses it, though a version already registered keeps the
    # verdicts it was logged with
    redo_bf16 = engines.cpu_runs_bf16() and (redo_int8 or meta.bf16_accuracy is None)
    if redo_int8 or redo_bf16:
        if split == "unlabeled":
            examples = list(itertools.islice(iter_examples(data[split].path), GUARD_UNLABELED_TEXTS))
            gold = None  # set from the fp32 graph below
        else:
            examples = read_examples(data[split].path)
            gold = gold_indices(examples, clf.labels)
        texts_a, texts_b = [ex.text_a for ex in examples], [ex.text_b for ex in examples]
        texts_b = texts_b if all(texts_b) else None
        batch = cfg.pet.train.eval_batch_size
        fp32 = onnx_student.OnnxClassifier(folder, False).predict_texts(texts_a, texts_b, batch).argmax(-1)
        gold = fp32 if gold is None else gold
        # a verdict on another split is no verdict: bf16 unchecked unless it is checked now
        verdicts = {"int8": meta.int8_accuracy, "bf16": None if redo_int8 else meta.bf16_accuracy}
        if redo_int8:
            int8 = onnx_student.OnnxClassifier(folder, True).predict_texts(texts_a, texts_b, batch).argmax(-1)
            verdicts["int8"] = float((int8 == gold).mean())
        if redo_bf16:
            verdicts["bf16"] = bf16_accuracy(clf, texts_a, texts_b, batch, gold)
        onnx_student.accept(folder, split, float((fp32 == gold).mean()), verdicts)
        meta = onnx_student.OnnxMeta.read(folder)
    measure = "agreement with fp32 on unlabeled texts" if split == "unlabeled" else f"{split} accuracy"
    if not meta.int8_accepted:
        logger().warning("int8 ONNX classifier refused: %s %.3f against %.3f in fp32; "
                         "`pet predict` serves the fp32 graph", measure, meta.int8_accuracy, meta.fp32_accuracy)
    if meta.bf16_accuracy is not None and not meta.bf16_accepted:
        logger().warning("bf16 torch classifier refused: %s %.3f against %.3f in fp32",
                         measure, meta.bf16_accuracy, meta.fp32_accuracy)
    checked = {"onnx_int8": (meta.int8_accuracy, meta.int8_accepted)}
    if meta.bf16_accuracy is not None:
        checked["torch_bf16"] = (meta.bf16_accuracy, meta.bf16_accepted)
    if split == "unlabeled":
        metrics = {f"{e}_fp32_agreement": a for e, (a, _) in checked.items()}
    else:
        metrics = {f"onnx_fp32_{split}_accuracy": meta.fp32_accuracy,
                   **{f"{e}_{split}_accuracy": a for e, (a, _) in checked.items()}}
    return {**metrics, **{f"{e}_accepted": float(ok) for e, (_, ok) in checked.items()}}


def bf16_accuracy(clf: SequenceClassifier, texts_a: list[str], texts_b: list[str] | None, batch_size: int,
                  gold) -> float | None:
    """The classifier's accuracy with bf16 weights, on the CPU (where it would be served); None, with a warning,
    where it cannot run there (a layer without a bf16 CPU kernel): then it is not served."""
    twin = clf.in_bf16()
    twin.model.to("cpu")
    try:
        return float((twin.predict_texts(texts_a, texts_b, batch_size).argmax(-1) == gold).mean())
    except RuntimeError as exc:
        logger().warning("bf16 torch classifier not checked, not served: it failed to run (%s)", exc)
        return None


@task(name="register-classifier", cache_policy=NO_CACHE, **tracking.STORE_RETRIES)
def register_classifier(
    cfg: PipelineConfig, data: Splits, classifier: ClassifierRef, metrics: dict, parent_run_id: str | None, flow_run_id: str | None
) -> Registration:
    """Log the classifier as an MLflow pyfunc model (``served_model``), register it (once per classifier key),
    and promote it to the champion alias if it is at least as good as the champion (``promotion``)."""
    name = cfg.tracking.registered_model
    client = mlflow.MlflowClient(cfg.tracking_uri())
    with tracking.stage_run(cfg, parent_run_id, "register", {"classifier_key": classifier.key}):
        # runs of one pipeline take turns (flows.common.pipeline_slot), so check-then-register cannot race
        version = _version_with_key(client, name, classifier.key)
        reused = version is not None
        if reused:
            mlflow.set_tags({"reused_version": version})
        else:
            tags = {f"metric.{k}": v for k, v in metrics.items()}
            tags.update({f"data_digest.{s}": data[s].digest for s in EVAL_SPLITS if s in data})
            tags.update(prefect_flow_run_id=flow_run_id, classifier_key=classifier.key)
            version = log_and_register(cfg, classifier, name, {k: str(v) for k, v in tags.items() if v is not None})
        decision = promotion.decide(cfg, data, client, version, metrics)
        mlflow.log_metrics(metrics)
        mlflow.log_dict(decision.to_dict(), "promotion.json")
        mlflow.set_tags({"promoted": str(decision.promoted).lower(), "alias": decision.alias, "version": version})
        if decision.champion_score is not None:
            mlflow.log_metric("champion_score", decision.champion_score)
        logger().info("registered %s v%s -> alias %r: %s", name, version, decision.alias, decision.reason)
    return Registration(name, version, decision.alias, f"models:/{name}@{decision.alias}", reused, decision.promoted,
                        decision.reason)


def log_and_register(cfg: PipelineConfig, classifier: ClassifierRef, name: str, tags: dict) -> str:
    """Log the classifier as the pyfunc model of ``served_model`` (ONNX Runtime where exported) and register it."""
    clf = SequenceClassifier.load(classifier.path)
    onnx = onnx_dir(classifier)
    info = served_model.log_classifier(
        clf, classifier.path, onnx if (onnx / onnx_student.META_FILE).exists() else None,
        text_pair=cfg.data.train is not None and bool(cfg.data.train.text_b),
        metadata={"labels": clf.labels, "classifier_key": classifier.key, "max_length": clf.max_length},
    )
    # the version is created with its classifier_key tag: a retried task finds it instead of registering twice
    return str(mlflow.register_model(info.model_uri, name, tags=tags).version)


def _version_with_key(client, name: str, key: str) -> str | None:
    try:
        versions = client.search_model_versions(f"name='{name}'")
    except mlflow.exceptions.MlflowException:
        return None
    for v in versions:
        if v.tags.get("classifier_key") == key:
            return str(v.version)
    return None
