"""``stochmech lqg run`` / ``verify`` through :func:`stochmech.cli.main`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stochmech.cli import main
from stochmech.lqg import LayeredVCG
from stochmech.lqg.examples import power_system_example


def test_run_summary_and_plots(tmp_path, capsys) -> None:
    out = tmp_path / "plots"
    assert main(["lqg", "run", "--horizon", "10", "--seed", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "expected social welfare" in text and "cold-store" in text
    for name in ("states.png", "controls.png", "cumulative_payments.png"):
        data = (out / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000


def test_run_json_matches_library(tmp_path, capsys) -> None:
    args = ["lqg", "run", "--horizon", "7", "--seed", "5", "--json", "--out", str(tmp_path)]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    ex = power_system_example()
    mech = LayeredVCG(ex.agents, 7)
    run = mech.run(ex.agents.sample_layer_inputs(7, np.random.default_rng(5)))
    np.testing.assert_allclose(result["controls"], run.controls)
    np.testing.assert_allclose(result["payments"], run.payments)
    np.testing.assert_allclose(result["utilities"], run.utilities)
    assert result["expected_welfare"] == pytest.approx(mech.expected_welfare())
    assert result["balance_residual"] < 1e-12 and result["centralized_control_gap"] < 1e-12
    assert len(result["plots"]) == 3
    assert [a["name"] for a in result["agents"]] == list(ex.names)


def test_verify_json(capsys) -> None:
    assert main(["lqg", "verify", "--horizon", "4", "--samples", "300", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert all(r["exact_gain"] is None or r["exact_gain"] <= 1e-10 for r in rows)
    assert rows[-1]["exact_gain_without_transfers"] > 0  # the best lie without transfers pays


def test_bad_arguments(tmp_path, capsys) -> None:
    assert main(["lqg", "run", "--horizon", "0", "--out", str(tmp_path)]) == 2
    assert "horizon must be >= 1" in capsys.readouterr().err
    assert main(["lqg", "run", "--pivot", "nope"]) == 2
    assert main(["lqg", "verify", "--agent", "9"]) == 2
    assert "agent must be in" in capsys.readouterr().err


def test_plot_legend_only_for_few_agents() -> None:
    from stochmech.lqg import LayeredVCG, LQGAgents
    from stochmech.lqg.plots import LEGEND_AGENTS, plot_run

    for n in (2, LEGEND_AGENTS + 1):
        ones = np.ones(n)
        agents = LQGAgents(0.9 * ones, ones, -ones, -ones, 0.1 * ones, ones)
        run = LayeredVCG(agents, 3).run(agents.sample_layer_inputs(3, np.random.default_rng(0)))
        legend = plot_run(run).axes[0].get_legend()
        assert (legend is not None) == (n <= LEGEND_AGENTS)
