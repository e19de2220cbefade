"""Data room: readers, phantoms, preprocessing, the way back to the original grid. No TensorFlow here.

The names below are re-exported lazily (PEP 562), so that `iunet_bench.data.case` or `.phantom` can be
imported without SimpleITK (the carried GPU benchmark, `benchmarks/gpu.py`, needs no image reader).

May import: core, simulators.
"""

import importlib

_EXPORTS = {
    "Case": "case",
    "Geometry": "case",
    "Volume": "case",
    "Dataset": "dataset",
    "Failure": "dataset",
    "build_dataset": "dataset",
    "to_original": "dataset",
    "to_original_image": "dataset",
    "write_mask": "dataset",
    "CaseError": "io",
    "PreprocessConfig": "preprocess",
    "preprocess": "preprocess",
    "to_case_grid": "preprocess",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'iunet_bench.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"iunet_bench.data.{_EXPORTS[name]}"), name)
