"""A data set as the session sees it: case ids, a seeded fold split, and preprocessed volumes.

`build_dataset(cfg)` validates the `data` config and lists the cases (cheap); volumes are made on demand.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iunet_bench.data.case import Case, Volume
from iunet_bench.data.phantom import PhantomConfig, make_phantoms
from iunet_bench.data.preprocess import PreprocessConfig, preprocess

SOURCES = ("phantom",)


@dataclass
class Failure:
    case_id: str
    error: str


@dataclass
class Dataset:
    cfg: Mapping[str, Any]
    case_ids: list[str]
    _cases: dict[str, Case] = field(default_factory=dict, repr=False)

    @property
    def preprocess_config(self) -> PreprocessConfig:
        p = self.cfg["preprocess"]
        return PreprocessConfig(
            sigma=float(p["sigma"]),
            window=tuple(p["window"]),
            margin=float(p["margin"]),
            grid=tuple(int(g) for g in p["grid"]),
        )

    def split(self) -> tuple[list[str], list[str]]:
        """(training ids, held-out ids): a seeded k-fold split; the held-out fold is `data.split.fold`."""
        folds, fold = int(self.cfg["split"]["folds"]), int(self.cfg["split"]["fold"])
        order = np.random.default_rng(int(self.cfg["seed"])).permutation(len(self.case_ids))
        held = {self.case_ids[i] for i in order[fold::folds]}
        return [c for c in self.case_ids if c not in held], [c for c in self.case_ids if c in held]

    def volumes(self, ids: list[str]) -> tuple[list[Volume], list[Failure]]:
        """Preprocessed volumes for `ids`; a case that fails is reported, never raised, so the rest still load."""
        out, failures = [], []
        for cid in ids:
            try:
                out.append(preprocess(self._cases[cid], self.preprocess_config))
            except Exception as exc:  # noqa: BLE001 - one bad case must not stop the others
                failures.append(Failure(cid, f"{type(exc).__name__}: {exc}"))
        return out, failures

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for cid in self.case_ids:
            c = self._cases[cid]
            h.update(cid.encode())
            h.update(np.ascontiguousarray(c.image).tobytes())
            h.update(np.ascontiguousarray(c.label).tobytes())
        return h.hexdigest()[:16]


def build_dataset(cfg: Mapping[str, Any]) -> Dataset:
    source = cfg.get("source")
    if source not in SOURCES:
        raise ValueError(f"data.source: {source!r} is not one of {list(SOURCES)}")
    p = cfg["phantom"]
    pc = PhantomConfig(
        n_cases=int(p["n_cases"]),
        shape=tuple(p["shape"]),
        spacing=tuple(p["spacing"]),
        organ_hu=float(p["organ_hu"]),
        bowel_hu=float(p["bowel_hu"]),
        fat_hu=float(p["fat_hu"]),
        fat_thickness=float(p["fat_thickness"]),
        noise_hu=float(p["noise_hu"]),
    )
    cases = make_phantoms(pc, int(cfg["seed"]))
    return Dataset(cfg, [c.case_id for c in cases], {c.case_id: c for c in cases})
