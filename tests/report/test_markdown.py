"""The report's Markdown: a speedup table only where there are speedups to show."""

import pytest

from mpls_celery.report.build import markdown_table


def table(target: float | None, reached: dict[str, float | None]) -> dict:
    row = {"final_mean_acc": 0.5, "final_avg_model_acc": 0.5, "bytes_pulled": 1e6}
    algorithms = {
        name: row | {"time_to_target": t, "epochs_to_target": None} for name, t in reached.items()
    }
    speedup = {
        a: {b: (tb / ta if ta and tb else None) for b, tb in reached.items() if b != a}
        for a, ta in reached.items()
    }
    return {"target_acc": target, "algorithms": algorithms, "speedup": speedup,
            "ended_early": {}, "replays": [], "links": {}}  # fmt: skip


@pytest.mark.parametrize(
    ("target", "reached", "says"),
    [
        (None, {"mpls": None, "appg": None}, "None without a target accuracy (`mpls report DIR"),
        (0.9, {"mpls": 10.0, "appg": None}, "None: fewer than two runs reached the target."),
    ],
)
def test_no_speedup_is_one_line_not_a_table_of_dashes(target, reached, says):
    text = markdown_table(table(target, reached))
    assert says in text and "| | mpls | appg |" not in text


def test_speedups_are_a_row_by_column_table():
    text = markdown_table(table(0.9, {"mpls": 10.0, "appg": 25.0}))
    assert "| | mpls | appg |" in text
    assert "| mpls | — | 2.50× |" in text and "| appg | 0.40× | — |" in text
