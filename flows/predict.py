"""``pet predict CONFIG INPUT --output OUT``: label a file with a registered classifier (default: the champion).

The input is read and labeled in chunks (``pet_io.table_stream``) and the output appears only
complete, so memory stays flat on large files and a failed run leaves no partial output. Which model runs, and
loading it on an engine: ``flows.predict_model``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flows.predict_model import PredictError, load_classifier, resolve_model
from prompt_models.engines import ENGINES  # torch-free

# numpy, pandas, torch and MLflow are imported where used: `pet --help` imports this module
if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 4096  # rows read, sorted by length and labeled together


@dataclass(frozen=True)
class TextColumns:
    text_a: str
    text_b: str | None = None
    header: bool = True  # CSV/TSV input has a header line (else its columns are 0, 1, ..., as the config's)
    sep: str | None = None  # the config's CSV separator (read_options.sep): a headerless input is read with it

    @property
    def names(self) -> list[str]:
        return [self.text_a] + ([self.text_b] if self.text_b else [])


def add_predict_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("predict", help="label a file with the registered classifier (default: the champion)")
    p.add_argument("config")
    p.add_argument("input", help="CSV, TSV, JSONL or Parquet file with the text column(s) of data.unlabeled (else data.train)")
    p.add_argument("--output", "-o", required=True, help="where to write; its suffix picks the format (.csv .tsv .jsonl .parquet)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model-uri", help="any MLflow model URI (models:/NAME/3, runs:/ID/classifier, a folder)")
    which.add_argument("--version", help="a version of tracking.registered_model")
    which.add_argument("--alias", help="a registry alias (default: tracking.alias, e.g. champion)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (dotted path)")
    p.add_argument("--batch-size", type=int, help="rows per forward pass (default: pet.train.eval_batch_size)")
    p.add_argument("--engine", default="auto", choices=ENGINES,
                   help="auto (default): the fastest the model offers on this CPU, timed at load on one batch (its "
                        "fp32 ONNX graph; its int8 graph and, on a CPU with bf16 kernels and for an input of 4,096 rows or "
                        "more, its torch model in bf16, where the guard accepted them; torch without an export, and on a "
                        "GPU); onnx: the same among the two graphs")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", action="store_true", help="errors and the final summary only")
    loud.add_argument("-v", "--verbose", action="store_true", help="the libraries' own logs too")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of one line")
    return p


def predict_command(args: argparse.Namespace) -> int:
    # `timeout`, `kill` and service managers send SIGTERM: stopped as Ctrl-C is, so the output's temporary file
    # is removed (the default action ends the process with no cleanup)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _predict(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _predict(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if getattr(args, "verbose", False) else "error")
    from flows.cli import parse_overrides
    from flows.lineage import LineageError
    from pet_io import table_stream
    from pet_config.schema import ConfigError
    from pet_config.loading import load_config
    from pet_io.sources import DataValidationError, blank_lines

    try:
        # not cfg.validate(): predicting needs the store and column names, not the base model or patterns
        cfg = load_config(args.config, parse_overrides(args.set))
        if args.batch_size is not None and args.batch_size < 1:
            raise PredictError("--batch-size must be at least 1")
        out_fmt = table_stream.output_format(args.output)
        if Path(args.output).exists() and Path(args.input).exists() and Path(args.output).samefile(args.input):
            raise PredictError(f"--output {args.output} is the input file: it would be replaced; write elsewhere")
        columns = text_columns(cfg)
        in_fmt, sep, columns = check_input(Path(args.input), columns)
        # empty texts are refused as training refuses them, before a model is loaded (one read of the
        # text columns; labeling the file costs far more)
        rows = table_stream.check_texts(Path(args.input), in_fmt, [columns.text_a] + ([columns.text_b] if columns.text_b else []),
                                        sep=sep, header=columns.header)
        # blank lines are no rows (pandas skips them in a CSV/TSV): the output lacks them, so say which they were
        blanks = blank_lines(Path(args.input), in_fmt, sep, columns.header) if in_fmt != "parquet" else []
        choice = resolve_model(cfg, args.model_uri, args.version, args.alias)
        batch_size = args.batch_size or cfg.pet.train.eval_batch_size
        clf = load_classifier(choice, cfg, args.engine, batch_size, rows)
        if cfg.labels and sorted(map(str, clf.labels)) != sorted(cfg.labels) and not args.model_uri:
            # the config's registered model holds another task's classifier (two configs with one name)
            raise PredictError(f"{choice.uri} classifies labels {list(clf.labels)}, the config {list(cfg.labels)}: "
                               "another task's model, or a typo in the config's labels? give --model-uri to use it anyway")
        cut = clf.texts_cut  # `auto` timed the engines on texts of its own: not counted
        n = predict_file(clf, Path(args.input), in_fmt, columns, Path(args.output), out_fmt,
                         batch_size, progress=sys.stderr.isatty(), sep=sep)
        cut = clf.texts_cut - cut
    except (PredictError, LineageError, ConfigError, DataValidationError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no output written", file=sys.stderr)
        return 130
    summary = {"output": str(args.output), "rows": n, "model": choice.name, "version": choice.version,
               "alias": choice.alias, "model_uri": choice.uri, "labels": clf.labels, "engine": clf.engine,
               "blank_lines_skipped": len(blanks), "blank_lines": blanks[:100], "texts_cut": cut,
               "max_length": clf.max_length}
    alias = f" ({choice.alias!r})" if choice.alias else ""
    skipped = (f"; {len(blanks)} empty line(s) skipped, not in the output (line {', '.join(map(str, blanks[:5]))}"
               + (", ..." if len(blanks) > 5 else "") + ")") if blanks else ""
    # the model reads max_length tokens of a text: the rest of a longer one is cut, which the labels cannot show
    were = "was" if cut == 1 else "were"
    cut_note = (f"; {cut:,} of {n:,} {'text pairs' if columns.text_b else 'texts'} {were} longer than max_length "
                f"{clf.max_length} tokens and {were} cut") if cut else ""
    # the engine is named: `auto` times the engines when the model loads, so a rerun may be served by another
    print(json.dumps(summary, indent=2) if args.json else
          f"predict done: {n:,} row{'' if n == 1 else 's'} labeled by {choice.uri}{alias} on {clf.engine} -> {args.output}"
          f"{skipped}{cut_note}")
    return 0


def text_columns(cfg) -> list[TextColumns]:
    """The text columns an input may have: first the unlabeled pool's the classifier was distilled on, then
    those of the labeled splits (a user labels a file laid out as the training file as often as the pool)."""
    specs = [s for s in (cfg.data.unlabeled, cfg.data.train, cfg.data.dev, cfg.data.test) if s is not None]
    if not specs:
        raise PredictError("the config names no text column: set data.unlabeled (or data.train) text_a")
    found = [TextColumns(s.text_a, s.text_b, s.header, s.read_options.get("sep")) for s in specs]
    return list(dict.fromkeys(found))


def _check_no_clash(path: Path, present: list[str]) -> None:
    from pet_io.sources import DataValidationError

    # the predictions must not silently replace a column of the input (a gold `label`, say)
    clash = [c for c in present if c == "label" or c.startswith("prob_")]
    if clash:
        raise DataValidationError(f"{path}: already has column(s) {clash}; rename them to keep them next to the predictions")


def _header_names(path: Path, fmt: str, sep: str | None) -> list[str]:
    """The values of the first line that name a text or label column (``sentence``, ``label``): a header."""
    from flows.init_columns import LABEL_NAMES, TEXT_NAMES
    from pet_io.sources import first_row

    return [v for v in first_row(path, fmt, sep) if v.strip().lower() in TEXT_NAMES + LABEL_NAMES]


def _check_no_header_line(path: Path, fmt: str, sep: str | None) -> None:
    """A headerless config given a file with a header: its header line would be labeled as a text."""
    from pet_io.sources import DataValidationError

    names = _header_names(path, fmt, sep)
    if names:
        raise DataValidationError(f"{path}: its first line looks like a header ({names}), but the config's data has "
                                  "none (columns 0, 1, ...): remove that line")


def check_input(path: Path, candidates: list[TextColumns]) -> tuple[str, str | None, TextColumns]:
    """The input's format, CSV separator (';' from Excel in many locales) and text columns, once those are
    known to be there (read from its header only): the first of the config's splits' columns it has. A
    headerless config trained on LM-BFF's `label,sentence` reads its text from column 1: a headerless file
    of texts alone (one column) is that text."""
    from pet_io import table_stream
    from pet_io.sources import DataValidationError, csv_separator

    columns = candidates[0]
    fmt = table_stream.input_format(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataValidationError(f"{path}: the file is empty: no columns and no rows to label")
    sep = csv_separator(path, columns.sep, columns.header) if fmt == "csv" else None
    present = table_stream.read_columns(path, fmt, sep, columns.header)
    if not present:  # JSON Lines of blank lines only: no record, so no key
        raise DataValidationError(f"{path}: no records: no columns and no rows to label")
    if columns.header:  # named columns; a headerless config's are positions, which any file has
        named = [c for c in candidates if c.header]
        columns = next((c for c in named if set(c.names) <= set(present)),
                       max(named, key=lambda c: sum(n in present for n in c.names)))  # the error names the closest
        headerless = [c for c in candidates if not c.header]
        if not set(columns.names) <= set(present) and headerless and fmt in ("csv", "tsv"):
            # no named column fits, and the config also has headerless files (LM-BFF's `label,sentence` train
            # beside a named unlabeled pool): a file without a header line is laid out as those are
            nh_sep = csv_separator(path, headerless[0].sep, False) if fmt == "csv" else None
            if not _header_names(path, fmt, nh_sep):
                columns, sep = headerless[0], nh_sep
                present = table_stream.read_columns(path, fmt, sep, False)
    if not columns.header and fmt in ("csv", "tsv"):
        _check_no_header_line(path, fmt, sep)
    if not columns.header and not columns.text_b and present == ["0"] and columns.text_a != "0":
        columns = TextColumns("0", None, False, columns.sep)  # texts to label have no label column before them
    from .init_columns import TEXT_NAMES

    if columns.header and not columns.text_b and len(present) == 1 and present[0].strip().lower() in TEXT_NAMES:
        columns = TextColumns(present[0], None, True, columns.sep)  # one column named as texts are ("sentence")
    missing = [c for c in columns.names if c not in present]
    if missing:
        keys = {columns.text_a: "text_a", columns.text_b: "text_b"}
        how = " ".join(f"--set data.unlabeled.{keys[c]}=COLUMN" for c in missing)
        other = dict.fromkeys(tuple(c.names) for c in candidates if c.header and columns.header and c.names != columns.names)
        also = f" (or the config's other files' {' or '.join(str(list(o)) for o in other)})" if other else ""
        raise DataValidationError(f"{path}: missing text column(s) {missing}{also}; the file has {present}: rename "
                                  f"them, or name yours with {how}")
    _check_no_clash(path, present)
    return fmt, sep, columns


def _texts(chunk: pd.DataFrame, column: str) -> list[str]:
    # texts were checked non-empty up front (table_stream.check_texts); None only from a file
    # changed since
    values = chunk[column] if column in chunk.columns else [None] * len(chunk)  # JSONL records without the key
    return ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values]


def predict_file(clf, path: Path, in_fmt: str, columns: TextColumns, out: Path, out_fmt: str,
                 batch_size: int, progress: bool = False, chunk_rows: int | None = None, sep: str | None = None) -> int:
    """Label every row of ``path`` into ``out``; returns the number of rows. ``out`` appears only when complete."""
    import pandas as pd
    from tqdm.auto import tqdm

    from pet_io import table_stream
    from tasks.served_model import label_frame

    prob_cols = [f"prob_{lab}" for lab in clf.labels]
    # labels that are integers (JSONL's 0/1, Parquet's int column) come back as integers, not as the strings
    # a config holds them as; "007" or "1.0" would not survive the round trip, so they stay strings
    as_ints = all(re.fullmatch(r"-?[1-9]\d*|0", lab) for lab in clf.labels)
    total, unit = table_stream.size_of(path, in_fmt)
    n = 0
    with tqdm(total=total, unit=unit, unit_scale=True, desc="predict", disable=not progress, file=sys.stderr) as bar, \
            table_stream.atomic_writer(out, out_fmt) as writer:
        for chunk in table_stream.iter_chunks(path, in_fmt, chunk_rows or CHUNK_ROWS, bar.update, sep, columns.header):
            if chunk.empty:
                continue
            _check_no_clash(path, [str(c) for c in chunk.columns])  # later JSONL records may bring new keys
            texts_b = _texts(chunk, columns.text_b) if columns.text_b else None
            labels = label_frame(clf, _texts(chunk, columns.text_a), texts_b, batch_size)  # as the served model
            if as_ints:
                labels["label"] = labels["label"].astype("int64")
            writer.write(pd.concat([chunk.reset_index(drop=True), labels], axis=1))
            n += len(chunk)
        if not writer.written:  # no rows: still a readable file with the columns
            empty = pd.DataFrame(columns=[*table_stream.read_columns(path, in_fmt, sep, columns.header), "label", *prob_cols])
            writer.write(empty.astype(dict.fromkeys(prob_cols, "float64")))
    return n
