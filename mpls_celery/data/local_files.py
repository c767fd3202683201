"""Where the built-in datasets' files are under a data folder, and fetching them: the one place
anything is downloaded (`mpls data fetch`), never a run — a run on many processes or hosts would
race for the same files, and many hosts reach no dataset mirror."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpls_celery.catalog import DATASET_NAMES
from mpls_celery.data.idx import idx_length
from mpls_celery.errors import ConfigError, MplsError, one_line

FETCHABLE = ("mnist", "cifar10", "cifar100")
MNIST_HELD_OUT = 2000  # tested on, where only the official test split is there
_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# torchvision's python versions, as its CIFAR10/CIFAR100 list them (without torchvision here)
CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py",
                ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                 "test_batch")),
    "cifar100": ("cifar-100-python", ("train", "test")),
}  # fmt: skip
MnistFiles = dict[str, tuple[Path | None, Path | None]]  # split → (images, labels)


@dataclass(frozen=True)
class Found:
    name: str
    present: bool
    holds: str = ""  # what a run trains and tests on, where present
    where: Path | None = None  # the folder its files are in (digits and synthetic have none)
    complete: bool = False  # every official file is there (MNIST's test split alone is not)
    looked_in: tuple[Path, ...] = ()  # where absent


def mnist_dirs(data_dir: Path) -> list[Path]:
    """torchvision's layout first (what `fetch` writes), then the plain ones people unpack to."""
    return [data_dir / "MNIST" / "raw", data_dir / "mnist", data_dir / "mnist-t10k", data_dir]


def mnist_files(data_dir: Path) -> MnistFiles:
    dirs = mnist_dirs(data_dir)
    return {split: (_find(dirs, images), _find(dirs, labels))
            for split, (images, labels) in _MNIST_FILES.items()}  # fmt: skip


def _find(dirs: list[Path], stem: str) -> Path | None:
    for folder in dirs:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _torchvision_dataset(name: str) -> Any:
    try:
        from torchvision import datasets
    except ImportError:
        raise MplsError(
            f"{name}: fetching it needs torchvision (pip install torchvision)"
        ) from None
    classes = {"mnist": datasets.MNIST, "cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}
    return classes[name]


def find_builtin(name: str, data_dir: Path) -> Found:
    """Whether a built-in dataset's files are there (by name; `load_builtin` verifies them)."""
    if name == "digits":
        return Found(name, True, "bundled with scikit-learn: 1,437 train / 360 test", complete=True)
    if name == "synthetic":
        return Found(name, True, "generated from the run's seed", complete=True)
    if name == "mnist":
        files = mnist_files(data_dir)
        test_images, test_labels = files["test"]
        if test_images is None or test_labels is None:
            return Found(name, False, looked_in=tuple(mnist_dirs(data_dir)))
        train_images, train_labels = files["train"]
        tests = idx_length(test_labels)
        if train_images is None or train_labels is None:
            holds = f"the test split only: {tests - MNIST_HELD_OUT:,} / {MNIST_HELD_OUT:,}"
            return Found(name, True, holds, test_images.parent)
        holds = f"{idx_length(train_labels):,} train / {tests:,} test"
        return Found(name, True, holds, test_images.parent, True)
    if name in ("cifar10", "cifar100"):
        base, listed = CIFAR_FILES[name]
        folder = data_dir / base
        if all((folder / file).is_file() for file in listed):
            return Found(name, True, "50,000 train / 10,000 test", folder, True)
        return Found(name, False, looked_in=(folder,))
    raise ConfigError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASET_NAMES)}")


def check_fetchable(names: list[str]) -> None:
    for name in names:
        if name not in FETCHABLE:
            raise ConfigError(f"cannot fetch {name!r}: choose from {', '.join(FETCHABLE)}")


def fetch_builtin(name: str, data_dir: Path) -> Found:
    """Download a dataset's official files into `data_dir` with torchvision (verified by their
    checksums), unless they are there already. They are fetched into a folder of their own and
    moved into place once all are in: a download cut off leaves nothing a run would take."""
    check_fetchable([name])
    found = find_builtin(name, data_dir)
    if found.complete:
        return found
    dataset = _torchvision_dataset(name)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".fetch-{name}-", dir=data_dir))
    except OSError as exc:
        raise ConfigError(f"{data_dir}: {exc.strerror or exc}") from None
    try:
        with contextlib.redirect_stdout(sys.stderr):  # its progress: not in a command's output
            for train in (True, False):
                dataset(str(staging), train=train, download=True)
        folder = Path("MNIST", "raw") if name == "mnist" else Path(CIFAR_FILES[name][0])
        (data_dir / folder).mkdir(parents=True, exist_ok=True)
        for file in (staging / folder).iterdir():
            file.replace(data_dir / folder / file.name)
    except Exception as exc:  # no route to a mirror, a bad checksum, a full disk ...
        # MNIST's error lists each mirror it tried: the last line says why the last one failed
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = f" {lines[-1]}" if len(lines) > 1 else ""
        raise MplsError(f"{name}: download failed: {one_line(exc)}{why}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return find_builtin(name, data_dir)
