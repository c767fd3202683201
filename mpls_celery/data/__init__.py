"""Dataset loading (file I/O lives here, outside the pure core). Nothing downloads unless asked."""

from mpls_celery.data.datasets import DATASET_NAMES, DatasetSplit, LabelledImages, load_dataset

__all__ = ["DATASET_NAMES", "DatasetSplit", "LabelledImages", "load_dataset"]
