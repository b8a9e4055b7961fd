"""How ``imaging-bridge`` lays out its help: click's own layout, not typer's rich panels.

Typer's panels print ``<bool>`` beside every flag and keep a docstring's line breaks in the
middle of its sentences; click re-wraps paragraphs to the terminal and shows flags as
flags.  Its command lists cut a first sentence with "..." to fit one line: ours give it
whole, wrapped.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup


class HelpGroup(TyperGroup):
    """A command group whose command list gives each command's whole first sentence,
    wrapped to the terminal, where click cuts it mid-sentence with "..." to fit one line."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


#: click's own help layout (rich_markup_mode=None): paragraphs re-wrapped to the terminal,
#: flags shown as ``--once`` (typer's rich panels print ``<bool>`` beside every flag and keep
#: the docstrings' line breaks mid-sentence); plain tracebacks, never rich's coloured ones
#: (nor their local variables)
HELP_STYLE: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False,
                              "cls": HelpGroup}
