"""Figures of a layered run: states, controls and cumulative payments (matplotlib Figures).

:func:`plot_run` draws one series on ``ax`` when given, else on its own Figure on
matplotlib's non-interactive Agg canvas (no display needed, pyplot's global state untouched);
saving is a separate step (``fig.savefig``, or :func:`write_run_plots` for the three PNGs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from stochmech.lqg.layered import LayeredRun

__all__ = ["plot_run", "write_run_plots"]

_SERIES = {
    "states": ("True states x_i(t)", "deviation"),
    "controls": ("Applied controls u_i(t) (sum = 0)", "adjustment"),
    "payments": ("Cumulative payments sum_{s<=t} p_i(s) (paid to the ISO)", "payment"),
}
#: Most agents whose names are listed in a legend (larger runs are drawn without one).
LEGEND_AGENTS = 20
_FILES = {"states": "states.png", "controls": "controls.png", "payments": "cumulative_payments.png"}


def plot_run(
    run: LayeredRun,
    names: Sequence[str] | None = None,
    which: str = "states",
    *,
    ax: Any = None,
) -> Figure:
    """One series of a layered run against time, one step line per agent; returns the Figure.

    ``which`` is ``"states"`` (true states x_i(t)), ``"controls"`` (u_i(t)) or ``"payments"``
    (cumulative payments to the ISO). ``names`` labels the agents (default ``agent i``); the
    legend is drawn for at most :data:`LEGEND_AGENTS` agents. Draws on ``ax`` if given.

    Examples
    --------
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([0.9, 0.9], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.1, 0.1],
    ...                    [1.0, 1.0])
    >>> run = LayeredVCG(agents, 4).run(agents.sample_layer_inputs(4, np.random.default_rng(0)))
    >>> fig = plot_run(run, ["a", "b"], "payments")
    >>> fig.axes[0].get_title()
    'Cumulative payments sum_{s<=t} p_i(s) (paid to the ISO)'
    """
    n = run.states.shape[1]
    names = [f"agent {i}" for i in range(n)] if names is None else list(names)
    if len(names) != n:
        raise ValueError(f"names must have length {n}, got {len(names)}")
    if which not in _SERIES:
        raise ValueError(f"which must be one of {sorted(_SERIES)}, got {which!r}")
    series = {
        "states": run.states,
        "controls": run.controls,
        "payments": np.cumsum(run.payments, axis=0),
    }[which]
    title, ylabel = _SERIES[which]
    if ax is None:
        fig = Figure(figsize=(7.5, 4.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    steps = np.arange(series.shape[0])
    for k, name in enumerate(names):
        ax.step(steps, series[:, k], where="post", label=name)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_title(title)
    ax.set_xlabel("time t")
    ax.set_ylabel(ylabel)
    if n <= LEGEND_AGENTS:  # a legend of hundreds of agents would cover the plot
        ax.legend(ncols=min(len(names), 5), fontsize="small")
    return fig


def write_run_plots(run: LayeredRun, names: Sequence[str], out_dir: str | Path) -> list[Path]:
    """Saves ``states.png``, ``controls.png`` and ``cumulative_payments.png`` in ``out_dir``
    (the three :func:`plot_run` figures); returns the paths written.

    Examples
    --------
    >>> import tempfile
    >>> from stochmech.lqg import LQGAgents, LayeredVCG
    >>> agents = LQGAgents([0.9, 0.9], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.1, 0.1],
    ...                    [1.0, 1.0])
    >>> run = LayeredVCG(agents, 4).run(agents.sample_layer_inputs(4, np.random.default_rng(0)))
    >>> [p.name for p in write_run_plots(run, ["a", "b"], tempfile.mkdtemp())]
    ['states.png', 'controls.png', 'cumulative_payments.png']
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for which, file in _FILES.items():
        path = out / file
        plot_run(run, names, which).savefig(path, dpi=110)
        paths.append(path)
    return paths
