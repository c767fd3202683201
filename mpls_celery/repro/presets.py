"""The paper's settings (docs/algorithm.md, "The paper30 setup") as named presets, and the numbers
the paper reports for them — for comparison in the report only, never used by the simulation."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    label: str
    overrides: dict[str, object]  # RunConfig fields (dotted) on top of the preset's


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    algorithms: tuple[str, ...]
    config: dict[str, object]
    target_acc: float | None
    until: float | None = 600.0  # virtual seconds
    epochs: int | None = None
    metric: str = "time_to_target"  # or "final_mean_acc"
    paper: dict[str, float] = field(default_factory=dict)  # algorithm (or case) → paper's value
    cases: tuple[Case, ...] = (Case("", {}),)


LENET = {"model": "lenet5", "dataset": "mnist", "workers": 30, "network.profile": "paper30"}
NIN = {"model": "nin", "dataset": "cifar10", "workers": 30, "network.profile": "paper30"}
FOUR = ("mpls", "appg", "netmax", "rand-mpls")
FIVE = ("mpls", "mpls-peer", "mpls-layer", "appg", "netmax")

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "lenet-full",
            "LeNet-5 / MNIST, 30 workers, fully connected: time to 90 %",
            FOUR,
            {**LENET, "topology.kind": "full"},
            target_acc=0.9,
            paper={"appg": 147.48, "netmax": 91.6, "mpls": 57.96, "rand-mpls": 121.36},
        ),
        Preset(
            "lenet-random",
            "LeNet-5 / MNIST, 30 workers, random topology (p = 0.5): time to 90 %",
            FOUR,
            {**LENET, "topology.kind": "random", "topology.p": 0.5},
            target_acc=0.9,
        ),
        Preset(
            "lenet-ring",
            "LeNet-5 / MNIST, 30 workers, ring: time to 90 %",
            FOUR,
            {**LENET, "topology.kind": "ring"},
            target_acc=0.9,
        ),
        Preset(
            "nin-cifar10",
            "NIN / CIFAR-10, 30 workers, random topology: accuracy after 1500 epochs",
            FIVE,
            {**NIN, "topology.kind": "random"},
            target_acc=None,
            until=None,
            epochs=1500,
            metric="final_mean_acc",
            paper={
                "appg": 64.42,
                "netmax": 58.64,
                "mpls-peer": 63.87,
                "mpls": 66.01,
                "mpls-layer": 57.22,
            },
        ),
        Preset(
            "resnet-cifar100",
            "ResNet-18 / CIFAR-100, 30 workers, random topology: final accuracy",
            FIVE,
            {**LENET, "model": "resnet18", "dataset": "cifar100", "topology.kind": "random"},
            target_acc=None,
            until=None,
            epochs=1500,
            metric="final_mean_acc",
            paper={
                "appg": 59.12,
                "netmax": 49.71,
                "mpls-peer": 54.27,
                "mpls": 57.43,
                "mpls-layer": 46.91,
            },
        ),
        Preset(
            "nin-noniid",
            "NIN / CIFAR-10, non-IID χ = 30 / 50 / 70 %: MPLS time to 50 %",
            ("mpls",),
            {**NIN, "topology.kind": "random", "partition.kind": "noniid"},
            target_acc=0.5,
            until=3600.0,
            paper={"chi=0.3": 758.4, "chi=0.5": 1025.9, "chi=0.7": 1700.2},
            cases=tuple(Case(f"chi={c}", {"partition.chi": c}) for c in (0.3, 0.5, 0.7)),
        ),
    )
}
