"""Figures of a layered run: states, controls and cumulative payments (PNG, Agg canvas).

The figures are drawn on matplotlib's non-interactive Agg canvas directly, so no display is
needed and the global pyplot backend is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from stochmech.lqg.layered import LayeredRun

__all__ = ["plot_run"]


def _save(series: np.ndarray, names: Sequence[str], title: str, ylabel: str, path: Path) -> Path:
    fig = Figure(figsize=(7.5, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = np.arange(series.shape[0])
    for k, name in enumerate(names):
        ax.step(steps, series[:, k], where="post", label=name)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_title(title)
    ax.set_xlabel("time t")
    ax.set_ylabel(ylabel)
    ax.legend(ncols=min(len(names), 5), fontsize="small")
    fig.savefig(path, dpi=110)
    return path


def plot_run(run: LayeredRun, names: Sequence[str], out_dir: str | Path) -> list[Path]:
    """Write ``states.png``, ``controls.png`` and ``cumulative_payments.png`` to ``out_dir``.

    Returns the paths written. ``names`` labels the agents (one per column).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([0.9, 0.9], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.1, 0.1],
    ...                    [1.0, 1.0])
    >>> run = LayeredVCG(agents, 4).run(agents.sample_layer_inputs(4, np.random.default_rng(0)))
    >>> [p.name for p in plot_run(run, ["a", "b"], tempfile.mkdtemp())]
    ['states.png', 'controls.png', 'cumulative_payments.png']
    """
    names = list(names)
    if len(names) != run.states.shape[1]:
        raise ValueError(f"names must have length {run.states.shape[1]}, got {len(names)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cumulative = np.cumsum(run.payments, axis=0)
    return [
        _save(run.states, names, "True states x_i(t)", "deviation", out / "states.png"),
        _save(run.controls, names, "Applied controls u_i(t) (sum = 0)", "adjustment",
              out / "controls.png"),
        _save(cumulative, names, "Cumulative payments sum_{s<=t} p_i(s) (paid to the ISO)",
              "payment", out / "cumulative_payments.png"),
    ]  # fmt: skip
