"""Figures of a DNBE run and of an audit, as matplotlib Figures (saving is a separate step).

* :func:`plot_utility_convergence`: each player's running average utility against the day (log
  day axis), with its truthful long-run utility dashed;
* :func:`plot_penalty_days`: each player's cumulative number of penalty days;
* :func:`plot_audit_gain` and :func:`plot_audit_penalty_days` (both: :func:`plot_audit`): the
  same two figures for an audit, one line per deviation (the running average gain over the
  truth, and the deviator's cumulative penalty days).

Every function draws on ``ax`` when given (in a notebook: ``fig, ax = plt.subplots()``) and
returns the Figure; without ``ax`` it makes its own Figure on the non-interactive Agg canvas,
so no display is needed and pyplot's global state is left alone. :func:`save_figure` writes a
Figure to a file. Penalties grow like l^1.5, so utility axes switch to a symmetric-log scale
when the curves span many orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from stochmech._seeding import describe_seed
from stochmech.simulation import SimulationResult

__all__ = [
    "plot_audit",
    "plot_audit_gain",
    "plot_audit_penalty_days",
    "plot_penalty_days",
    "plot_utility_convergence",
    "save_figure",
]


def _figure(
    title: str, ylabel: str, size: tuple[float, float] = (7.5, 4.2), ax: Any = None
) -> tuple[Figure, Any]:
    if ax is None:
        fig = Figure(figsize=size, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("day l")
    ax.set_ylabel(ylabel)
    ax.set_xscale("log")
    ax.grid(True, which="major", color="0.9")
    return fig, ax


def _symlog_if_wide(ax: Any, values: np.ndarray, reference: np.ndarray) -> None:
    span = float(np.nanmax(np.abs(values))) if values.size else 0.0
    scale = float(np.nanmax(np.abs(reference))) if reference.size else 0.0
    scale = scale if scale > 0 else 1.0
    if span > 100 * scale:
        ax.set_yscale("symlog", linthresh=scale)


def _legend(ax: Any, labels: int) -> None:
    if labels:
        ax.legend(fontsize="small", ncols=1 if labels <= 6 else 2)


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Writes ``fig`` to ``path`` (format from the suffix), creating the folder; returns it.

    Examples
    --------
    >>> import tempfile
    >>> fig = Figure(); _ = fig.add_subplot().plot([0, 1])
    >>> save_figure(fig, tempfile.mkdtemp() + "/x/line.png").name
    'line.png'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.canvas is None or not hasattr(fig.canvas, "print_figure"):  # pragma: no cover
        FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)
    return path


def _names(result: SimulationResult, names: Sequence[str] | None) -> list[str]:
    n = result.utility_path.shape[1]
    names = [f"player {i}" for i in range(n)] if names is None else list(names)
    if len(names) != n:
        raise ValueError(f"names must have length {n}, got {len(names)}")
    return names


def plot_utility_convergence(
    result: SimulationResult,
    names: Sequence[str] | None = None,
    expected: Sequence[float] | None = None,
    *,
    ax: Any = None,
) -> Figure:
    """Running average utility of every player against the day; returns the Figure.

    ``expected`` (one per player, optional) is drawn dashed: the long-run utility of bidding
    truthfully against the others' declarations. Draws on ``ax`` if given.

    Examples
    --------
    >>> from stochmech import FiniteGame, simulate
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> res = simulate(FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]]), [[.5, .5], [.5, .5]], days=500)
    >>> fig = plot_utility_convergence(res, ["a", "b"])
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['a', 'b']
    """
    names = _names(result, names)
    fig, ax = _figure(
        f"Running average utility ({result.days} days, seed {describe_seed(result.seed)})",
        "(1/l) sum of v_i - p_i",
        ax=ax,
    )
    colors = [f"C{j % 10}" for j in range(len(names))]
    for j, name in enumerate(names):
        ax.plot(result.checkpoints, result.utility_path[:, j], color=colors[j], label=name)
        if expected is not None:
            ax.axhline(float(expected[j]), color=colors[j], ls="--", lw=0.9)
    ref = np.asarray(expected if expected is not None else [], dtype=float)
    _symlog_if_wide(ax, result.utility_path, ref)
    _legend(ax, len(names))
    return fig


def plot_penalty_days(
    result: SimulationResult, names: Sequence[str] | None = None, *, ax: Any = None
) -> Figure:
    """Cumulative number of penalty days of every player against the day; returns the Figure.

    Examples
    --------
    >>> from stochmech import FiniteGame, simulate
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> res = simulate(FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]]), [[.5, .5], [.5, .5]], days=500)
    >>> len(plot_penalty_days(res).axes[0].get_lines())
    3
    """
    names = _names(result, names)
    fig, ax = _figure(
        f"Penalty days: days l on which E_i(l) occurred ({result.days} days)",
        "cumulative penalty days",
        ax=ax,
    )
    for j, name in enumerate(names):
        ax.step(result.checkpoints, result.penalty_path[:, j], where="post", label=name)
    ax.plot(result.checkpoints, result.checkpoints, color="0.7", lw=0.8, ls=":", label="every day")
    if result.penalty_path.max() > 0:
        ax.set_yscale("symlog", linthresh=1.0)
    _legend(ax, len(names) + 1)
    return fig


def _audit_rows(report: Any) -> list[Any]:
    return [r for r in report.rows if r.checkpoints is not None]


def plot_audit_gain(report: Any, *, ax: Any = None) -> Figure:
    """The running average gain over the truth of every deviation of an
    :class:`~stochmech.audit.AuditReport`, with the window allowance; returns the Figure."""
    rows = _audit_rows(report)
    colors = _palette(len(rows))
    own = ax is None
    fig, ax = _figure(
        f"Player {report.player}: running average gain of each deviation over the truth",
        "(1/l) sum of u_dev - u_truth",
        size=(9.0, 6.5),
        ax=ax,
    )
    allowance = [r.allowance for r in rows if r.allowance is not None]
    for j, r in enumerate(rows):
        ax.plot(r.checkpoints, r.gain_path, color=colors[j], label=r.name[:60])
    ax.axhline(0.0, color="k", lw=0.8)
    if allowance:
        ax.axhline(max(allowance), color="0.5", lw=0.8, ls="--", label="window allowance")
    values = np.concatenate([r.gain_path for r in rows]) if rows else np.zeros(0)
    small = [abs(r.simulated_gain) for r in rows if 0 < abs(r.simulated_gain) < 1e3]
    if values.size and small and np.abs(values).max() > 100 * min(small):
        ax.set_yscale("symlog", linthresh=10.0 ** np.floor(np.log10(min(small))))
    _legend_below(fig, ax, own)
    return fig


def plot_audit_penalty_days(report: Any, *, ax: Any = None) -> Figure:
    """The deviator's cumulative penalty days under every deviation of an audit; returns
    the Figure."""
    rows = _audit_rows(report)
    colors = _palette(len(rows))
    own = ax is None
    fig, ax = _figure(
        f"Player {report.player}: cumulative penalty days of each deviation",
        "cumulative penalty days",
        size=(9.0, 6.5),
        ax=ax,
    )
    for j, r in enumerate(rows):
        ax.step(r.checkpoints, r.penalty_path, where="post", color=colors[j], label=r.name[:60])
    if any(r.penalty_path.max() > 0 for r in rows):
        ax.set_yscale("symlog", linthresh=1.0)
    _legend_below(fig, ax, own)
    return fig


def plot_audit(report: Any) -> tuple[Figure, Figure]:
    """Both audit figures: (:func:`plot_audit_gain`, :func:`plot_audit_penalty_days`).

    ``report`` is an :class:`~stochmech.audit.AuditReport`.

    Examples
    --------
    >>> from stochmech import FiniteGame
    >>> from stochmech.audit import audit
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> report = audit(game, [[.5, .5], [.5, .5]], days=600, history_days=300, resolution=2)
    >>> gain, penalty = plot_audit(report)
    >>> len(gain.axes[0].get_lines()) > len(report.rows)
    True
    """
    return plot_audit_gain(report), plot_audit_penalty_days(report)


def _palette(count: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if count > 10 else "tab10"]
    return [cmap(j % cmap.N) for j in range(count)]


def _legend_below(fig: Figure, ax: Any, own: bool) -> None:
    """Audits have many lines: on our own figure the legend goes below the axes."""
    if own:
        fig.legend(loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    else:
        ax.legend(fontsize="x-small", ncols=2)
