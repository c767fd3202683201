"""`mpls repro`: a preset runs in the simulator and its report puts the paper's numbers beside
ours (a small preset here; the real ones are paper30-sized)."""

from pathlib import Path

from mpls_celery.repro.presets import PRESETS, Case, Preset
from mpls_celery.repro.run import ReproRequest, run_preset
from mpls_celery.telemetry.rundir import read_json

TINY = Preset(
    "tiny",
    "MLP / digits, 4 workers: time to 30 %",
    ("mpls", "netmax"),
    {
        "workers": 4,
        "model": "mlp",
        "dataset": "digits",
        "network.profile": "paper30",
        "topology.kind": "full",
        "training.lr": 0.05,
    },
    target_acc=0.3,
    until=4.0,
    paper={"mpls": 1.0, "netmax": 2.0},
)


def test_a_preset_reports_the_papers_numbers_beside_ours(tmp_path: Path):
    request = ReproRequest(TINY, seed=1, jobs=1, eval_every=0.5, data_dir=Path("."),
                           runs_dir=tmp_path)  # fmt: skip
    result = run_preset(request)
    report = Path(result["report"])
    rows = read_json(report / "paper.json")["rows"]
    assert set(rows) == {"mpls", "netmax"}
    assert rows["netmax"]["paper_vs_mpls"] == 2.0
    assert rows["mpls"]["ours"] is None or rows["mpls"]["ours_vs_mpls"] == 1.0
    text = (report / "paper.md").read_text()
    assert "paper: time to target" in text and "| netmax | 2.00 |" in text
    assert (report / "accuracy_vs_time.png").exists() and (
        report / "accuracy_vs_epochs.png"
    ).exists()


def test_nin_noniid_has_one_case_and_one_paper_number_per_chi():
    preset = PRESETS["nin-noniid"]
    assert [c.label for c in preset.cases] == ["chi=0.3", "chi=0.5", "chi=0.7"]
    assert all(isinstance(c, Case) for c in preset.cases)
    assert set(preset.paper) == {c.label for c in preset.cases}
