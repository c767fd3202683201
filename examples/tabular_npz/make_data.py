"""Write scikit-learn's bundled breast-cancer data (569 samples, 30 features, 2 classes) as the
.npz a run reads: x_train, y_train, x_test, y_test (features standardised with the train split's
mean and spread).

    python examples/tabular_npz/make_data.py   # → examples/tabular_npz/breast_cancer.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent


def main(out: Path = HERE / "breast_cancer.npz") -> Path:
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.2, stratify=data.target, random_state=0
    )
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    np.savez(
        out,
        x_train=((x_train - mean) / std).astype(np.float32),
        y_train=y_train.astype(np.int64),
        x_test=((x_test - mean) / std).astype(np.float32),
        y_test=y_test.astype(np.int64),
    )
    return out


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "breast_cancer.npz"))
