"""Results in notebooks: short reprs, HTML, DataFrames, plots on a given Axes."""

from __future__ import annotations

import doctest
import importlib
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from stochmech import FiniteGame, simulate
from stochmech.audit import audit
from stochmech.ledger import BidLedger
from stochmech.lqg import LayeredVCG, LQGAgents
from stochmech.lqg.plots import plot_run
from stochmech.markets.demand_response.figures import FigureSetup, figure2, plot_figure
from stochmech.plots import (
    plot_audit,
    plot_audit_gain,
    plot_penalty_days,
    plot_utility_convergence,
    save_figure,
)

pd = pytest.importorskip("pandas")

V = np.zeros((2, 2, 2, 2))
V[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
GAME = FiniteGame(V, [[0.0, 9.0], [1.0, 1.0]])
THETA = [[0.5, 0.5], [0.5, 0.5]]


@pytest.fixture(scope="module")
def result():
    return simulate(GAME, THETA, days=3000, seed=2, daily=True)


@pytest.fixture(scope="module")
def report():
    return audit(GAME, THETA, days=800, history_days=300, resolution=2)


@pytest.fixture(scope="module")
def fig_data():
    return figure2(FigureSetup(levels=3, days=500, replications=2), [1, 3], executor=None)


@pytest.fixture(scope="module")
def lqg_run():
    agents = LQGAgents([0.9, 0.8], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.1, 0.1], [1, 1])
    return LayeredVCG(agents, 5).run(agents.sample_layer_inputs(5, np.random.default_rng(1)))


def _short(text: str, lines: int = 8) -> None:
    assert len(text.splitlines()) <= lines and len(text) < 800, text


def test_simulation_result_repr_is_short_even_for_long_runs(result) -> None:
    long = simulate(GAME, THETA, days=200_000, seed=2)
    _short(repr(long))
    text = repr(result)
    _short(text)
    assert text.startswith("SimulationResult: 3,000 days, 2 players") and "seed 2" in text
    html = result._repr_html_()
    assert html.startswith("<div>") and html.count("<tr>") >= 3 and "truthful" in html


def test_simulation_result_to_pandas_matches_the_arrays(result) -> None:
    paths = result.to_pandas()
    assert paths.index.name == "day" and paths.index.tolist() == result.checkpoints.tolist()
    np.testing.assert_array_equal(paths["utility_1"], result.utility_path[:, 1])
    np.testing.assert_array_equal(paths["welfare"], result.welfare_path)
    daily = result.to_pandas("daily")
    assert daily.index[0] == 1 and daily.index[-1] == 3000
    np.testing.assert_array_equal(daily["utility_0"], result.daily_utility[:, 0])
    assert daily["utility_0"].mean() == pytest.approx(result.average_utility[0], rel=1e-12)
    players = result.to_pandas("players")
    np.testing.assert_array_equal(players["average_payment"], result.average_payment)
    with pytest.raises(ValueError, match="kind"):
        result.to_pandas("days")
    with pytest.raises(ValueError, match="daily=True"):
        simulate(GAME, THETA, days=10).to_pandas("daily")


def test_audit_report_and_rows(report) -> None:
    _short(repr(report))
    assert repr(report).startswith("AuditReport: player 0, PASS")
    df = report.to_pandas()
    assert len(df) == len(report.rows)
    assert df["simulated_gain"].tolist() == [r.simulated_gain for r in report.rows]
    assert df["verdict"].tolist() == [r.verdict for r in report.rows]
    row = report.rows[0]
    _short(repr(row))
    path = row.to_pandas()
    np.testing.assert_array_equal(path["gain"], row.gain_path)
    html = report._repr_html_()
    assert html.count("<tr>") >= len(report.rows) and row.name.split()[0] in html


def test_figure_data(fig_data) -> None:
    _short(repr(fig_data))
    df = fig_data.to_pandas()
    assert df.index.name == "n" and df.index.tolist() == [1, 3]
    np.testing.assert_array_equal(df["simulated"], fig_data.columns["simulated"])
    assert df.attrs["caption"] == fig_data.caption
    curve = fig_data.to_pandas(curve=True)
    assert curve.index.tolist() == fig_data.curve["n"].tolist()
    assert "<table>" in fig_data._repr_html_()


def test_lqg_run_and_ledger_record(lqg_run) -> None:
    _short(repr(lqg_run))
    df = lqg_run.to_pandas()
    assert df.shape == (10, 6)
    np.testing.assert_array_equal(df.xs(1, level="agent")["payment"], lqg_run.payments[:, 1])
    assert "<table>" in lqg_run._repr_html_()

    ledger = BidLedger([[0.5, 0.5], [0.25, 0.75]])
    bids = np.random.default_rng(0).integers(0, 2, size=(50, 2))
    rec = ledger.record(bids)
    _short(repr(rec))
    frame = rec.to_pandas()
    assert frame.index.tolist() == rec.days.tolist()
    np.testing.assert_array_equal(frame["flagged_1"], rec.flags[:, 1])
    assert "LedgerRecord" in rec._repr_html_()


def test_to_pandas_without_pandas_says_how_to_install(result, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"stochmech\[pandas\]"):
        result.to_pandas()


def test_plots_draw_on_a_given_axes_or_return_a_figure(result, report, fig_data, lqg_run) -> None:
    fig = Figure()
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    assert plot_utility_convergence(result, ax=axes[0, 0]) is fig
    assert plot_penalty_days(result, ["a", "b"], ax=axes[0, 1]) is fig
    assert plot_audit_gain(report, ax=axes[0, 2]) is fig
    assert plot_figure(fig_data, ax=axes[1, 0]) is fig
    assert plot_run(lqg_run, which="controls", ax=axes[1, 1]) is fig
    assert len(fig.axes) == 6  # nothing added beside the given axes
    assert [ln.get_label() for ln in axes[0, 1].get_lines()][:2] == ["a", "b"]
    gain, penalty = plot_audit(report)
    assert isinstance(gain, Figure) and isinstance(penalty, Figure)
    assert len(plot_figure(fig_data).axes) == 2
    with pytest.raises(ValueError, match="names"):
        plot_utility_convergence(result, ["only one"])
    with pytest.raises(ValueError, match="which"):
        plot_run(lqg_run, which="bids")


def test_save_figure_writes_a_png(result, tmp_path) -> None:
    path = save_figure(plot_utility_convergence(result), tmp_path / "sub" / "u.png")
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "name",
    ["stochmech._seeding", "stochmech._display", "stochmech.markets._sweeps", "stochmech.plots"],
)
def test_doctests(name) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
