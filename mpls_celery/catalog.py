"""The names of what ships built in. No torch here: a run config is validated, and the CLI's
read-only commands start, without importing the algorithms, models and datasets themselves (a
test keeps these names and the registries in `core/strategies`, `core/models` and `data` the same)."""

import re
from collections.abc import Iterable

from mpls_celery.errors import ConfigError

STRATEGY_NAMES: tuple[str, ...] = (
    "mpls", "mpls-peer", "mpls-layer", "rand-mpls", "appg", "netmax", "ad-psgd",
)  # fmt: skip
MODEL_NAMES: tuple[str, ...] = ("lenet5", "nin", "resnet18", "mlp")
DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "cifar10", "cifar100", "synthetic")
IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")  # package.module:attribute: your own
OWN_ALGORITHM = "an import path package.module:factory"


def is_algorithm(name: str) -> bool:
    """A built-in algorithm, or one of the user's own (its factory's import path)."""
    return name in STRATEGY_NAMES or IMPORT_PATH.fullmatch(name) is not None


def checked_algorithms(names: str | Iterable[str]) -> tuple[str, ...]:
    """The algorithms asked for, each once, in order (a string: comma-separated, as on the
    command line); ConfigError names the first unknown one."""
    if isinstance(names, str):
        names = names.split(",")
    chosen = tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
    unknown = [a for a in chosen if not is_algorithm(a)]
    if unknown or not chosen:
        what = f"unknown algorithm {unknown[0]!r}" if unknown else "no algorithm given"
        raise ConfigError(f"{what}; choose from: {', '.join(STRATEGY_NAMES)}, or {OWN_ALGORITHM}")
    return chosen
