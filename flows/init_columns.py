"""Which file columns hold the text(s) and the label, for ``pet init``: by name (``text``, ``label``, ...)
or by content (the text column has the longest values, the label column few distinct short ones), and
whether a CSV/TSV's first row is a header (LM-BFF's files have none). Ambiguity is an ``InitError``
naming the flag to give.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import pandas as pd

from pet_io.labeled import read_table
from pet_io.sources import LINE, DataSpec, DataValidationError, check_not_empty, csv_separator, detect_format

# "passage"/"context" come before "question": reading comprehension (BoolQ) is the passage, then the question
TEXT_NAMES = ("text", "sentence", "text_a", "review", "content", "document", "passage", "context", "question",
              "sentence1", "premise", "body", "title", "utterance", "tweet", "comment")
PAIR_NAMES = {"sentence1": "sentence2", "premise": "hypothesis", "text_a": "text_b", "question": "sentence",
              "question1": "question2", "passage": "question", "context": "question"}
# answer options of a multiple-choice task (COPA's choice1/choice2, SWAG's ending0..3, option_a, ...)
CHOICE_COLUMN = re.compile(r"(choice|option|ending|answer|alternative|candidate)[ _-]?([0-9]|[a-e])", re.IGNORECASE)
ID_COLUMN = re.compile(r"(.*[_ -])?(id|idx|guid|uid|key|index)", re.IGNORECASE)
# words that make a column name a text's where no name above is the whole of it ("Review Text", "tweet_body")
TEXT_WORDS = {"text", "sentence", "review", "content", "document", "passage", "question", "comment", "body", "tweet",
              "utterance", "message", "description"}
LABEL_NAMES = ("label", "labels", "class", "category", "target", "y", "sentiment", "intent", "topic", "gold_label")


class InitError(ValueError):
    """Bad or ambiguous input: one line for the user, exit 2."""


def _read(path: str, header: bool = True, sep: str | None = None) -> pd.DataFrame:
    df = read_table(DataSpec(path=path, label=None, header=header, read_options={"sep": sep} if sep else {}))
    return df.drop(columns=[c for c in (LINE, "_key") if c in df.columns])


def _looks_like_data(df: pd.DataFrame, known: Sequence[str] = ()) -> bool:
    """A header row that is really a first example: a 'name' of several words, only numbers and long
    strings, or a 'name' that is also a value of its column further down (a label: "0", "book_flight"),
    unless a name is one we look for (a header "text,label" is a header) or ``known`` (the training file's)."""
    names = [str(n) for n in df.columns]
    if any(n.strip().lower() in TEXT_NAMES + LABEL_NAMES + tuple(k.strip().lower() for k in known) for n in names):
        return False
    values = {c: set(df[c].astype(str).str.strip()) for c in df.columns}
    repeated = any(n.strip() in values[c] for c, n in zip(df.columns, names))
    # a column of a few repeated values (labels) whose "name" is none of them, beside a wordy "name": a survey
    # export's header ("What did you think of the product?,Verdict") or a first example whose label is in no
    # other row; content cannot tell, and either guess loses a row or invents a class without a word
    lone = [c for c, n in zip(df.columns, names) if len(df) >= 4 and len(values[c]) <= len(df) // 2]
    if not repeated and lone and any(len(n.split()) > 3 for n in names):
        raise InitError(f"cannot tell whether the first line {names} is a header or a first example (column "
                        f"{lone[0]!r}'s other values never repeat it): name the columns text and label, or put a "
                        "line 'text,label' above a first example")
    # a lone column's "name" that ends a sentence ("Great fun!") or holds a clause ("sure, fine") is a text:
    # a file of texts without a header ("review.text" or "customer's review" can be names)
    sentence = len(names) == 1 and re.search(r"[.!?]$|, ", names[0].strip()) is not None
    return repeated or sentence or any(len(n.split()) > 3 for n in names) or (
        any(re.fullmatch(r"-?\d+(\.\d+)?", n) for n in names) and any(len(n) > 25 for n in names))


def unnamed_text_column(path: str, df: pd.DataFrame, header: bool) -> str | None:
    """The name of a lone CSV/TSV column read as a header that is not a name we look for: it may be a
    first text ("Loved it"), which content cannot tell; the user is told, since that text would be lost."""
    name = str(df.columns[0])
    lone = header and len(df.columns) == 1 and name.strip().lower() not in TEXT_NAMES
    return name if lone and detect_format(path) in ("csv", "tsv") else None


def read_frame(path: str, known: Sequence[str] = ()) -> tuple[pd.DataFrame, bool, str | None]:
    """The file as a table of strings, whether its CSV/TSV first line is a header, and the separator to write
    into its ``read_options`` (None: the format's own)."""
    if not Path(path).exists():
        raise InitError(f"data file not found: {path}")
    try:
        fmt = detect_format(path)
    except DataValidationError:  # the config's `format` key, which the message names, is not an option of init
        raise InitError(f"{path}: cannot tell the file format from its name; save or rename it as .csv, .tsv, .jsonl, "
                        ".json or .parquet (optionally .gz), with one row per example") from None
    try:
        check_not_empty(path)
        sep = csv_separator(path) if fmt == "csv" else None
        df = _read(path, sep=sep)
        header = True
        try:
            data_first = fmt in ("csv", "tsv") and _looks_like_data(df, known)
        except InitError as exc:
            raise InitError(f"{path}: {exc}") from None
        if data_first:
            df, header = _read(path, header=False, sep=sep), False
    except DataValidationError as exc:
        raise InitError(str(exc)) from None
    if df.empty:
        raise InitError(f"{path}: no rows")
    df = _without_nested(df, path)
    # a missing value (JSON null or no key, a Parquet NaN) is an empty string: pandas 3's astype(str) keeps it
    # a float NaN, which broke the label set with a TypeError; the row is then reported as `pet run` reports it
    out = df.astype(object).where(df.notna(), "").astype(str)
    out.attrs["nested"] = df.attrs.get("nested", [])
    return out, header, sep


def _without_nested(df: pd.DataFrame, path: str) -> pd.DataFrame:
    """The table less its JSON objects and lists (metadata, or a nested layout such as ReCoRD's or MultiRC's
    passage): their text form is no text to classify. Where one of them has a name we look for, the file's
    layout is nested and the user must flatten it: taking other columns would classify the wrong thing."""
    nested = [c for c in df.columns if df[c].map(lambda v: isinstance(v, (dict, list))).any()]
    named = [c for c in nested if str(c).strip().lower() in TEXT_NAMES + LABEL_NAMES or _text_word_in(str(c))]
    if named:
        raise InitError(f"{path}: column(s) {named} hold JSON objects or lists, not texts or labels; flatten the file "
                        "to one text (or a text pair) and one label per row")
    out = df.drop(columns=nested)
    out.attrs["nested"] = [str(c) for c in nested]  # named in a "no column" error: the user sees why it is missing
    return out


def _text_word_in(name: str) -> bool:
    return bool(set(re.split(r"[\W_]+", name.strip().lower())) & TEXT_WORDS) and not ID_COLUMN.fullmatch(name.strip())


def _of_words(col: pd.Series) -> bool:
    """Most values hold a letter: words, not numbers or dates."""
    return bool(col.str.contains(r"[^\W\d_]", regex=True).mean() > 0.5)


def numbered_twins(columns: Sequence[str]) -> tuple[str, str] | None:
    """Two columns of texts named alike but for a 1 and a 2 ("#1 String", "text2"): a pair, the 1 first."""
    if len(columns) != 2:
        return None
    for first, second in (columns, columns[::-1]):
        if "1" in first and first.replace("1", "2", 1) == second:
            return first, second
    return None


def _mean_words(col: pd.Series) -> float:
    return float(col.str.split().str.len().mean())


def unused_text_columns(df: pd.DataFrame, used: set[str]) -> list[str]:
    """Columns of words the run will not read (WiC's target ``word``, a ``title`` beside the ``text``): the
    model sees one text or a pair, so the user is told what it does not see. Numbers and ids are left out."""
    return [str(c) for c in df.columns if c not in used and not ID_COLUMN.fullmatch(str(c).strip())
            and not df[c].str.fullmatch(r"\s*(-?\d+(\.\d*)?|True|False|nan|None)?\s*").all()]


def refuse_multiple_choice(df: pd.DataFrame, path: str) -> None:
    """A file with answer options is a multiple-choice task (the label says which option is right): classifying
    one of its texts into the option numbers would train and report nonsense, so it stops here."""
    choices = [str(c) for c in df.columns if CHOICE_COLUMN.fullmatch(str(c).strip())]
    if len(choices) >= 2:
        raise InitError(f"{path}: columns {choices} look like the answer options of a multiple-choice task; pet "
                        "classifies a text (or a text pair) into a fixed set of labels, not into which option is right")


def find_columns(df: pd.DataFrame, path: str, text: str | None, pair: str | None, label: str | None,
                 need_label: bool = True, pairs: bool = True, text_flag: str = "--text-column",
                 fix: str = "give --text-column (and --text-pair-column for pairs)") -> tuple[str, str | None, str | None]:
    """The text, pair and label columns; ``pairs`` False: a single-text task (the training file's), whose
    other files are not paired by their column names. ``text_flag`` gave ``text``; ``fix``: what the user
    does where the text column cannot be told (for this file's flag)."""
    cols = list(df.columns)
    if need_label:
        refuse_multiple_choice(df, path)
    nested = df.attrs.get("nested", [])
    set_aside = f" ({nested} hold JSON objects or lists and are set aside: flatten the file)" if nested else ""
    for flag, name in ((text_flag, text), ("--text-pair-column", pair), ("--label-column", label)):
        if name is not None and name not in cols:
            raise InitError(f"{path}: no column {name!r} (given by {flag}); the file has {cols}{set_aside}")
    lower = {c.strip().lower(): c for c in cols}  # a hand-typed header "text, label" names " label"
    if label is None and need_label:
        named = [lower[n] for n in LABEL_NAMES if n in lower]
        if named:
            label = named[0]
        else:  # few distinct short values
            few = [c for c in cols if c != text and df[c].str.strip().nunique() <= max(2, min(50, len(df) // 2))
                   and _mean_words(df[c]) <= 3]
            if not few:  # texts without labels (an unlabeled pool given as the training file)
                raise InitError(f"{path}: no label column among {cols} (none has a few short values repeated); "
                                "the training file needs a label on every row: add it, or give --label-column")
            if len(few) > 1:  # each candidate with a few of its values, so the user can tell (a headerless file's
                # columns are numbers: CoLA's source code, label, original label and sentence)
                seen = "; ".join(f"{c!r}: {', '.join(map(repr, sorted(df[c].str.strip().unique())[:4]))}" for c in few)
                numbered = " (a file without a header line: columns are numbered from 0)" if all(c.isdigit() for c in cols) else ""
                raise InitError(f"{path}: cannot tell the label column among {few} ({seen}){numbered}; give --label-column")
            label = few[0]
    rest = [c for c in cols if c not in (label, pair)]
    if text is None:
        named = [lower[n] for n in TEXT_NAMES if n in lower and lower[n] in rest]
        partner = PAIR_NAMES.get(named[0].strip().lower()) if named else None
        if len([c for c in named if c.strip().lower() != partner]) > 1:
            raise InitError(f"{path}: several text-like columns {named}; {fix}")
        if named:
            text = named[0]
        else:  # by content: the one column of several words; a name with a text word in it ("Review Text") breaks
            # a tie, or finds short texts where no column is wordy, among columns of words (not "Review Date"'s dates)
            wordy = sorted((c for c in rest if _mean_words(df[c]) >= 2), key=lambda c: -_mean_words(df[c]))
            if pairs and pair is None and (twins := numbered_twins(wordy)):  # MRPC's "#1 String" / "#2 String"
                return twins[0], twins[1], label
            worded = [c for c in (wordy or [c for c in rest if _of_words(df[c])]) if _text_word_in(c)]
            found = wordy if len(wordy) == 1 else worded if len(worded) == 1 else wordy or worded
            if len(found) != 1:
                what = f"no column of texts among {cols}{set_aside}" if not found else f"several text-like columns {found}"
                raise InitError(f"{path}: {what}; {fix}")
            text = found[0]
    if pairs and pair is None and text.strip().lower() in PAIR_NAMES and PAIR_NAMES[text.strip().lower()] in lower:
        pair = lower[PAIR_NAMES[text.strip().lower()]]
    return text, pair, label
