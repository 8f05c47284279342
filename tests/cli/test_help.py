"""Every argument of every command has help text; ``dncgate-agi --help`` prints its help."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dncgate.agi import classic
from dncgate.cli import parser

BIN = Path(sys.executable).parent


def walk(command: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the tree, by its program name (``dncgate lists load``)."""
    yield command.prog, command
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from walk(sub)


def without_help(command: argparse.ArgumentParser) -> list[str]:
    missing = []
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            missing += [f"command {name}" for name in action.choices if name not in helped]
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append("/".join(action.option_strings) or action.dest)
    return missing


@pytest.mark.parametrize("tree", [parser, classic.parser], ids=["dncgate", "dncgate-agi"])
def test_every_argument_has_help(tree: object) -> None:
    assert callable(tree)
    parsers = dict(walk(tree()))
    assert len(parsers) > (20 if tree is parser else 0)  # the walk reached the sub-commands
    missing = {prog: names for prog, command in parsers.items() if (names := without_help(command))}
    assert missing == {}


def test_the_walk_finds_an_argument_without_help() -> None:
    bare = argparse.ArgumentParser(prog="x")
    bare.add_subparsers().add_parser("y").add_argument("--z")
    assert {prog: without_help(p) for prog, p in walk(bare)} == {"x": ["command y"], "x y": ["--z"]}


@pytest.mark.parametrize("stdin", ["devnull", "pipe"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_dncgate_agi_help(flag: str, stdin: str) -> None:
    done = subprocess.run([BIN / "dncgate-agi", flag], capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL if stdin == "devnull" else None,
                          input="" if stdin == "pipe" else None)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("usage: dncgate-agi [-h] [--version] [ARG ...]")
    assert "AGI(dncgate-agi,${NUMBER},tenant=acme,purpose=marketing)" in done.stdout.replace("\n", " ")


def test_dncgate_agi_says_what_it_needs_without_a_pipe() -> None:
    """Started by hand (stdin /dev/null): one line and exit 2, not a traceback or a silent 1."""
    done = subprocess.run([BIN / "dncgate-agi"], capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr == ("dncgate-agi: standard input is not a pipe: Asterisk runs this program over pipes "
                           "(see dncgate-agi --help)\n")


def test_dncgate_help_exits_0() -> None:
    done = subprocess.run([BIN / "dncgate", "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0
    assert "commands:" in done.stdout
