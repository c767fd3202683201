"""Plot styling that keeps a many-run comparison readable."""

from __future__ import annotations

from mpls_celery.report.plots import line_styles


def test_one_colour_per_algorithm_and_one_line_style_per_run_of_it():
    labels = [
        f"run-{a}-s{s}/{a}" for a in ("mpls", "netmax", "appg", "rand-mpls") for s in (1, 2, 3)
    ]
    styles = line_styles(labels)
    colours = {label.rsplit("/", 1)[1]: styles[label]["color"] for label in labels}
    assert len(set(map(tuple, colours.values()))) == 4
    for label in labels:
        assert styles[label]["color"] == colours[label.rsplit("/", 1)[1]]
    assert [styles[f"run-mpls-s{s}/mpls"]["linestyle"] for s in (1, 2, 3)] == ["-", "--", ":"]
