"""Dataset loading (file I/O lives here, outside the pure core). Nothing downloads unless asked."""

from mpls_celery.catalog import DATASET_NAMES
from mpls_celery.data.arrays import DatasetSplit, LabelledData, from_arrays
from mpls_celery.data.datasets import load_builtin

__all__ = ["DATASET_NAMES", "DatasetSplit", "LabelledData", "from_arrays", "load_builtin"]
