"""A user's own data from files: an .npz with x_train, y_train, x_test, y_test (features of any
shape: tabular rows, token ids, images), or torchvision's image-folder layout (one folder per
class, under train/ and test/, or one pool split here with a seed). Both pass through
`arrays.from_arrays`, which checks what a run relies on."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from mpls_celery.data.arrays import DatasetSplit, from_arrays, split_arrays
from mpls_celery.errors import ConfigError

NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm")


def load_npz(path: Path) -> DatasetSplit:
    name = f"npz {path}"
    if not path.is_file():
        raise ConfigError(
            f"{name}: {'a folder, not' if path.is_dir() else 'no such file, nor'} an .npz"
        )
    if not zipfile.is_zipfile(path):  # np.load would take a lone .npy, or try it as a pickle
        raise ConfigError(f"{name}: not an .npz (the zip of arrays numpy.savez writes)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_ARRAYS if key not in archive.files]
            if missing:
                raise ConfigError(
                    f"{name}: no {', '.join(missing)} (an .npz for a run holds "
                    f"{', '.join(NPZ_ARRAYS)})"
                )
            arrays = [archive[key] for key in NPZ_ARRAYS]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # unreadable, or pickled objects
        raise ConfigError(f"{name}: cannot read it as .npz ({exc})") from None
    return from_arrays(name, *arrays)


def load_image_folder(
    root: Path, test_fraction: float, image_size: int | None, seed: int
) -> DatasetSplit:
    """`root/train/<class>/*` and `root/test/<class>/*`, or `root/<class>/*` split here (class
    names sorted: label i is the i-th). Images are resized to one square size (the first image's
    larger side unless given), kept gray when every image is, and standardised per channel with
    the training split's mean and standard deviation."""
    name = f"imagefolder {root}"
    if not root.is_dir():
        raise ConfigError(f"{name}: no such folder")
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _classes(name, root / "train")
        train_files, train_labels = _files(name, root / "train", classes)
        test_files, test_labels = _files(name, root / "test", classes, allow_empty=True)
        files, labels = train_files + test_files, train_labels + test_labels
        x = _images(name, files, image_size)
        n = len(train_files)
        x_train, x_test = _standardise(x[:n], x[n:])
        return from_arrays(name, x_train, labels[:n], x_test, labels[n:], len(classes))
    classes = _classes(name, root)
    files, labels = _files(name, root, classes)
    x = _images(name, files, image_size)
    split = split_arrays(name, x, labels, test_fraction, seed=seed, classes=len(classes))
    x_train, x_test = _standardise(split.train.x.numpy(), split.test.x.numpy())
    return from_arrays(name, x_train, split.train.y, x_test, split.test.y, len(classes))


def _classes(name: str, folder: Path) -> list[str]:
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ConfigError(f"{name}: {folder} needs one folder per class (found {len(classes)})")
    return classes


def _files(
    name: str, folder: Path, classes: list[str], allow_empty: bool = False
) -> tuple[list[Path], list[int]]:
    files: list[Path] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        found = sorted(
            p for p in (folder / cls).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES
        ) if (folder / cls).is_dir() else []  # fmt: skip
        if not found and not allow_empty:
            raise ConfigError(f"{name}: class {cls!r} has no images in {folder / cls}")
        files += found
        labels += [label] * len(found)
    return files, labels


def _images(name: str, files: list[Path], size: int | None) -> NDArray[np.float32]:
    from PIL import Image, UnidentifiedImageError

    def header(path: Path) -> tuple[str, tuple[int, int]]:
        with Image.open(path) as img:  # one file open at a time: folders outnumber `ulimit -n`
            return img.mode, img.size

    def pixels(path: Path, mode: str, side: int) -> NDArray[np.float32]:
        with Image.open(path) as img:
            return np.asarray(img.convert(mode).resize((side, side)), dtype=np.float32) / 255.0

    try:
        headers = [header(f) for f in files]
        gray = all(m in ("L", "1", "I;16") for m, _ in headers)
        side = size or max(headers[0][1])
        mode = "L" if gray else "RGB"
        arrays = [pixels(f, mode, side) for f in files]
    except (OSError, UnidentifiedImageError) as exc:
        raise ConfigError(f"{name}: cannot read an image ({exc})") from None
    x = np.stack(arrays)
    return x[:, None] if gray else x.transpose(0, 3, 1, 2)  # (N, C, H, W)


def _standardise(
    train: NDArray[np.float32], test: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    axes = (0, 2, 3)
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True) + 1e-6
    return (train - mean) / std, (test - mean) / std
