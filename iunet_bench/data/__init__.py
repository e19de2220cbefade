"""Data room: readers, phantoms, preprocessing, the way back to the original grid. No TensorFlow here."""

from iunet_bench.data.case import Case, Volume
from iunet_bench.data.dataset import Dataset, Failure, build_dataset
from iunet_bench.data.preprocess import PreprocessConfig, preprocess

__all__ = ["Case", "Dataset", "Failure", "PreprocessConfig", "Volume", "build_dataset", "preprocess"]
