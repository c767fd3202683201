"""The replay table's measures of how far a replayed curve is from the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpls_celery.report.replay_table import compare_replay
from mpls_celery.telemetry.records import EvalRecord
from mpls_celery.telemetry.rundir import METRICS, append_metrics


def run_dir(root: Path, name: str, curve: list[tuple[float, float]]) -> Path:
    path = root / name
    path.mkdir()
    records = [EvalRecord("mpls", t, int(t), acc, acc, 1.0) for t, acc in curve]
    append_metrics(path / METRICS, records)
    return path


def test_a_curve_that_is_only_late_is_many_points_off_on_its_slope_and_its_delay_in_seconds(
    tmp_path: Path,
):
    # real: 0 → 100 % over 100 s; replay: the same curve 10 s later, flat before it starts
    real = [(float(t), t / 100) for t in range(0, 101, 5)]
    late = [(0.0, 0.0)] + [(t + 10.0, acc) for t, acc in real]
    row = compare_replay(run_dir(tmp_path, "real", real), run_dir(tmp_path, "late", late), 0.9)
    assert row.time_error == pytest.approx(10 / 90)
    assert row.max_acc_gap == pytest.approx(0.10)
    assert row.far_points == 19  # every real evaluation from 10 s on is 10 points off
    assert row.far_max_shift == pytest.approx(10.0)
    same = compare_replay(run_dir(tmp_path, "a", real), run_dir(tmp_path, "b", real), 0.9)
    assert same.far_points == 0 and same.far_max_shift is None
