"""``pet init TRAIN_FILE``: a complete, commented config from a user's data, which ``pet run`` accepts as is.

Columns are found by ``init_columns`` (names or contents; headerless files too); when the choice is
not clear, one line names the flag to give (exit 2). The label set, and every row, is checked as
``pet run`` checks it. Patterns and label words are left empty: the pet flow chooses them (automatic
prompts). The backbone and student are the defaults or what ``init_models`` accepts of --backbone / --student.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import sys
from pathlib import Path

import pandas as pd

from pet_config.schema import NAME_PATTERN
from pet_io.labeled import load_examples
from pet_io.sources import DataSpec, DataValidationError
from pet_io.unlabeled import open_unlabeled, scratch_cache, skipped_lines
from prompt_models.examples import MAX_SCORED_PER_LABEL
from prompt_models.function_words import are_questions

from .init_columns import InitError, find_columns, read_frame, unnamed_text_column, unused_text_columns
from .init_labels import check_known_labels, label_set, repeats
from .init_models import choose_model


# sizes over which `pet init` says what a run will do with so much data (a new-user trial gave IMDB's 25,000
# labeled and 50,000 unlabeled reviews and was told nothing; another CoLA's 7,695 unlabeled sentences, labeled for 10
# minutes): measured times are for 16-shot, 1,000 texts (UNLABELED_SAMPLE), labeled in about 40 s per pattern model
MANY_LABELED, MANY_UNLABELED, UNLABELED_SAMPLE = 2_000, 2_000, 1_000
FEW_UNLABELED = 200  # below it a note: the student's training set is mostly these texts
LABEL_S_PER_TEXT_AND_MODEL = 0.04  # SmolLM2-135M, short sentences, 2 cores (README job)


def _yaml_value(value) -> str:
    """A YAML flow value (JSON is YAML) that keeps letters as written ("Küche", not "K\\u00fcche"); anything
    YAML may not hold raw (control or line-separator characters) stays escaped."""
    raw = json.dumps(value, ensure_ascii=False)
    return raw if raw.isprintable() else json.dumps(value)


def _model_value(value: str) -> str:
    # a zoo name as a user types it (`path: gemma-3-270m`); a folder's path quoted where YAML needs it
    return value if re.fullmatch(r"[a-z0-9][a-z0-9._-]*", value) else _yaml_value(value)


def _tokens(col: pd.Series) -> pd.Series:
    """About how many backbone tokens each text is: 1.6 a word (English through the backbone's BPE), plus
    0.7 a byte beyond ASCII, since Chinese or Korean has few spaces to count and about 2 tokens a character
    (3 UTF-8 bytes); measured with smollm2's tokenizer on German, Chinese, Japanese and Korean sentences."""
    beyond_ascii = col.map(lambda t: sum(len(ch.encode()) for ch in t if ord(ch) > 127))
    return col.str.split().str.len() * 1.6 + beyond_ascii * 0.7


def _max_length(df: pd.DataFrame, text: str, pair: str | None) -> tuple[int, float]:
    """Tokens for 95% of the training examples (both texts of a pair) plus 16 for the template, in
    steps of 32 between 64 and 256 (longer texts are cut, longest text first), and the share of the
    examples that fit: below 95% where 256 caps it (long reviews), which the config's comment says."""
    need = _tokens(df[text]) + (_tokens(df[pair]) if pair else 0)
    length = int(min(256, max(64, 32 * -(-int(need.quantile(0.95) + 16) // 32))))
    return length, float((need + 16 <= length).mean())


def _spec(path: str, out_dir: Path, header: bool, sep: str | None, text: str, pair: str | None, label: str | None) -> str:
    rel = os.path.relpath(Path(path).resolve(), out_dir.resolve())
    parts = [f"path: {_yaml_value(rel)}", f"text_a: {_yaml_value(text)}"]
    parts += [f"text_b: {_yaml_value(pair)}"] if pair else []
    parts += [f"label: {_yaml_value(label)}" if label else "label: null"]
    parts += [] if header else ["header: false"]
    parts += [f"read_options: {{sep: {_yaml_value(sep)}}}"] if sep else []
    return "{" + ", ".join(parts) + "}"


def _check_rows(path: str, header: bool, sep: str | None, text: str, pair: str | None, label: str,
                labels: list[str]) -> None:
    """The labeled split read as `pet run` reads it (empty texts, unknown labels), so that a config `pet init`
    writes is one `pet run` accepts: a bad row is reported here, in the same words."""
    try:
        load_examples(_data_spec(path, header, sep, text, pair, label), labels)
    except DataValidationError as exc:
        raise InitError(str(exc)) from None


def _data_spec(path: str, header: bool, sep: str | None, text: str, pair: str | None, label: str | None) -> DataSpec:
    return DataSpec(path=path, text_a=text, text_b=pair, label=label, header=header,
                    read_options={"sep": sep} if sep else {})


def _check_unlabeled(path: str, header: bool, sep: str | None, text: str, pair: str | None) -> int:
    """The unlabeled file read as `pet run` reads it (empty texts stop a run), leaving no cache behind;
    returns its row count."""
    try:
        with scratch_cache() as cache:
            return len(open_unlabeled(_data_spec(path, header, sep, text, pair, None), cache))
    except DataValidationError as exc:
        raise InitError(str(exc)) from None


def _same_shape(path: str, flag: str, df: pd.DataFrame, pair: str | None, found: str | None) -> None:
    """A split of a pair task holds pairs too (a pair template given one text stops `pet run` midway); a
    single-text task's splits are never paired (``find_columns(pairs=False)``)."""
    if pair and not found:
        raise InitError(f"{path}: no second text column for the pair task (the training file pairs its texts with "
                        f"{pair!r}); the file has {list(df.columns)}: name its columns as train does, or give {flag} "
                        "a file of text pairs")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "pet"


def _name(train: str) -> str:
    p = Path(train).resolve()
    stem = p.name.split(".")[0]
    if stem.lower() not in ("train", "training", "data", "labels", "labeled") or not p.parent.name:
        return _slug(stem)
    # LM-BFF's TASK/16-13/train.csv: the folder names a split seed, not the task, and every task of that
    # seed would share the pipeline, its registered model and its champion
    folder = p.parent.name if re.search(r"[a-zA-Z]", p.parent.name) else f"{p.parent.parent.name}-{p.parent.name}"
    return _slug(folder)


def _shared_files(args) -> list[str]:
    """One file in two roles: the test score is then no held-out score (prompts are chosen and the champion
    promoted on dev), and a student distilled on dev or test texts has seen them."""
    given = {role: Path(path).resolve() for role, path in (("train", args.train), ("dev", args.dev), ("test", args.test),
                                                           ("unlabeled", args.unlabeled)) if path}
    why = {("dev", "test"): "the test accuracy is measured on the file prompts and the champion are chosen on",
           ("train", "dev"): "the dev accuracy is measured on the examples trained on",
           ("train", "test"): "the test accuracy is measured on the examples trained on",
           ("dev", "unlabeled"): "the student is distilled on the dev texts it is then scored on",
           ("test", "unlabeled"): "the student is distilled on the test texts it is then scored on"}
    flag = {"train": "the training file", "dev": "--dev", "test": "--test", "unlabeled": "--unlabeled"}
    return [f"{flag[a]} and {flag[b]} are one file ({given[a]}): {reason}" for (a, b), reason in why.items()
            if a in given and b in given and given[a] == given[b]]


def build_config(args) -> tuple[str, list[str]]:
    """The config's text, and notes for the user (what init had to guess and could not check)."""
    notes: list[str] = []
    out = Path(args.output or f"{args.name or _name(args.train)}.yaml")
    out_dir = out.parent
    name = args.name or _name(args.train)
    if args.unlabeled_text_column and not args.unlabeled:
        raise InitError("--unlabeled-text-column names a column of the --unlabeled file: give that file too")
    if not re.fullmatch(NAME_PATTERN, name):  # checked before any file is read
        raise InitError(f"--name {name!r}: use letters, digits, '.', '_' and '-', e.g. {_slug(name)!r}")
    backbone, backbone_notes = choose_model("--backbone", args.backbone, out_dir)
    student, student_notes = choose_model("--student", args.student, out_dir)
    notes += backbone_notes + student_notes
    df, header, sep = read_frame(args.train)
    text, pair, label = find_columns(df, args.train, args.text_column, args.text_pair_column, args.label_column)
    if pair is not None and pair == text:
        raise InitError(f"--text-column and --text-pair-column name one column ({text!r}); the pair's second text is "
                        "another column (leave --text-pair-column out for one text)")
    if label in (text, pair):
        flag = "--text-column" if label == text else "--text-pair-column"
        fix = "name other columns for them" if args.label_column else "give --label-column for the label"
        raise InitError(f"{args.train}: {flag} {label!r} is the label column; the model would read the answer: name "
                        f"a text column, or {fix}")
    labels = label_set(args.train, df, label, named=bool(args.label_column))
    _check_rows(args.train, header, sep, text, pair, label, labels)
    notes += repeats(args.train, df, [c for c in (text, pair) if c], label)
    if len(df) > MANY_LABELED:
        notes.append(f"{args.train}: {len(df):,} labeled rows: pet is built and measured for a few per label (8 to 64); "
                     "the rule's training draws about 500 of them, and the prompt ranking and each pattern model's "
                     f"ensemble weight read at most {MAX_SCORED_PER_LABEL} per label")
    unused = unused_text_columns(df, {text, pair, label})
    if unused:
        reads = f"{text!r} and {pair!r}" if pair else f"{text!r}"
        notes.append(f"{args.train}: column(s) {unused} are not used: the model reads {reads} only (one text or a "
                     "pair); give --text-column / --text-pair-column to choose others, or join a column into the text")
    splits = {"train": _spec(args.train, out_dir, header, sep, text, pair, label)}
    for split in ("dev", "test"):
        path = getattr(args, split)
        if path:
            d, h, s = read_frame(path)
            try:
                t, p, lab = find_columns(d, path, text if text in d.columns else None, pair if pair in d.columns else None,
                                         label if label in d.columns else None, pairs=pair is not None,
                                         fix=f"name its columns as the training file's ({', '.join(map(repr, [text, pair, label] if pair else [text, label]))})"
                                         if header else "lay it out as the training file: no header line, the same columns")
            except InitError as exc:  # --label-column names the training file's column: say what a dev file lacks
                if "label column" not in str(exc):
                    raise
                raise InitError(f"{path}: no label column found among {list(d.columns)} (the training file's is "
                                f"{label!r}); a --{split} file needs labels: name its column {label!r}") from None
            check_known_labels(path, d[lab], labels, args.train)
            _same_shape(path, f"--{split}", d, pair, p)
            _check_rows(path, h, s, t, p, lab, labels)
            splits[split] = _spec(path, out_dir, h, s, t, p, lab)
    notes += _shared_files(args)
    if args.unlabeled:
        d, h, s = read_frame(args.unlabeled, known=[args.unlabeled_text_column or text] + ([pair] if pair else [])
                             if header or args.unlabeled_text_column else ())
        t, p, _ = find_columns(d, args.unlabeled, args.unlabeled_text_column or (text if text in d.columns else None),
                               pair if pair in d.columns else None, None, need_label=False, pairs=pair is not None,
                               text_flag="--unlabeled-text-column", fix="give --unlabeled-text-column" + (
                                   f" (a pair task: name its second text's column {pair!r}, as train does)" if pair else ""))
        _same_shape(args.unlabeled, "--unlabeled", d, pair, p)
        splits["unlabeled"] = _spec(args.unlabeled, out_dir, h, s, t, p, None)
        n_unlabeled = _check_unlabeled(args.unlabeled, h, s, t, p)
        unl_note = f"{n_unlabeled} {'text pairs' if pair else 'texts'}"
        if n_unlabeled < FEW_UNLABELED:
            notes.append(f"{args.unlabeled}: {unl_note} unlabeled: the student learns from the ensemble's labels "
                         f"of these (and the labeled examples); the measured runs use {UNLABELED_SAMPLE:,}, and more text "
                         "of the kind it will classify usually gives a better student")
        elif n_unlabeled > MANY_UNLABELED:
            minutes = n_unlabeled * 2 * LABEL_S_PER_TEXT_AND_MODEL / 60  # 2 pattern models (auto_prompts.num_patterns)
            notes.append(f"{args.unlabeled}: {n_unlabeled:,} unlabeled texts: every pattern model labels each one, "
                         f"about {minutes:.0f} minutes for the 2 models on 2 cores (40 s per 1,000 short sentences and "
                         f"model, README job; longer texts in proportion); 'limit: {UNLABELED_SAMPLE}, seed: 0' in its "
                         "data line takes a sample of the size the measured runs use (more text may give a better student)")
        notes += [line] if (line := skipped_lines(_data_spec(args.unlabeled, h, s, t, p, None))) else []
        lone = unnamed_text_column(args.unlabeled, d, h)
        if lone and lone.strip().lower() != text.lower():  # the training file's text column's name: a header
            notes.append(f"{args.unlabeled}: its first line {lone!r} is read as the column's name; if it is a text, "
                         "put a line 'text' above it and run pet init again")
    else:  # the flow distills on unlabeled text: the training texts are the least it can have
        splits["unlabeled"] = _spec(args.train, out_dir, header, sep, text, pair, None)
        unl_note = "none given: the training texts stand in (give --unlabeled for a better student)"
        notes.append(f"no --unlabeled file: the student learns the ensemble's labels of the {len(df)} training "
                     "texts alone; give --unlabeled with a few hundred or more texts of the task for a better student")
    max_length, fit = _max_length(df, text, pair)
    if fit < 0.8:
        notes.append(f"{args.train}: {1 - fit:.0%} of the training texts are longer than model.max_length {max_length} "
                     "tokens and will be cut; raise it to keep more of each text (slower, more memory)")
    no_dev = "" if args.dev else (
        "\n# No dev set: automatic prompts are ranked on a stratified quarter of train (the label words are\n"
        "# searched on the rest); promotion compares test accuracy, and without a test set every run promotes.")
    distill_steps = min(400, 300 + 25 * (len(labels) - 2))
    data_lines = "\n".join(f"  {k}: {v}" for k, v in splits.items())
    if any("header: false" in v for v in splits.values()):  # `label: "0"` reads like a label value otherwise
        data_lines = ("  # header: false: a file without a header line; its columns are named by position from \"0\"\n"
                      + data_lines)
    if pair:  # a pair task changes the templates: said, since init found it by the column names
        notes.append(f"{args.train}: a text-pair task: the model reads {text!r} and {pair!r} together")
    elif are_questions(df[text].tolist()):  # the question templates cost a pattern model, or need a dev set
        notes.append(f"{args.train}: the texts are questions: question templates are candidates" + (
            ", and one is trained beside the zero-shot choice, kept if it wins on dev (one more pattern model)"
            if args.dev else "; without --dev the best-ranked one takes the last chosen pattern's place unless chosen "
            "(give --dev to have it trained beside the zero-shot choice and compared, one more pattern model)"))
    config = f"""# Written by `pet init` on {datetime.date.today()} from {args.train}: {len(df)} labeled {'pairs' if pair else 'rows'}, {len(labels)} labels;
# unlabeled: {unl_note}. `pet run {out}` runs it as it is. Relative paths start at this file's folder.{no_dev}
name: {_yaml_value(name)}
labels: {_yaml_value(labels)}
model:
  path: {_model_value(backbone)}   # the PET backbone (causal or masked LM); `pet models list` shows the others
  max_length: {max_length}   # tokens per pattern-wrapped text ({fit:.0%} of the training texts fit; longer ones are cut)
  device: auto
data:
{data_lines}
# Empty patterns and label words: the pet flow chooses them (automatic prompts: library templates x
# label words from the label names or searched, ranked by calibrated zero-shot accuracy on {'dev' if args.dev else 'a quarter of train'}).
# The chosen ones are in the run's MLflow artifacts (auto_prompts.json, resolved_config.yaml);
# copy them here to freeze them.
patterns: []
verbalizer:
  label_words: {{}}
auto_prompts:
  num_patterns: 2        # pattern models trained (one per chosen template)
  search_words: codes    # search label words only where a label name is a code (always: beside names too)
  words_per_template: 3  # searched label-word sets scored per template
  prior_texts: 128       # unlabeled texts that estimate the label-word prior
  hyperparameters: rule  # pet.train max_steps and learning_rate from |train|, labels and backbone
  trained_rerank: true   # with dev: a template written for the task that zero-shot passed over is trained too, best kept
seeds: [1]
pet:
  train: {{batch_size: 8, mlm_alpha: 0.0}}
  ensemble_weighting: accuracy
  temperature: 2.0
  shard_size: 500
distill:
  model_path: {_model_value(student)}   # the small classifier that is registered and served
  train: {{learning_rate: 0.0001, max_steps: {distill_steps}, batch_size: 16}}
tracking:
  experiment: {_yaml_value(name)}
  registered_model: {_yaml_value(name + '-classifier')}
  alias: champion
work_dir: pet_artifacts
parallelism: 1
"""
    return config, notes


def add_init_parser(sub) -> None:
    p = sub.add_parser("init", help="write a complete config for your data (prompts are then chosen automatically)")
    p.add_argument("train", help="labeled examples: CSV, TSV, JSONL, JSON or Parquet (optionally .gz)")
    p.add_argument("--unlabeled", help="unlabeled texts (the student learns from their soft labels)")
    p.add_argument("--dev", help="labeled dev set (prompt choice and promotion; ensemble weights come from train accuracy)")
    p.add_argument("--test", help="labeled test set (reported; decides promotion without --dev, and the int8 ONNX check)")
    p.add_argument("--text-column", help="the column holding the text")
    p.add_argument("--text-pair-column", help="the second text of a pair task")
    p.add_argument("--label-column", help="the column holding the label")
    p.add_argument("--unlabeled-text-column", help="the --unlabeled file's text column, where it is not named as the "
                   "training file's (default: that name, else found as in the training file)")
    p.add_argument("--name", help="pipeline name (default: from the file name)")
    p.add_argument("--backbone", help="PET backbone: a name from `pet models list` (default smollm2-135m-instruct; "
                   "gemma-3-270m: 268M parameters, slower; better on some tasks, see the README) or a model folder")
    p.add_argument("--student", help="distilled classifier: an encoder from `pet models list` (default "
                   "all-minilm-l6-v2) or a model folder")
    p.add_argument("-o", "--output", help="config file to write (default: NAME.yaml)")
    p.add_argument("--force", action="store_true", help="overwrite an existing config file")


def init_command(args: argparse.Namespace) -> int:
    try:
        out = Path(args.output or f"{args.name or _name(args.train)}.yaml")
        if out.exists() and not args.force:
            raise InitError(f"{out} exists; give --force to overwrite it or -o for another file")
        text, notes = build_config(args)
    except InitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")  # letters as written, whatever the locale
    tmp.replace(out)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"init done: wrote {out}; next: pet run {shlex.quote(str(out))}")  # quoted: pasted as it is
    return 0
