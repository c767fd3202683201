import pytest

from mpls_celery.cli.app import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_help_lists_command_groups(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for group in ("topology", "profile", "config", "redis", "model", "data"):
        assert group in out


def test_bad_option_is_one_line_and_exit_2(capsys):
    code, _out, err = run(["--bogus"], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "No such option: --bogus" in err


def test_config_error_is_one_line_and_exit_2(capsys, tmp_path):
    bad = tmp_path / "run.yaml"
    bad.write_text("workers: 3\nalgorithm: lenet\n")
    code, _, err = run(["config", "show", str(bad)], capsys)
    assert code == 2
    assert err.strip() == (
        f"error: {bad}: algorithm: unknown algorithm 'lenet'; choose one of: "
        "mpls, mpls-peer, mpls-layer, rand-mpls, appg, netmax, ad-psgd, or an import path "
        "package.module:factory"
    )


def _commands(command, path=()):
    """Every command of the CLI with the words that invoke it."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_option_help_is_shown_whole(capsys, monkeypatch):
    """Rich reads `[...]` in a help text as markup and drops it: each command's and option's
    help, as written, must appear in the command's --help."""
    import typer.main

    from mpls_celery.cli.app import app

    monkeypatch.setenv("COLUMNS", "1000")
    root = typer.main.get_command(app)
    checked = 0
    for path, command in _commands(root):
        code, out, _ = run([*path, "--help"], capsys)
        assert code == 0, path
        shown = " ".join(out.split())
        assert " ".join((command.help or "").split()) in shown, path
        for param in command.params:
            text = " ".join((getattr(param, "help", None) or "").split())
            assert text in shown, (path, param.name, text)
            checked += bool(text)
    assert checked > 50


def test_a_runs_last_lines_keep_every_path_whole_in_a_narrow_terminal(
    capsys, tmp_path, monkeypatch
):
    """Where the run, its model and its report are: one per line, never wrapped inside a path
    (a user copies them)."""
    from mpls_celery.cli import output

    runs = tmp_path / "a-folder-name-longer-than-the-terminal-is-wide"
    monkeypatch.setenv("MPLS_RUNS_DIR", str(runs))
    monkeypatch.setattr(output.console, "width", 30)
    argv = ["sim", "--workers", "2", "--model", "mlp", "--dataset", "digits", "--until", "1s",
            "--algo", "mpls", "--jobs", "1"]  # fmt: skip
    code, out, _ = run(argv, capsys)
    assert code == 0
    run_dir = next(runs.glob("sim-*"))
    lines = out.splitlines()
    assert f"run directory: {run_dir}" in lines
    assert "trained model: models/mpls.safetensors (in the run directory)" in lines
    assert f"plots and report: mpls report {run_dir}" in lines
    assert (run_dir / "models" / "mpls.safetensors").exists()
