"""Data room: readers, phantoms, preprocessing, the way back to the original grid. No TensorFlow here.

May import: core, simulators.
"""

from iunet_bench.data.case import Case, Geometry, Volume
from iunet_bench.data.dataset import (
    Dataset,
    Failure,
    build_dataset,
    to_original,
    to_original_image,
    write_mask,
)
from iunet_bench.data.io import CaseError
from iunet_bench.data.preprocess import PreprocessConfig, preprocess, to_case_grid

__all__ = [
    "Case",
    "CaseError",
    "Dataset",
    "Failure",
    "Geometry",
    "PreprocessConfig",
    "Volume",
    "build_dataset",
    "preprocess",
    "to_case_grid",
    "to_original",
    "to_original_image",
    "write_mask",
]
