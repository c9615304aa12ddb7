"""Short reprs, HTML tables for notebooks and the lazy pandas import, shared by the results.

Results (:class:`~stochmech.simulation.SimulationResult`, audit reports and rows, figure data,
LQG runs, ledger records) print in a few lines and render as a small table in Jupyter
(``_repr_html_``); their ``to_pandas()`` returns DataFrames. pandas is an optional extra
(``pip install 'stochmech[pandas]'``), imported only when ``to_pandas()`` is called.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["fmt_array", "html_table", "pandas", "short_repr"]


def pandas() -> Any:
    """The pandas module, or an ImportError that says how to install it."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "to_pandas() needs pandas, an optional dependency of stochmech: "
            "pip install 'stochmech[pandas]' (or pip install pandas)"
        ) from None
    return pd


def fmt_array(x: Any, limit: int = 6) -> str:
    """A short text of a 1-D array: at most ``limit`` entries, 4 significant digits.

    Examples
    --------
    >>> fmt_array([1.0, 2.5, 1 / 3])
    '[1, 2.5, 0.3333]'
    >>> fmt_array(np.arange(10))
    '[0, 1, 2, ..., 8, 9] (10)'
    """
    a = np.asarray(x).ravel()

    def one(v: Any) -> str:
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        return f"{float(v):.4g}"

    if a.size <= limit:
        return "[" + ", ".join(one(v) for v in a) + "]"
    head = ", ".join(one(v) for v in a[: limit // 2])
    tail = ", ".join(one(v) for v in a[-(limit - limit // 2 - 1) :])
    return f"[{head}, ..., {tail}] ({a.size})"


def short_repr(title: str, lines: Sequence[tuple[str, Any]]) -> str:
    """``title`` then one ``  name: value`` line per entry."""
    width = max((len(k) for k, _ in lines), default=0)
    return "\n".join([title, *(f"  {k.ljust(width)}  {v}" for k, v in lines)])


def html_table(
    title: str,
    lines: Sequence[tuple[str, Any]] = (),
    columns: Sequence[str] | None = None,
    rows: Sequence[Sequence[Any]] = (),
    max_rows: int = 20,
) -> str:
    """A title, a two-column table of ``lines`` and, optionally, a table of ``rows``."""
    esc = html.escape
    out = [f"<div><strong>{esc(title)}</strong>"]
    if lines:
        out.append("<table>")
        out += [
            f"<tr><th style='text-align:left'>{esc(str(k))}</th>"
            f"<td style='text-align:left'>{esc(str(v))}</td></tr>"
            for k, v in lines
        ]
        out.append("</table>")
    if columns is not None:
        out.append("<table><tr>" + "".join(f"<th>{esc(str(c))}</th>" for c in columns) + "</tr>")
        shown = list(rows)[:max_rows]
        for row in shown:
            out.append("<tr>" + "".join(f"<td>{esc(_cell(v))}</td>" for v in row) + "</tr>")
        if len(rows) > max_rows:
            out.append(
                f"<tr><td colspan='{len(columns)}'>... {len(rows) - max_rows} more</td></tr>"
            )
        out.append("</table>")
    out.append("</div>")
    return "\n".join(out)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.5g}"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return str(v)
