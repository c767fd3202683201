from pathlib import Path

import pytest

from mpls_celery.config.load import load_run_config
from mpls_celery.config.run_config import RunConfig
from mpls_celery.config.seed_dirs import write_seed_dir
from mpls_celery.config.topology_files import build_topology
from mpls_celery.errors import ConfigError


def test_generated_seed_dir_loads_back_into_an_equivalent_run_config(tmp_path):
    cfg = RunConfig().with_overrides(
        workers=8, dataset="mnist", seed=5, **{"topology.kind": "random", "training.lr": 0.05}
    )
    topo = build_topology(cfg.topology, cfg.workers, cfg.seed)
    write_seed_dir(cfg, topo, tmp_path)
    loaded = load_run_config(tmp_path)
    assert loaded.workers == 8
    assert loaded.training.lr == 0.05
    assert loaded.dataset == "mnist"
    assert sorted(map(tuple, loaded.topology.edges or [])) == topo.edges()
    rebuilt = build_topology(loaded.topology, loaded.workers, loaded.seed)
    assert (rebuilt.adjacency == topo.adjacency).all()


def test_seed_dir_with_a_missing_worker_is_refused(tmp_path):
    cfg = RunConfig().with_overrides(workers=4, **{"topology.kind": "ring"})
    write_seed_dir(cfg, build_topology(cfg.topology, 4, 1), tmp_path)
    (tmp_path / "worker_2.yaml").unlink()
    with pytest.raises(ConfigError, match="missing \\[2\\]"):
        load_run_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("workers: -1\n", "workers"),
        ("tau1: 0.7\ntau2: 0.7\n", "tau1 + tau2"),
        ("training: {batch_size: 0}\n", "training.batch_size"),
        ("model: lenet\n", "model"),
        ("colour: blue\n", "colour"),
        ("workers: [1\n", "malformed YAML at line"),
    ],
)
def test_malformed_config_names_the_file_and_field(tmp_path: Path, text, field):
    path, message = config_error(tmp_path, text)
    assert message.startswith(str(path))
    assert field in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("dataset: {kind: npz}\n", ": dataset.path: Field required"),
        (
            "dataset: {kind: zip, path: a}\n",
            ": dataset.kind: Input should be 'npz' or 'imagefolder'",
        ),
        ("dataset: {kind: npz, path: a, test_fraction: 2}\n", ": dataset.test_fraction: Input"),
        ("dataset: 5\n", ": dataset: a dataset is a name (digits"),
        ("dataset: nosuch\n", ": dataset: unknown dataset 'nosuch'; choose one of: digits"),
    ],
)
def test_a_bad_dataset_gets_the_error_of_the_form_it_was_written_in(tmp_path: Path, text, problem):
    """A mapping is data files, anything else a name: no error from the other form beside it."""
    path, message = config_error(tmp_path, text)
    assert message.startswith(f"{path}{problem}") and "and 1 more" not in message


def config_error(tmp_path: Path, text: str) -> tuple[Path, str]:
    """The run file holding `text`, and the ConfigError loading it gives."""
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    return path, str(info.value)


@pytest.mark.parametrize(
    ("given", "tau1", "tau2"),
    [({"tau1": 0.7}, 0.7, 0.3), ({"tau2": 0.2}, 0.8, 0.2), ({"tau1": 1}, 1.0, 0.0), ({}, 0.5, 0.5)],
)
def test_one_tau_given_sets_the_other(given, tau1, tau2):
    """τ1 + τ2 = 1, in a run file and as a flag alike: giving one is enough."""
    assert (RunConfig(**given).tau1, RunConfig(**given).tau2) == (tau1, tau2)
    flagged = RunConfig(tau1=0.6).with_overrides(**given)
    assert (flagged.tau1, flagged.tau2) == ((tau1, tau2) if given else (0.6, 0.4))


def test_both_taus_given_must_still_add_up(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"tau1 \+ tau2 must equal 1 \(got 0.7 \+ 0.7\)"):
        RunConfig().with_overrides(tau1=0.7, tau2=0.7)
    _, message = config_error(tmp_path, "tau2: 1.5\n")
    assert message.endswith("tau2: Input should be less than or equal to 1")
