"""The torch-free names in `catalog` are the registries' names, in the same order."""

from mpls_celery.catalog import DATASET_NAMES, MODEL_NAMES, STRATEGY_NAMES
from mpls_celery.core.models import BUILTIN_MODELS
from mpls_celery.core.strategies import _FACTORIES
from mpls_celery.data.datasets import SHAPES


def test_catalog_names_the_registries():
    assert tuple(_FACTORIES) == STRATEGY_NAMES
    assert tuple(BUILTIN_MODELS) == MODEL_NAMES
    assert set(SHAPES) | {"synthetic"} == set(DATASET_NAMES)
