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
    for group in ("topology", "profile", "config", "redis"):
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
        "mpls, mpls-peer, mpls-layer, rand-mpls, appg, netmax, ad-psgd"
    )
