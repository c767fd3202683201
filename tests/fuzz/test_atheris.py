"""Runs the atheris targets for a bounded number of inputs (CI budget), starting from valid
inputs, so libFuzzer mutates real snapshots and records rather than only random bytes."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris did not install on this platform")

from tests.conftest import REPO

RUNS = 20_000


def seed_corpus(target: str, directory: Path) -> Path:
    from tests.fuzz.atheris_targets import SEED

    directory.mkdir()
    if target == "codec":
        (directory / "valid").write_bytes(SEED)
    else:
        from mpls_celery.telemetry.records import IterationRecord, to_json

        record = IterationRecord("mpls", 1, 2, 0.5, 3, 0.1, {2: [0, 1]}, 10.0, 0.1, 0.2, 3)
        (directory / "valid").write_bytes(to_json(record))
    return directory


@pytest.mark.parametrize("target", ["codec", "telemetry"])
def test_fuzz_target_never_crashes(target, tmp_path):
    corpus = seed_corpus(target, tmp_path / "corpus")
    done = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.atheris_targets", target, f"-runs={RUNS}",
         "-max_len=4096", "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Done {RUNS} runs" in done.stderr
