"""Every ``imaging-bridge`` help text reads as text: no raw RST markup, paragraphs wrapped
where the line is full (never mid-sentence), flags shown as flags; ``--version`` answers
(issue 20 item 11)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from bridge.cli import app

runner = CliRunner()
#: the width help is wrapped to (click: 80 columns less its margins)
WIDTH = 78
_RST = re.compile(r"``|:(?:func|class|meth|mod|attr|data|ref):`")


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    # typer's own copy of click: its classes are not the click package's
    for name, command in getattr(group, "commands", {}).items():
        yield (*path, name)
        yield from _commands(command, (*path, name))


COMMANDS = [(), *_commands(typer.main.get_group(app))]


def _command(path: tuple[str, ...]) -> Any:
    command: Any = typer.main.get_group(app)
    for name in path:
        command = command.commands[name]
    return command


def _is_group(path: tuple[str, ...]) -> bool:
    return hasattr(_command(path), "commands")


def _help(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _description(text: str) -> list[list[str]]:
    """The paragraphs between the usage line and the first section (``Options:``...)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Usage:")) + 1
    end = next((i for i in range(start, len(lines)) if re.match(r"^\S.*:$", lines[i])),
               len(lines))
    paragraphs: list[list[str]] = [[]]
    for line in lines[start:end]:
        if line.strip():
            paragraphs[-1].append(line.strip())
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "imaging-bridge")
def test_help_has_no_rst_markup_and_no_mid_sentence_breaks(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert not _RST.search(text), text
    assert "\x1b[" not in text
    for paragraph in _description(text):
        for line, following in itertools.pairwise(paragraph):
            # wrapped greedily: the next word would not have fitted on this line
            assert len(line) + 1 + len(following.split()[0]) > WIDTH - 8, (line, following)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "imaging-bridge")
def test_flags_are_shown_as_flags(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert "<bool>" not in text and "BOOLEAN" not in text, text
    for param in _command(path).params:
        if getattr(param, "is_flag", False):
            shown = " / ".join([", ".join(param.opts), *param.secondary_opts]) \
                if param.secondary_opts else ", ".join(param.opts)
            assert re.search(rf"^\s+{re.escape(shown)}(\s\s|$)", text, re.M), (shown, text)


@pytest.mark.parametrize("path", [p for p in COMMANDS if _is_group(p)],
                         ids=lambda p: " ".join(p) or "imaging-bridge")
def test_the_command_list_gives_each_command_its_whole_first_sentence(
        path: tuple[str, ...]) -> None:
    text = _help(path)
    listing = " ".join(text[text.index("Commands:"):].split())
    assert "..." not in listing, listing
    for name, command in _command(path).commands.items():
        sentence = " ".join(command.help.split("\n\n")[0].split())
        sentence = sentence[:sentence.index(". ") + 1] if ". " in sentence else sentence
        assert f"{name} {sentence}" in listing, (name, sentence, listing)


def test_version_is_printed() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"imaging-bridge {version('imaging-fhir-bridge')}\n"
