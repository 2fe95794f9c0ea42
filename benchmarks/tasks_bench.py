"""The user's path on six tasks: `pet init` then `pet run` with no hand-written prompts, against peers.

Tasks SST-2, sst-5, mr, cr, subj, trec (LM-BFF 16-shot splits, split seeds 13, 42, 100, in
../shared/data/lmbff_kshot); 1,000 unlabeled texts sampled (seed 0) from each task's
../shared/data/lmbff_train_pools/<task>/train.tsv; test sets capped at 1,000 rows by a fixed sample
(pandas, random_state 0). Rows whose text is whitespace only (LM-BFF's cr train files of seeds 13 and 42,
and its test file) are dropped in a copy, the fix `pet init` asks of a user. In the same run, per (task, seed):

  pet          `pet init` + `pet run` as subprocesses (wall seconds of both): rows pet-ensemble,
               pet-student (the distilled all-MiniLM-L6-v2) and zero-shot-calibrated (the backbone
               untrained with the chosen prompts, label prior divided out)
  setfit       SetFit 1.2.0, default settings, the same all-MiniLM-L6-v2 body
  finetune     plain fine-tuning of that MiniLM on the k-shot data; learning rate (3e-5, 1e-4, 3e-4)
               and steps (25, 50, 100: dev scored during one 100-step run per rate) picked on dev
  hand         the hand-written config (configs/sst2.yaml, configs/trec.yaml) on the same files
  pet-lora     (not in the default set: --units pet-lora) the pet unit with `pet.lora.enabled=true`

Each unit runs in a subprocess; its rows land in benchmarks/tasks_results.json (atomic rewrite) as
it finishes, so an interrupted run resumes at the first unfinished unit. Seed 13 of every task runs
first. `--report` rewrites the table in RESULTS.md and the chart from the results file alone.

    nice -n 5 python benchmarks/tasks_bench.py > tasks_bench.log 2>&1

SetFit is a benchmark-only peer, installed beside the project without its declared dependencies
(they would move the pinned torch/transformers): `.venv/bin/pip install --no-deps setfit==1.2.0
sentence-transformers evaluate`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from hostinfo import vector_isa

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "benchmarks" / "tasks_results.json"
WORK = ROOT / "benchmarks" / "tasks_work"  # scratch (git-ignored): capped files, configs, pet_artifacts
TASKS = ["SST-2", "sst-5", "mr", "cr", "subj", "trec"]
SEEDS = [13, 42, 100]
UNITS = ["pet", "setfit", "finetune", "hand"]
HAND = {"SST-2": "configs/sst2.yaml", "trec": "configs/trec.yaml"}
MACHINE = "2-core CPU VM, no GPU (shared with other jobs during the run)"
TEST_CAP, N_UNLABELED = 1000, 1000
STUDENT = Path("~/.cache/pet-pipeline/models/all-minilm-l6-v2").expanduser()
PY = sys.executable
ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
           OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(ROOT), TOKENIZERS_PARALLELISM="false")


# ------------------------------------------------------------------------------------------ data
def _files(task: str, seed: int) -> dict:
    """train/dev as shipped; test capped; 1,000 unlabeled texts: paths, and how to read them."""
    src = SHARED / "data" / "lmbff_kshot" / task / f"16-{seed}"
    tsv = (src / "train.tsv").exists()
    ext = "tsv" if tsv else "csv"
    out = WORK / f"{task}-{seed}"
    out.mkdir(parents=True, exist_ok=True)
    read = dict(sep="\t", quoting=3) if tsv else dict(header=None)
    write = dict(sep="\t", quoting=3) if tsv else dict(header=False)
    text = "sentence" if tsv else 1
    paths = {}
    for split in ("train", "dev", "test"):
        df = pd.read_csv(src / f"{split}.{ext}", dtype=str, keep_default_na=False, **read)
        blank = df[text].str.strip() == ""
        if split != "test" and not blank.any():
            paths[split] = src / f"{split}.{ext}"  # the shipped file, as a user would pass it
            continue
        # LM-BFF's cr files hold whitespace-only texts, which `pet init` reports (one line, exit 2): the
        # user's fix, dropping those rows, is made here in a copy; every unit reads the same copy
        paths[split] = out / f"{split}.{ext}"
        if not paths[split].exists():
            df = df[~blank]
            if split == "test" and len(df) > TEST_CAP:
                df = df.sample(n=TEST_CAP, random_state=0)
            tmp = paths[split].with_suffix(f".{os.getpid()}.tmp")  # two units may prepare the same files
            df.to_csv(tmp, index=False, **write)
            tmp.replace(paths[split])
    unl = out / "unlabeled.tsv"
    if not unl.exists():
        pool = pd.read_csv(SHARED / "data" / "lmbff_train_pools" / task / "train.tsv", sep="\t", quoting=3,
                           dtype=str, keep_default_na=False)
        tmp = unl.with_suffix(f".{os.getpid()}.tmp")
        pool[["sentence"]].sample(n=N_UNLABELED, random_state=0).to_csv(tmp, sep="\t", index=False, quoting=3)
        tmp.replace(unl)
    cols = dict(text="sentence", label="label", header=True) if tsv else dict(text=1, label=0, header=False)
    return dict(**paths, unlabeled=unl, dir=out, **cols)


def _examples(f: dict, split: str) -> tuple[list[str], list[str]]:
    if not f["header"]:
        opts = dict(header=None)
    else:  # LM-BFF's files are TSV with no quoting; a user's CSV (outside_task.py) is quoted CSV
        opts = dict() if str(f[split]).endswith(".csv") else dict(sep="\t", quoting=3)
    df = pd.read_csv(f[split], dtype=str, keep_default_na=False, **opts)
    return df[f["text"]].tolist(), [s.strip() for s in df[f["label"]].tolist()]


DESIGN_SEEDS = (21, 87)  # split seeds the benchmark does not use: (choose on, held out)


def design_splits(task: str, seeds: tuple[int, int] = DESIGN_SEEDS):
    """For design checks, split seeds the benchmark does not use: seed 21's train and dev (choose on),
    seed 87's train + dev (held out), the labels, and seed 21's unlabeled pool (``seeds`` swapped: the
    other way round, a second draw)."""
    from prompt_models.examples import InputExample

    sel_files, eval_files = _files(task, seeds[0]), _files(task, seeds[1])
    ex = {s: [InputExample(t, None, lab) for t, lab in zip(*_examples(sel_files, s))] for s in ("train", "dev")}
    held = [InputExample(t, None, lab) for s in ("train", "dev") for t, lab in zip(*_examples(eval_files, s))]
    labels = sorted({e.label for e in ex["train"]}, key=lambda v: (len(v), v))
    return ex, held, labels, sel_files["unlabeled"]


def run_samples(out: Path, res: dict, seeds, units, build, run_unit, name: str) -> None:
    """The resumable loop of the sample-seed scripts (outside_task.py, trec_coarse_task.py): every (seed,
    unit) without rows in ``res`` runs ``run_unit(files, unit, seed)``; rows land in ``out`` as each finishes."""
    from pet_io.atomic import write_json_atomic

    for seed in seeds:
        f = build(seed)
        for unit in units:
            if any(r["unit"] == unit and r["sample_seed"] == seed for r in res["rows"]):
                continue
            print(f"{name} sample {seed}: {unit} ...", flush=True)
            rows = run_unit(f, unit, seed)
            res["rows"] += [dict(r, unit=unit, sample_seed=seed) for r in rows]
            write_json_atomic(out, res)
            for r in rows:
                print(f"  {r['method']}: test {r['test_accuracy']:.3f} ({r['wall_s']} s)", flush=True)


# ------------------------------------------------------------------------------------------ units
def _cli(*args: str, code: Path = ROOT) -> dict:
    """`pet ARGS` run from the checkout at ``code`` (this one, or a worktree of an earlier commit)."""
    env = ENV if code == ROOT else dict(ENV, PYTHONPATH=str(code))
    out = subprocess.run([PY, "-m", "flows.cli", *args], cwd=code, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pet {args[0]} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    lines = out.stdout.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("{")), None)
    return json.loads("\n".join(lines[start:])) if "--json" in args and start is not None else {}


def _pet_rows(summary: dict, wall: float, extra: dict) -> list[dict]:
    ens, clf = summary["ensemble_metrics"], summary["classifier_metrics"]
    zs = (summary.get("zero_shot_calibrated") or {}).get("metrics", {})
    prompts = {"templates": summary["templates"], "label_words": summary.get("label_words")}
    rows = [dict(method="pet-ensemble", test_accuracy=ens.get("test_accuracy"), dev_accuracy=ens.get("dev_accuracy")),
            dict(method="pet-student", test_accuracy=clf.get("test_accuracy"), dev_accuracy=clf.get("dev_accuracy")),
            dict(method="zero-shot-calibrated", test_accuracy=zs.get("test_accuracy"), dev_accuracy=zs.get("dev_accuracy"))]
    return [dict(r, wall_s=round(wall, 1), details=dict(prompts, **extra)) for r in rows]


def _stage_seconds(cfg_path: Path, parent_run_id: str) -> dict:
    """Wall seconds of each stage run under the pet run (its MLflow child runs): where the time goes."""
    from pet_config.loading import load_config

    return stage_seconds(load_config(cfg_path).tracking_uri(), parent_run_id)


def stage_seconds(tracking_uri: str, parent_run_id: str) -> dict:
    """``_stage_seconds`` of a run in the MLflow store at ``tracking_uri``."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_run(parent_run_id).info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent_run_id}'")
    stages = {r.info.run_name: round((r.info.end_time - r.info.start_time) / 1000, 1) for r in
              sorted(runs, key=lambda r: r.info.start_time) if r.info.end_time}
    # within a stage: a pattern model's train_s / dev_scoring_s / test_scoring_s; the zero-shot reference
    parts = {f"{r.info.run_name}.{k}": round(v, 1) for r in runs for k, v in r.data.metrics.items() if k.endswith("_s")}
    parts.update({k: round(v, 1) for k, v in client.get_run(parent_run_id).data.metrics.items() if k.endswith("_s")})
    return dict(stages, **parts)


def precisions(tracking_uri: str, parent_run_id: str | None = None) -> dict:
    """label_precision.KEY tags and bf16_agreement.KEY metrics of the soft-label stage run under the pet run
    (of every soft-label run in the store where ``parent_run_id`` is None)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    query = "tags.stage = 'soft-label'" + (f" and tags.mlflow.parentRunId = '{parent_run_id}'" if parent_run_id else "")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], query)
    return {k: v for r in runs for k, v in {**r.data.tags, **r.data.metrics}.items()
            if k.startswith(("label_precision.", "bf16_agreement."))}


def pet_init(f: dict, cfg: Path, name: str, test: bool = True, extra: tuple[str, ...] = ()) -> list[str]:
    """`pet init` of the unit's files (with or without the test file) into ``cfg``, with ``extra`` flags (e.g.
    --backbone); the column flags it needed."""
    flags = [] if f["header"] else ["--text-column", "1", "--label-column", "0"]
    _cli("init", str(f["train"]), "--unlabeled", str(f["unlabeled"]), "--dev", str(f["dev"]),
         *(["--test", str(f["test"])] if test else []), "--name", name, "-o", str(cfg), "--force", *flags, *extra)
    return flags


def init_and_run(f: dict, cfg: Path, name: str, test: bool = True, run_args: tuple[str, ...] = ()):
    """`pet init` into ``cfg`` then `pet run` of it with ``run_args``: the run's summary, the wall seconds of
    both (the time a user waits) and the column flags init needed."""
    cfg.parent.mkdir(exist_ok=True)
    t0 = time.time()
    flags = pet_init(f, cfg, name, test)
    summary = _cli("run", str(cfg), "--json", "-q", *run_args)
    return summary, time.time() - t0, flags


def unit_pet(task: str, seed: int, f: dict) -> list[dict]:
    cfg = f["dir"] / "auto.yaml"
    summary, wall, flags = init_and_run(f, cfg, f"{task.lower()}-{seed}-auto")
    cached = sum(m["cached"] for m in summary["pattern_models"])
    return _pet_rows(summary, wall, {"config": "pet init (automatic prompts)", "flags": flags,
                                     "pattern_models_cached": f"{cached}/{len(summary['pattern_models'])}",
                                     "run_s": summary["seconds"], "stage_s": _stage_seconds(cfg, summary["mlflow_run_id"])})


def unit_pet_lora(task: str, seed: int, f: dict) -> list[dict]:
    """The pet unit with `pet.lora.enabled=true` (adapters on every Linear, lr 1e-3 by the rule, bf16 labeling
    where the check passes), in a folder of its own so that no pattern model is shared with the pet unit. Rows
    pet-lora-ensemble and pet-lora-student; its zero-shot reference goes in the details (the same prompts)."""
    from pet_config.loading import load_config

    cfg = f["dir"] / "lora" / "auto.yaml"
    summary, wall, flags = init_and_run(f, cfg, f"{task.lower()}-{seed}-lora", run_args=("--set", "pet.lora.enabled=true"))
    uri = load_config(cfg).tracking_uri()
    rows = _pet_rows(summary, wall, {"config": "pet init (automatic prompts) + --set pet.lora.enabled=true",
                                     "flags": flags, "run_s": summary["seconds"],
                                     "stage_s": stage_seconds(uri, summary["mlflow_run_id"]),
                                     "label_precision": precisions(uri, summary["mlflow_run_id"])})
    zero_shot = rows.pop()
    return [dict(r, method=r["method"].replace("pet-", "pet-lora-"),
                 details=dict(r["details"], zero_shot_test=zero_shot["test_accuracy"],
                              zero_shot_dev=zero_shot["dev_accuracy"])) for r in rows]


def unit_userpath(task: str, seed: int, f: dict) -> list[dict]:
    """The time a user waits: `pet init` + `pet run` as in the pet unit but without a test set to score
    (a config of its own folder, so nothing is reused from the pet unit's work_dir). Dev accuracy only."""
    cfg = f["dir"] / "userpath" / "auto.yaml"
    summary, wall, _ = init_and_run(f, cfg, f"{task.lower()}-{seed}-userpath", test=False)
    return [dict(r, method=r["method"] + "-no-test") for r in _pet_rows(summary, wall, {
        "config": "pet init without --test (automatic prompts)", "run_s": summary["seconds"],
        "stage_s": _stage_seconds(cfg, summary["mlflow_run_id"])})]


def unit_hand(task: str, seed: int, f: dict) -> list[dict]:
    import yaml

    base = yaml.safe_load((ROOT / HAND[task]).read_text())
    for split in ("train", "dev", "test", "unlabeled"):
        base["data"][split] = dict(base["data"][split], path=str(f[split]))
        if split == "unlabeled":
            base["data"][split] = {"path": str(f[split]), "text_a": "sentence"}
    base.update(name=f"{task.lower()}-{seed}-hand", work_dir="pet_artifacts",
                auto_prompts={"zero_shot_reference": False})  # the reference row comes from the pet unit
    cfg = f["dir"] / "hand.yaml"
    cfg.write_text(yaml.safe_dump(base, sort_keys=False))
    t0 = time.time()
    summary = _cli("run", str(cfg), "--json", "-q")
    return [dict(r, method=r["method"].replace("pet-", "hand-")) for r in
            _pet_rows(summary, time.time() - t0, {"config": HAND[task]}) if r["method"] != "zero-shot-calibrated"]


def setfit_model(texts: list[str], labels: list[str], names: list[str], scratch: Path):
    """SetFit 1.2.0 at its default settings, trained on ``texts`` and their ``labels`` (each one of ``names``)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(str(STUDENT))
    # default settings; checkpoints out of the repository, no MLflow/TensorBoard logging by transformers
    args = TrainingArguments(output_dir=str(scratch), report_to="none")
    train = Dataset.from_dict({"text": texts, "label": [names.index(v) for v in labels]})
    Trainer(model=model, args=args, train_dataset=train).train()
    return model


def unit_setfit(task: str, seed: int, f: dict) -> list[dict]:
    t0 = time.time()
    x, y = _examples(f, "train")
    labels = sorted(set(y))
    model = setfit_model(x, y, labels, f["dir"] / "setfit")
    acc = {}
    for split in ("dev", "test"):
        tx, ty = _examples(f, split)
        pred = [int(p) for p in model.predict(tx)]
        acc[split] = sum(labels[p] == g for p, g in zip(pred, ty)) / len(ty)
    return [dict(method="setfit", test_accuracy=acc["test"], dev_accuracy=acc["dev"], wall_s=round(time.time() - t0, 1),
                 details={"setfit": "1.2.0 defaults", "body": "all-MiniLM-L6-v2"})]


FINETUNE_LRS, FINETUNE_CHECKPOINTS = (3e-5, 1e-4, 3e-4), (25, 50, 100)


def unit_finetune(task: str, seed: int, f: dict) -> list[dict]:
    """Plain fine-tuning: one 100-step run per learning rate, dev scored after 25, 50 and 100 steps;
    the (learning rate, steps) best on dev (fewest steps on a tie) is scored on test."""
    import copy
    import random

    import torch

    from prompt_models.examples import InputExample
    from prompt_models.distill import SequenceClassifier, distillation_loss
    from prompt_models.training import TrainConfig, batches_forever, configure_threads, set_seed, train_steps

    configure_threads()
    t0 = time.time()
    data = {s: [InputExample(t, None, lab) for t, lab in zip(*_examples(f, s))] for s in ("train", "dev", "test")}
    labels = sorted({ex.label for ex in data["train"]}, key=lambda v: (len(v), v))
    onehot = torch.eye(len(labels))[[labels.index(ex.label) for ex in data["train"]]]  # [N, L]
    grid, best = [], None
    for lr in FINETUNE_LRS:
        set_seed(seed)
        clf = SequenceClassifier.from_pretrained(str(STUDENT), labels, 128)
        it, done = batches_forever(len(data["train"]), 16, random.Random(seed)), [0]

        # SequenceClassifier.train_model's step (cross-entropy = KL to one-hot targets at T=1), written
        # out so that dev is scored between steps: one run per learning rate gives all three step counts
        def step_loss():
            if done[0] in FINETUNE_CHECKPOINTS[:-1]:
                score(done[0])
            done[0] += 1
            clf.model.train()
            idx = next(it)
            logits = clf.model(**clf.batch([data["train"][i] for i in idx])).logits
            return distillation_loss(logits.float(), onehot[idx], 1.0)

        def score(steps):
            nonlocal best
            dev = clf.evaluate(data["dev"])["accuracy"]
            grid.append((dev, steps, lr))
            if best is None or (dev, -steps) > best[0]:
                best = ((dev, -steps), lr, copy.deepcopy(clf))

        train_steps(clf.model.parameters(), TrainConfig(learning_rate=lr, max_steps=FINETUNE_CHECKPOINTS[-1],
                                                        batch_size=16, temperature=1.0, progress=False), step_loss, "finetune")
        score(FINETUNE_CHECKPOINTS[-1])
    (dev, neg_steps), lr, model = best
    return [dict(method="finetune", test_accuracy=model.evaluate(data["test"])["accuracy"], dev_accuracy=dev,
                 wall_s=round(time.time() - t0, 1), details={"max_steps": -neg_steps, "learning_rate": lr,
                                                            "grid_dev": grid,
                                                            "grid": f"dev after {FINETUNE_CHECKPOINTS} steps of one run "
                                                                    "(linear decay) per learning rate"})]


UNIT_FUNCS = {"pet": unit_pet, "setfit": unit_setfit, "finetune": unit_finetune, "hand": unit_hand,
              "userpath": unit_userpath, "pet-lora": unit_pet_lora}


# ------------------------------------------------------------------------------------------ driver
def load_results() -> dict:
    if RESULTS.exists():
        return json.loads(RESULTS.read_text())
    return {"machine": MACHINE, "test_cap": TEST_CAP, "n_unlabeled": N_UNLABELED, "rows": [], "failures": []}


def save_results(res: dict, path: Path = RESULTS) -> None:
    """Write a results file whole or not at all (a killed benchmark leaves the last complete one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    tmp.replace(path)


def _children_cpu() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _commit(code: Path = ROOT) -> str:
    """The commit the checkout ``code`` is at, "+dirty" where its tracked files differ from it."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=code, capture_output=True, text=True)
    # changes to the files this benchmark writes (results, table, chart) do not make the code dirty
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":!benchmarks/tasks_results.*", ":!benchmarks/RESULTS.md"], cwd=code, capture_output=True,
                           text=True).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def _repo_paths(text: str) -> str:
    """Machine paths in a traceback as the repo-relative paths the results file names."""
    return text.replace(str(SHARED), "../shared").replace(str(ROOT) + "/", "")


def plan(tasks, seeds, units) -> list[tuple[str, int, str]]:
    """Seed-major: every task's first seed before any second seed (the most informative rows first)."""
    return [(t, s, u) for s in seeds for t in tasks for u in units if u != "hand" or t in HAND]


def run_one(task: str, seed: int, unit: str) -> None:
    """Child process: one unit, its rows printed as one JSON line."""
    rows = UNIT_FUNCS[unit](task, seed, _files(task, seed))
    print("ROWS " + json.dumps([dict(r, task=task, seed=seed, unit=unit) for r in rows]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="*", default=TASKS)
    ap.add_argument("--seeds", nargs="*", type=int, default=SEEDS)
    ap.add_argument("--units", nargs="*", default=UNITS)
    ap.add_argument("--one", nargs=3, metavar=("TASK", "SEED", "UNIT"), help=argparse.SUPPRESS)
    ap.add_argument("--report", action="store_true", help="only rewrite the RESULTS.md table and the chart")
    ap.add_argument("--redo", action="store_true", help="run the selected units again even where they have rows "
                    "(a pet unit reuses its cached pattern models: its wall seconds stay the full run's)")
    args = ap.parse_args()
    if args.one:
        return run_one(args.one[0], int(args.one[1]), args.one[2])
    from tasks_report import write_report

    if args.report:
        return write_report(load_results())
    for task, seed, unit in plan(args.tasks, args.seeds, args.units):
        res = load_results()
        before = [r for r in res["rows"] if r["task"] == task and r["seed"] == seed and r["unit"] == unit]
        if before and not args.redo:
            continue
        print(f"{time.strftime('%H:%M:%S')} {task} seed {seed} {unit} ...", flush=True)
        t0, load0, cpu0, commit = time.time(), os.getloadavg()[1], _children_cpu(), _commit()
        out = subprocess.run([PY, __file__, "--one", task, str(seed), unit], cwd=ROOT, env=ENV,
                             capture_output=True, text=True)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("ROWS ")), None)
        res = load_results()
        if line is None:
            res["failures"].append({"task": task, "seed": seed, "unit": unit, "rc": out.returncode,
                                    "error": _repo_paths(out.stderr.strip()[-1500:]), "at": time.strftime("%Y-%m-%d %H:%M:%S")})
            print(f"  failed ({out.returncode}): {out.stderr.strip()[-500:]}", flush=True)
        else:
            # the machine is shared: the 5-minute load average around the unit says how much CPU it had
            # CPU seconds of the unit's processes: on 2 cores, cpu_s / 2 bounds the wall time of an idle machine
            load = {"loadavg5_start": round(load0, 1), "loadavg5_end": round(os.getloadavg()[1], 1),
                    "cpu_s": round(_children_cpu() - cpu0, 1), "commit": commit, "cpu": vector_isa()}
            rows = [dict(r, details=dict(r.get("details") or {}, **load)) for r in json.loads(line[5:])]
            reused = before and rows[0]["details"].get("pattern_models_cached", "0/").split("/")[0] != "0"
            if reused:  # a rerun on cached pattern models: the time a user waits is the full run's
                was = before[0]["details"]
                rows = [dict(r, wall_s=before[0]["wall_s"], details=dict(
                    r["details"], rerun_wall_s=r["wall_s"], rerun_cpu_s=r["details"]["cpu_s"], cpu_s=was.get("cpu_s"),
                    full_run_commit=was.get("full_run_commit", was.get("commit")))) for r in rows]
            res["rows"] = [r for r in res["rows"] if not (r["task"] == task and r["seed"] == seed and r["unit"] == unit)]
            res["rows"] += rows
            print("  " + ", ".join(f"{r['method']} {r['test_accuracy']:.3f}" for r in rows if r["test_accuracy"] is not None)
                  + f" ({time.time() - t0:.0f} s)", flush=True)
        save_results(res)
        write_report(res)


if __name__ == "__main__":
    main()
