"""Dataclass options as flags: a list flag given twice is refused, not silently cut to its last use."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from probes.cli.flags import add_dataclass_options, options_from


@dataclass
class _Options:
    sae: list[str] | None = field(default=None, metadata={"help": "SAEs."})
    ks: list[int] = field(default_factory=lambda: [1, 2, 4, 8], metadata={"help": "Sizes."})


def _parse(*argv: str) -> _Options:
    parser = argparse.ArgumentParser(prog="probes")
    add_dataclass_options(parser, _Options)
    return options_from(parser.parse_args(argv), _Options)


def test_a_list_flag_replaces_its_default_once():
    assert _parse("--sae", "a", "b").sae == ["a", "b"]
    assert _parse("--ks", "3").ks == [3]
    assert _parse().ks == [1, 2, 4, 8] and _parse().sae is None


@pytest.mark.parametrize("argv", [["--sae", "a", "--sae", "b"], ["--ks", "3", "--ks", "5"]])
def test_a_list_flag_given_twice_is_one_clear_error(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        _parse(*argv)
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"probes: error: argument {argv[0]}: given twice; give all its values after one")
