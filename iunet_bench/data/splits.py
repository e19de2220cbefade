"""Splits a researcher names (`data.split.file`, `data.split.test`/`.train`): which cases train the baseline
and which are held out, checked against the data set's case ids. The seeded k-fold split is
`Dataset.split`'s own."""

from __future__ import annotations

import json
from pathlib import Path

from iunet_bench.core.schema import ConfigError
from iunet_bench.data.config import SplitConfig


def named_split(split: SplitConfig, case_ids: list[str]) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids) of a split the user named: entry `split.fold` of a splits file in
    nnU-Net's style (a JSON list of {"train": [...], "val": [...]}), or the case lists `split.test` and
    `split.train` (default: every case not held out). Raises ConfigError naming the file or key for an
    unreadable file, a missing entry, or case ids the data set does not have."""
    if split.file is not None:
        where = f"data.split.file: {split.file}"
        try:
            folds = json.loads(Path(split.file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError([f"{where}: cannot be read as JSON ({exc})"]) from None
        ok = isinstance(folds, list) and all(
            isinstance(f, dict)
            and {"train", "val"} <= f.keys()
            and all(isinstance(c, str) for c in f["train"] + f["val"])
            for f in folds
        )
        if not ok:
            raise ConfigError(
                [f'{where}: expected a list of {{"train": [case ids], "val": [case ids]}} (nnU-Net)']
            )
        if split.fold >= len(folds):
            raise ConfigError(
                [f"data.split.fold: {split.fold} is not an entry of {split.file} ({len(folds)} folds)"]
            )
        train, test, key = list(folds[split.fold]["train"]), list(folds[split.fold]["val"]), where
    else:
        test = list(split.test or ())
        train = list(split.train) if split.train is not None else [c for c in case_ids if c not in set(test)]
        key = "data.split.test/train"
    known = set(case_ids)
    unknown = [c for c in dict.fromkeys(train + test) if c not in known]
    if unknown:
        shown = ", ".join(unknown[:8]) + (" ..." if len(unknown) > 8 else "")
        raise ConfigError(
            [f"{key}: case ids not in the data set: {shown} (it has: {', '.join(case_ids[:5])} ...)"]
        )
    both = sorted(set(train) & set(test))
    if both:
        raise ConfigError([f"{key}: cases both trained on and held out: {', '.join(both)}"])
    if not test:
        raise ConfigError([f"{key}: holds out no case"])
    order = {c: i for i, c in enumerate(case_ids)}
    return sorted(train, key=order.__getitem__), sorted(test, key=order.__getitem__)
