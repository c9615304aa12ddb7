"""Figures of a DNBE run and of an audit (PNG, drawn on matplotlib's Agg canvas).

* :func:`plot_utility_convergence`: each player's running average utility against the day (log
  day axis), with its truthful long-run utility dashed;
* :func:`plot_penalty_days`: each player's cumulative number of penalty days;
* :func:`plot_audit`: the same two figures for an audit, one line per deviation (the running
  average gain over the truth, and the deviator's cumulative penalty days).

The figures are drawn on the non-interactive Agg canvas directly, so no display is needed and
the global pyplot backend is left alone. Penalties grow like l^1.5, so utility axes switch to
a symmetric-log scale when the curves span many orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from stochmech.simulation import SimulationResult

__all__ = ["plot_audit", "plot_penalty_days", "plot_utility_convergence"]


def _figure(title: str, ylabel: str, size: tuple[float, float] = (7.5, 4.2)) -> tuple[Figure, Any]:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
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


def _save(fig: Figure, ax: Any, path: Path, labels: int) -> Path:
    if labels:
        ax.legend(fontsize="small", ncols=1 if labels <= 6 else 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def plot_utility_convergence(
    result: SimulationResult,
    names: Sequence[str],
    path: str | Path,
    expected: Sequence[float] | None = None,
) -> Path:
    """Running average utility of every player against the day; returns the path written.

    ``expected`` (one per player, optional) is drawn dashed: the long-run utility of bidding
    truthfully against the others' declarations.

    Examples
    --------
    >>> import tempfile
    >>> from stochmech import FiniteGame, simulate
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> res = simulate(FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]]), [[.5, .5], [.5, .5]], days=500)
    >>> plot_utility_convergence(res, ["a", "b"], tempfile.mkdtemp() + "/u.png").name
    'u.png'
    """
    names = list(names)
    if len(names) != result.utility_path.shape[1]:
        raise ValueError(f"names must have length {result.utility_path.shape[1]}, got {len(names)}")
    fig, ax = _figure(
        f"Running average utility ({result.days} days, seed {result.seed})",
        "(1/l) sum of v_i - p_i",
    )
    colors = [f"C{j % 10}" for j in range(len(names))]
    for j, name in enumerate(names):
        ax.plot(result.checkpoints, result.utility_path[:, j], color=colors[j], label=name)
        if expected is not None:
            ax.axhline(float(expected[j]), color=colors[j], ls="--", lw=0.9)
    ref = np.asarray(expected if expected is not None else [], dtype=float)
    _symlog_if_wide(ax, result.utility_path, ref)
    return _save(fig, ax, Path(path), len(names))


def plot_penalty_days(result: SimulationResult, names: Sequence[str], path: str | Path) -> Path:
    """Cumulative number of penalty days of every player against the day.

    Examples
    --------
    >>> import tempfile
    >>> from stochmech import FiniteGame, simulate
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> res = simulate(FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]]), [[.5, .5], [.5, .5]], days=500)
    >>> plot_penalty_days(res, ["a", "b"], tempfile.mkdtemp() + "/p.png").name
    'p.png'
    """
    names = list(names)
    if len(names) != result.penalty_path.shape[1]:
        raise ValueError(f"names must have length {result.penalty_path.shape[1]}, got {len(names)}")
    fig, ax = _figure(
        f"Penalty days: days l on which E_i(l) occurred ({result.days} days)",
        "cumulative penalty days",
    )
    for j, name in enumerate(names):
        ax.step(result.checkpoints, result.penalty_path[:, j], where="post", label=name)
    ax.plot(result.checkpoints, result.checkpoints, color="0.7", lw=0.8, ls=":", label="every day")
    if result.penalty_path.max() > 0:
        ax.set_yscale("symlog", linthresh=1.0)
    return _save(fig, ax, Path(path), len(names) + 1)


def plot_audit(report: Any, out_dir: str | Path, prefix: str = "") -> list[Path]:
    """``<prefix>audit_gain.png`` (running average gain of every deviation over the truth) and
    ``<prefix>audit_penalty_days.png`` (the deviator's cumulative penalty days) in ``out_dir``.

    ``report`` is an :class:`~stochmech.audit.AuditReport`.

    Examples
    --------
    >>> import tempfile
    >>> from stochmech import FiniteGame
    >>> from stochmech.audit import audit
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> report = audit(game, [[.5, .5], [.5, .5]], days=600, history_days=300, resolution=2)
    >>> [p.name for p in plot_audit(report, tempfile.mkdtemp(), prefix="p0_")]
    ['p0_audit_gain.png', 'p0_audit_penalty_days.png']
    """
    out = Path(out_dir)
    rows = [r for r in report.rows if r.checkpoints is not None]
    colors = _palette(len(rows))
    fig, ax = _figure(
        f"Player {report.player}: running average gain of each deviation over the truth",
        "(1/l) sum of u_dev - u_truth",
        size=(9.0, 6.5),
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
    gain_path = _save_below(fig, out / f"{prefix}audit_gain.png")

    fig, ax = _figure(
        f"Player {report.player}: cumulative penalty days of each deviation",
        "cumulative penalty days",
        size=(9.0, 6.5),
    )
    for j, r in enumerate(rows):
        ax.step(r.checkpoints, r.penalty_path, where="post", color=colors[j], label=r.name[:60])
    if any(r.penalty_path.max() > 0 for r in rows):
        ax.set_yscale("symlog", linthresh=1.0)
    pen_path = _save_below(fig, out / f"{prefix}audit_penalty_days.png")
    return [gain_path, pen_path]


def _palette(count: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if count > 10 else "tab10"]
    return [cmap(j % cmap.N) for j in range(count)]


def _save_below(fig: Figure, path: Path) -> Path:
    """Saves with the legend below the axes (audits have many lines)."""
    fig.legend(loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
