"""The `jetnu` console script dispatches to the `python -m jetnu.<command>` entry points."""

import pytest

from jetnu.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    output = capsys.readouterr().out
    for name in COMMANDS:
        assert name in output


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_unknown_command_rejected(capsys):
    assert main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_help_reaches_entry_point(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()
