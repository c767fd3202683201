"""What `make compose-check` feeds the compose files, checked without Docker (the check itself needs
root and minutes): the run file it writes is valid, and every variable the compose files require
is one it sets."""

import re

from infra.containers.check.several_hosts import PLACEMENT, rooms_run_file, worker_host
from infra.containers.project import ONE_HOST, Project
from mpls_celery.config.load import load_run_config

ENV = {"REDIS_PASSWORD": "secret"}


def required_variables(project: Project) -> set[str]:
    """`${NAME:?message}` in any of the project's compose files: Compose refuses to start without."""
    text = "".join(path.read_text() for path in project.files)
    return set(re.findall(r"\$\{(\w+):\?", text))


def test_the_rooms_run_file_is_valid_and_has_peers_only_on_other_hosts(tmp_path):
    config = load_run_config(rooms_run_file(tmp_path))
    host_of = {w: h for h, ws in PLACEMENT.items() for w in ws}
    assert config.workers == len(host_of) == 6
    edges = config.topology.edges or []
    assert edges and all(host_of[i] != host_of[j] for i, j in edges)


def test_each_worker_host_sets_every_variable_its_compose_files_require():
    for name in PLACEMENT:
        project = worker_host(name, ENV, "secret")
        assert required_variables(project) <= set(project.env)
        assert project.env["MPLS_NODES"] == ",".join(map(str, PLACEMENT[name]))
        # its own snapshot store over loopback, the others through the published ports
        assert project.env[f"SNAPSHOTS_{name.upper()}_ADDR"] == "127.0.0.1"
        assert f"@snapshots-{name}:" in project.env["SNAPSHOT_REDIS_URL"]
        argv = project.base()
        assert argv[:4] == ["docker", "compose", "-p", f"mpls-host-{name}"]
        assert argv[-2:] == ["--profile", "snapshots"]


def test_the_one_host_stack_needs_only_the_password():
    project = Project("x", [ONE_HOST], ENV)
    assert required_variables(project) == {"REDIS_PASSWORD"}
