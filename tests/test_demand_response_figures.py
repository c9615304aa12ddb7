"""Figs. 2-4: simulated points against independent exact values, files, executors, validation."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from stochmech.markets._sweeps import replication_seeds, run_tasks
from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype
from stochmech.markets.demand_response.figures import (
    FigureSetup,
    figure2,
    figure3,
    figure4,
    write_figures,
)
from stochmech.simulation import simulate

SETUP = FigureSetup(levels=4, n_providers=5, days=4000, replications=6, seed=11)
Z = 5.0  # simulated points must be within Z standard errors (t with 5 degrees of freedom)


def _market(n, levels=4, mean=1.0):
    theta = betaprime_supertype(mean, 2.0, levels)
    return DemandResponseMarket([theta] * n, betaprime_supertype(1.0, 2.0, levels), 1.0)


@pytest.fixture(scope="module")
def fig2():
    return figure2(SETUP, ns=[1, 4, 12], executor=None)


@pytest.fixture(scope="module")
def fig3():
    return figure3(SETUP, means=[0.5, 1.5, 3.0], executor=None)


@pytest.fixture(scope="module")
def fig4():
    return figure4(SETUP, executor=None)


def _within(fig, z=Z):
    c = fig.columns
    return np.abs(c["simulated"] - c["exact"]) <= z * c["simulated_se"]


def test_figure2_exact_and_simulated_social_cost(fig2):
    c = fig2.columns
    assert c["n"].tolist() == [1, 4, 12]
    for n, exact, posted in zip(c["n"], c["exact"], c["best_posted_price"], strict=True):
        m = _market(int(n))
        assert exact == m.expected_social_cost()
        assert posted == m.best_posted_price().social_cost
    assert np.all(_within(fig2)), fig2.columns
    assert np.all(np.diff(c["exact"]) < 0)  # more providers, lower cost
    assert np.all(c["best_posted_price"] > c["exact"])
    # the comparison has power: a 3 % error in the exact values would be caught
    wrong = np.abs(c["simulated"] - 1.03 * c["exact"]) > Z * c["simulated_se"]
    assert wrong.any()
    assert fig2.curve["n"].tolist() == list(range(1, 13))
    assert fig2.curve["exact"][3] == c["exact"][1]


def test_figure2_points_are_the_mean_of_the_mechanism_runs(fig2):
    """Plumbing: each point is the plain mean of R simulate() runs with the derived seeds."""
    m = _market(4)
    costs = [
        -simulate(m, m.supertype_bids(), days=SETUP.days, seed=s).average_welfare
        for s in replication_seeds(SETUP.seed, SETUP.replications)
    ]
    assert fig2.columns["simulated"][1] == pytest.approx(np.mean(costs), rel=1e-14)
    se = np.std(costs, ddof=1) / np.sqrt(len(costs))
    assert fig2.columns["simulated_se"][1] == pytest.approx(se, rel=1e-12)


def test_figure3_payment_received_by_the_fixed_provider(fig3):
    c = fig3.columns
    for mean, exact in zip(c["mean_others"], c["exact"], strict=True):
        m = DemandResponseMarket(
            [4.0] + [betaprime_supertype(mean, 2.0, 4)] * 4, betaprime_supertype(1.0, 2.0, 4), 1.0
        )
        assert exact == m.expected_payments()[0]
    assert np.all(_within(fig3)), fig3.columns
    assert np.all(np.diff(c["exact"]) > 0)  # the paper's observation
    assert np.all(np.diff(c["simulated"]) > 0)
    # a provider declaring a point mass and bidding it is never flagged
    assert np.all(c["simulated_penalty"] == 0.0)
    wrong = np.abs(c["simulated"] - 1.03 * c["exact"]) > Z * c["simulated_se"]
    assert wrong.any()


def test_figure4_posted_price_curve_mechanism_line_and_gap(fig4):
    c, ex = fig4.columns, fig4.extras
    m = _market(5)
    best = m.best_posted_price()
    assert ex["best_price"] == best.price
    assert best.price in c["price"]
    np.testing.assert_array_equal(c["exact"], m.posted_price_social_cost(c["price"]))
    assert c["price"][0] == 0.0 and c["price"][-1] == pytest.approx(2 * best.price)
    assert np.all(_within(fig4)), fig4.columns
    assert ex["gap_exact"] == pytest.approx(best.gap, rel=1e-15) and best.gap > 0
    assert abs(ex["gap_simulated"] - ex["gap_exact"]) <= Z * ex["gap_simulated_se"]
    assert ex["gap_simulated"] > Z * ex["gap_simulated_se"]  # the gap is resolved
    assert ex["mechanism_cost_exact"] == m.expected_social_cost()
    assert (
        abs(ex["mechanism_cost_simulated"] - ex["mechanism_cost_exact"])
        <= Z * ex["mechanism_cost_simulated_se"]
    )
    # the mechanism and the posted prices ran on the same days: the mechanism never costs more
    assert np.all(c["simulated"] >= ex["mechanism_cost_simulated"])


def test_the_executor_does_not_change_the_numbers(fig2):
    with ThreadPoolExecutor(2) as pool:
        threaded = figure2(SETUP, ns=[1, 4, 12], executor=pool)
    for k in fig2.columns:
        np.testing.assert_array_equal(threaded.columns[k], fig2.columns[k])
    small = FigureSetup(levels=3, days=300, replications=2)
    serial = figure2(small, ns=[2, 3], executor=None)
    pooled = figure2(small, ns=[2, 3], executor="process", workers=2)
    np.testing.assert_array_equal(serial.columns["simulated"], pooled.columns["simulated"])


def test_write_figures_png_csv_and_json(tmp_path):
    setup = FigureSetup(levels=3, n_providers=4, days=500, replications=2, seed=5)
    written = write_figures(tmp_path, setup, ns=[1, 2], means=[1.0, 2.0], executor=None)
    assert [d.key for d, _ in written] == ["fig2", "fig3", "fig4"]
    for data, files in written:
        assert files.png.read_bytes().startswith(b"\x89PNG")
        assert files.png.stat().st_size > 20_000
        text = files.csv.read_text(encoding="utf-8")
        header = " ".join(line for line in text.splitlines() if line.startswith("#"))
        for phrase in ("d = 1", "beta prime(2, 3)", "K = 3", "L = 500", "R = 2", "seed 5",
                       "quantile bins", "conditional means"):  # fmt: skip
            assert phrase in header, phrase
        rows = [line.split(",") for line in text.splitlines() if not line.startswith("#")]
        assert rows[0] == list(data.columns)
        table = np.array(rows[1:], dtype=float)
        for j, column in enumerate(data.columns.values()):
            np.testing.assert_array_equal(table[:, j], column)  # written with repr: exact
        side = json.loads(files.json.read_text(encoding="utf-8"))
        assert side["caption"] == data.caption
        assert side["choices"]["levels_K"] == 3 and side["choices"]["shortage_d"] == 1.0
        assert side["choices"]["days_per_run"] == 500
        assert side["columns"]["exact"] == data.columns["exact"].tolist()
    assert "n = 4" in written[2][0].caption  # Fig. 4 states n
    assert "9 other" not in written[1][0].caption and "3 other" in written[1][0].caption


def test_validation():
    with pytest.raises(ValueError, match="replications"):
        FigureSetup(replications=1)
    with pytest.raises(ValueError, match="levels"):
        FigureSetup(levels=65_537)
    with pytest.raises(ValueError, match="n_providers"):
        FigureSetup(n_providers=1_001)
    with pytest.raises(ValueError, match="mean"):
        FigureSetup(mean=-1.0)
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        figure2(SETUP, ns=[0, 3], executor=None)
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        figure2(SETUP, ns=[1_001], executor=None)
    with pytest.raises(ValueError, match=r"curve_to = 2 must be >= the largest simulated n = 3"):
        figure2(SETUP, ns=[3], curve_to=2, executor=None)
    with pytest.raises(ValueError, match="means"):
        figure3(SETUP, means=[-1.0], executor=None)
    with pytest.raises(ValueError, match="numbered"):
        write_figures("unused", SETUP, which=[5], executor=None)
    with pytest.raises(ValueError, match="executor"):
        run_tasks(pow, [(2, 2)], executor="cluster")
    with pytest.raises(ValueError, match="replications"):
        replication_seeds(0, 0)


@pytest.mark.parametrize(
    "module",
    [
        "stochmech.markets._sweeps",
        "stochmech.markets.demand_response.incentives",
        "stochmech.markets.demand_response.figures",
    ],
)
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_figure2_exact_curve_runs_to_thousands_of_providers():
    """The exact curve goes far beyond the simulated points (no ledger limit on it)."""
    fig = figure2(SETUP, ns=[2], curve_to=5_000, executor=None)
    curve = fig.curve
    assert curve["n"][0] == 1 and curve["n"][-1] == 5_000 and len(curve["n"]) <= 200
    assert np.all(np.diff(curve["exact"]) < 0)
    assert np.all(curve["best_posted_price"] >= curve["exact"])
    # law of large numbers: E[1/(2S)] -> 1/(2 E[S]) with relative error O(1/n) (d = 1)
    law = SETUP.provider_law()
    e_s = 5_000 * law.moment(-1) + SETUP.reserve_law().moment(-1)
    assert abs(curve["exact"][-1] * 2 * e_s - 1) < 1e-3
    assert fig.extras["curve_to"] == 5_000
