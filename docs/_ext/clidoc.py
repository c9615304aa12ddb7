"""``.. argparse-help:: module:function``: the ``--help`` of a command and of its subcommands.

The function returns the :class:`argparse.ArgumentParser`; every (sub)command gets a section
with its help text as printed by the program, at a fixed width of 88 columns.
"""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Iterator

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

UNDERLINES = '-~^"'


def _commands(
    parser: argparse.ArgumentParser, depth: int = 0
) -> Iterator[tuple[int, argparse.ArgumentParser]]:
    yield depth, parser
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if id(sub) not in seen:  # aliases share a parser
                    seen.add(id(sub))
                    yield from _commands(sub, depth + 1)


class ArgparseHelp(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module, _, function = self.arguments[0].partition(":")
        old = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"
        try:
            parser = getattr(importlib.import_module(module), function)()
            lines: list[str] = []
            for depth, command in _commands(parser):
                title = f"``{command.prog}``"
                lines += [title, UNDERLINES[min(depth, 3)] * len(title), "", "::", ""]
                lines += ["   " + line for line in command.format_help().splitlines()]
                lines.append("")
        finally:
            if old is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = old
        container = nodes.section()
        nested_parse_with_titles(self.state, StringList(lines, source=module), container)
        return container.children


def setup(app: Sphinx) -> dict[str, bool]:
    app.add_directive("argparse-help", ArgparseHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
