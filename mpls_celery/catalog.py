"""The names of what ships built in. No torch here: a run config is validated, and the CLI's
read-only commands start, without importing the algorithms, models and datasets themselves (a
test keeps these names and the registries in `core/strategies`, `core/models` and `data` the same)."""

STRATEGY_NAMES: tuple[str, ...] = (
    "mpls", "mpls-peer", "mpls-layer", "rand-mpls", "appg", "netmax", "ad-psgd",
)  # fmt: skip
MODEL_NAMES: tuple[str, ...] = ("lenet5", "nin", "resnet18", "mlp")
DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "cifar10", "cifar100", "synthetic")
