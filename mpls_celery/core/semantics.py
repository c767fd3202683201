"""The iteration-semantics options (docs/algorithm.md, "Iteration semantics") as plain enums:
no torch here, so validating a run config (and every CLI command that reads one) stays light."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mixing(StrEnum):
    # Eq. 1 over the model the iteration started from, then this iteration's local update
    # (D-PSGD / AD-PSGD order): the local step is never diluted by the number of copies.
    AVERAGE_THEN_STEP = "average-then-step"
    # Step 9 as first written: Eq. 1 over the model after local training
    TRAIN_THEN_AVERAGE = "train-then-average"


class PullSees(StrEnum):
    PUBLISHED = "published"  # a peer's last published (aggregated) model
    TRAINED = "trained"  # its trained model once its local step is done (a parameter store)


class ProgressWindow(StrEnum):
    SINCE_LAST_PULL = "since-last-pull"  # Eq. 5 between the puller's two aggregations (paper)
    VERSION = "version"  # only the peer's last version


class LinkModel(StrEnum):
    INDEPENDENT = "independent"  # Eq. 7-8: each peer's link runs at its own rate
    SHARED = "shared"  # concurrent pulls share the puller's inbound rate (one access point)


@dataclass(frozen=True)
class Semantics:
    """The run options of docs/algorithm.md, "Iteration semantics". The defaults are the
    combination under which the per-epoch curves behave as the paper reports (all algorithms
    similar per epoch on LeNet-5, APPG at least as good as NetMax): docs/results.md, "The
    iteration semantics, and why the defaults"."""

    mixing: Mixing = Mixing.AVERAGE_THEN_STEP
    pull_sees: PullSees = PullSees.TRAINED
    progress_window: ProgressWindow = ProgressWindow.SINCE_LAST_PULL
    links: LinkModel = LinkModel.INDEPENDENT
