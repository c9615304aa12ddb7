"""Sphinx configuration of the stochmech documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` after
``pip install -e '.[docs]'``. The tutorials are executed at build time (myst-nb), so the numbers
on their pages are computed by the installed stochmech.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import stochmech

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "stochmech"
author = "stochmech developers"
copyright = "2026, stochmech developers"
version = release = stochmech.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
    "clidoc",  # the command-line reference, from stochmech.cli.build_parser
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "**/.ipynb_checkpoints", "jupyter_execute"]
templates_path = ["_templates"]

# ------------------------------------------------------------------------------ API reference
# Each public name is documented once, under the first module of reference/api.rst that
# exports it: the namespaces users import from come first (``stochmech.BidLedger``,
# ``stochmech.lqg.LayeredVCG``), then modules with more specialised tools, whose pages list
# only the names no earlier module documents.
API_MODULES = re.findall(
    r"^   (stochmech[\w.]*)$",
    (Path(__file__).parent / "reference" / "api.rst").read_text(encoding="utf-8"),
    flags=re.MULTILINE,
)


def _documented_elsewhere() -> dict[str, list[str]]:
    """For each module, the names of its ``__all__`` that an earlier module documents."""
    seen: set[int] = set()
    skip: dict[str, list[str]] = {}
    for name in API_MODULES:
        module = importlib.import_module(name)
        objects = {item: id(getattr(module, item)) for item in module.__all__}
        skip[name] = [item for item, key in objects.items() if key in seen]
        seen.update(objects.values())
    return skip


autosummary_generate = True
autosummary_ignore_module_all = False  # document what __all__ exports
autosummary_imported_members = True
autosummary_context = {"documented_elsewhere": _documented_elsewhere()}
autodoc_typehints = "none"  # numpydoc renders the documented types
autodoc_default_options = {"member-order": "bysource"}

numpydoc_show_class_members = False  # class pages list members through autosummary
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# ------------------------------------------------------------------------------ tutorials
nb_execution_mode = "force"  # always run: the numbers on the page are computed
nb_execution_timeout = 120
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3

# ------------------------------------------------------------------------------ HTML
html_theme = "alabaster"
html_title = f"stochmech {release}"
html_static_path: list[str] = []


# ------------------------------------------------------------------------------ docstrings
# The docstrings write formulas in plain text (``theta_hat_-i``, ``|h_i,d(l)|``), which
# reStructuredText would read as hyperlink and substitution references. Escape those two
# characters outside inline literals, roles, doctests and literal blocks.
_MARKUP = re.compile(r"(``.+?``|:[\w:.-]+:`[^`]*`|`[^`]*`_{0,2})", re.DOTALL)
_REFERENCE_END = re.compile(r"(?<=\w)_(?=[^\w]|$)", re.MULTILINE)


def _escape(text: str) -> str:
    parts = _MARKUP.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside markup
        parts[i] = _REFERENCE_END.sub(r"\\_", parts[i].replace("|", r"\|"))
    return "".join(parts)


def _escape_plain_formulas(app, what, name, obj, options, lines: list[str]) -> None:
    prose: list[bool] = []  # which lines are prose (not doctests, literal blocks, directives)
    literal_indent: int | None = None  # inside a literal block opened by "::"
    doctest = False
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped:
            doctest = False
            prose.append(True)
            continue
        if literal_indent is not None and indent > literal_indent:
            prose.append(False)
            continue
        literal_indent = None
        doctest = doctest or stripped.startswith(">>>")
        is_prose = not doctest and not stripped.startswith(("..", "|", "+"))
        prose.append(is_prose)
        if is_prose and stripped.endswith("::"):
            literal_indent = indent
    i = 0
    while i < len(lines):  # escape each run of prose lines as one text (literals span lines)
        if not prose[i]:
            i += 1
            continue
        j = i
        while j < len(lines) and prose[j]:
            j += 1
        lines[i:j] = _escape("\n".join(lines[i:j])).split("\n")
        i = j


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _escape_plain_formulas, priority=400)
