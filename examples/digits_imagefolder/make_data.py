"""Write scikit-learn's bundled digits (1,797 real 8×8 scans) as an image folder — one folder per
class under train/ and test/, 16×16 grayscale PNGs — the layout torchvision's ImageFolder reads.

    python examples/digits_imagefolder/make_data.py   # → examples/digits_imagefolder/data/
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent


def main(out: Path = HERE / "data") -> Path:
    digits = load_digits()
    rng = np.random.default_rng(0)
    test = set(rng.choice(len(digits.target), size=len(digits.target) // 5, replace=False).tolist())
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = out / ("test" if i in test else "train") / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (image * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels, mode="L").resize((16, 16)).save(folder / f"{i:04d}.png")
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "data"))
