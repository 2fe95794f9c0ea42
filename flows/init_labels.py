"""The label column of `pet init`'s files: the label set (sorted as numbers where all are integers) and its slips
(labels that differ only in case or are one number written two ways, a regression score, an id column), a dev or
test file's labels against train's, and notes on repeated rows and texts with two labels."""
from __future__ import annotations

import re

import pandas as pd

from .init_columns import InitError


def sorted_labels(values: list[str]) -> list[str]:
    # a blank label is a row to fix (reported by _check_rows), not a class
    uniq = sorted(set(values) - {""})
    return sorted(uniq, key=int) if all(re.fullmatch(r"-?\d+", v) for v in uniq) else uniq


def number(label: str) -> float | None:
    try:
        return float(label)
    except ValueError:
        return None


def case_twins(labels: list[str]) -> list[list[str]]:
    """Labels that differ only in case ("Positive", "positive") or are one number written two ways ("1", "1.0",
    as a spreadsheet or pandas writes a column with a gap): a slip in the file, which would otherwise
    become two classes that compete for the same examples."""
    seen: dict[object, list[str]] = {}
    for lab in labels:
        num = number(lab)
        seen.setdefault(lab.casefold() if num is None else num, []).append(lab)
    return [group for group in seen.values() if len(group) > 1]


def label_set(path: str, df: pd.DataFrame, label: str, named: bool) -> list[str]:
    """The training file's labels, or an ``InitError`` naming the slip; ``named``: the user gave the column."""
    labels = sorted_labels(df[label].str.strip().tolist())
    if not labels:
        raise InitError(f"{path}: column {label!r} is empty; fill in the labels or give --label-column")
    if len(labels) < 2:
        raise InitError(f"{path}: column {label!r} has one label ({labels[0]!r}); a classifier needs two or more")
    # a guessed column that is nearly all distinct is likely an id or a score; one the user named is taken as is
    if len(labels) > max(50, len(df) // 2) and not named:
        raise InitError(f"{path}: column {label!r} has {len(labels)} distinct values in {len(df)} rows; "
                        f"if it is the label, give --label-column {label}, else the label's column")
    numbers = [number(lab) for lab in labels]
    if None not in numbers and any(n != int(n) for n in numbers) and len(labels) > 5:  # STS-B's 0.000 to 5.000
        raise InitError(f"{path}: column {label!r} holds {len(labels)} distinct numbers with fractions, a score "
                        "to predict (regression); pet classifies into labels: bin the scores into classes first")
    twins = case_twins(labels)
    if twins:
        said = "; ".join(f"{group} {'are one number' if number(group[0]) is not None else 'differ only in case'}"
                         for group in twins)
        raise InitError(f"{path}: labels {said}; write each class one way in the file")
    return labels


def check_known_labels(path: str, values: pd.Series, labels: list[str], train: str) -> None:
    """A dev or test file's labels are all the training file's (a near miss is named: "1.0" for "1", "positive"
    for "Positive")."""
    unknown = sorted(set(values.str.strip()) - set(labels))
    if unknown:
        by_number = {number(lab): lab for lab in labels if number(lab) is not None}
        by_case = {lab.casefold(): lab for lab in labels}
        twins = [by_number[number(u)] for u in unknown if number(u) in by_number]
        cased = [by_case[u.casefold()] for u in unknown if u.casefold() in by_case]
        hint = f" (it writes {twins[:5]}: write each number one way)" if twins else (
            f" (it writes {cased[:5]}: write each label as the training file does)" if cased else "")
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InitError(f"{path}: labels {unknown[:5]}{more} do not occur in the training file {train}{hint}")


def repeats(path: str, df: pd.DataFrame, texts: list[str], label: str) -> list[str]:
    """Notes on a training file's repeated rows (each copy weighs as one more example) and texts given two labels
    (a slip, or a task the texts alone cannot decide): both are kept, since either may be meant."""
    rows = df[texts + [label]].apply(lambda col: col.str.strip())
    notes = []
    copies = int(rows.duplicated().sum())
    if copies:
        notes.append(f"{path}: {copies} row(s) repeat an earlier row: each copy is trained on as one more example")
    by_text = rows.drop_duplicates().groupby(texts)[label].agg(list)
    torn = by_text[by_text.map(len) > 1]
    if len(torn):
        first = torn.index[0] if len(texts) == 1 else " / ".join(torn.index[0])
        notes.append(f"{path}: {len(torn)} text(s) carry two or more labels (e.g. {first[:60]!r}: {sorted(torn.iloc[0])}): "
                     "check the labels, or the model learns both answers for one text")
    return notes
