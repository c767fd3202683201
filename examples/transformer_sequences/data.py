"""Token sequences to classify, generated (seeded, nothing to download): four classes, each with
its own preference for a few of 24 tokens, in sequences of 16. A loader for `dataset:
data:load_sequences` — it returns (x_train, y_train, x_test, y_test) with token ids as integers."""

from __future__ import annotations

import numpy as np

VOCAB, LENGTH, CLASSES = 24, 16, 4


def load_sequences() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    preferred = rng.permutation(VOCAB)[: CLASSES * 3].reshape(CLASSES, 3)
    labels = rng.integers(0, CLASSES, size=3000)
    tokens = rng.integers(0, VOCAB, size=(3000, LENGTH))
    hints = rng.random((3000, LENGTH)) < 0.35  # about a third of the tokens carry the class
    chosen = preferred[labels][np.arange(3000)[:, None], rng.integers(0, 3, size=(3000, LENGTH))]
    tokens = np.where(hints, chosen, tokens).astype(np.int64)
    return tokens[:2400], labels[:2400], tokens[2400:], labels[2400:]
