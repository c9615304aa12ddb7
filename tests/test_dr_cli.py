"""``stochmech run`` (default scenario), ``stochmech figures`` and ``stochmech incentives``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stochmech.cli import main
from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype
from stochmech.simulation import simulate
from stochmech.strategies import StationaryMisreport, Truthful, shift_kernel


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def _default_market(providers: int = 10, levels: int = 8) -> DemandResponseMarket:
    theta = betaprime_supertype(1.0, 2.0, levels)
    return DemandResponseMarket([theta] * providers, theta, 1.0)


def test_run_json_is_the_library_simulation(tmp_path, capsys):
    assert main(["run", "--days", "2000", "--out", str(tmp_path), "--json"]) == 0
    r = _json(capsys)
    market = _default_market()
    theta = market.supertype_bids()
    liar = StationaryMisreport(shift_kernel(8, 1), supertype_bid=theta[0] @ shift_kernel(8, 1))
    run = simulate(market, theta, [liar] + [Truthful() for _ in range(9)], days=2000, seed=0)
    assert r["scenario"] == "demand-response" and r["days"] == 2000
    assert r["source"] == "built-in scenario"
    mk = r["market"]
    assert mk["social_cost"] == -run.average_welfare  # the same days, bit for bit
    assert mk["optimum_exact"] == market.expected_social_cost()
    best = market.best_posted_price()
    assert mk["best_posted_price"] == best.price
    assert mk["best_posted_price_cost_exact"] == best.social_cost
    np.testing.assert_array_equal(mk["payment_received"], -run.average_payment)
    np.testing.assert_allclose(mk["payment_received_exact_truthful"], market.expected_payments())
    assert [p["penalty_days"] for p in r["players"]] == run.penalty_days.tolist()
    assert r["planner_budget_per_day"] == run.budget
    liar_row = r["players"][0]
    assert liar_row["exact_utility"] < liar_row["truthful_utility"]  # inflating loses
    assert not liar_row["caught_by_ledger"]
    assert r["ledger"]["joint_test_has_power"] is False  # 8^9 groups >> 2000 days
    for name in ("utility_convergence.png", "penalty_days.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_run_text_report(tmp_path, capsys):
    assert main(["run", "--days", "2000", "--out", str(tmp_path), "--seed", "4"]) == 0
    text = capsys.readouterr().out
    for phrase in ("Social cost per day", "optimum (exact)", "best posted price",
                   "planner's budget", "pen. days", "inflate by 1 type",
                   "the joint test has no power"):  # fmt: skip
        assert phrase in text, phrase
    assert text.count("truthful ") >= 9


def test_run_naive_inflater_is_caught(tmp_path, capsys):
    args = ["run", "--days", "3000", "--out", str(tmp_path), "--json", "--no-plots"]
    assert main([*args, "--deviation", "inflate-naive", "--players", "4", "--types", "3"]) == 0
    r = _json(capsys)
    liar = r["players"][0]
    assert liar["caught_by_ledger"] and liar["exact_utility"] is None
    assert liar["penalty_days"] > 1000
    assert liar["average_utility"] < r["players"][1]["average_utility"]
    assert r["plots"] == [] and not (tmp_path / "utility_convergence.png").exists()
    assert r["ledger"]["joint_test_has_power"] is True  # 3^3 groups


def test_run_without_deviation_and_with_a_claim(tmp_path, capsys):
    base = ["run", "--days", "1500", "--out", str(tmp_path), "--json", "--no-plots"]
    assert main([*base, "--deviation", "none", "--players", "3"]) == 0
    r = _json(capsys)
    assert {p["strategy"] for p in r["players"]} == {"truthful"}
    for p in r["players"]:
        assert p["exact_utility"] == pytest.approx(p["truthful_utility"], rel=1e-12)
    assert main([*base, "--deviation", "claim-top", "--players", "3"]) == 0
    r = _json(capsys)
    assert r["players"][0]["exact_utility"] < r["players"][0]["truthful_utility"]
    assert r["players"][0]["penalty_days"] == 0  # declares a point mass and bids it


def test_run_shift_is_passed_through(tmp_path, capsys):
    base = ["run", "--days", "1500", "--out", str(tmp_path), "--json", "--no-plots"]
    gains = {}
    for shift in (0, 1, 2):
        assert main([*base, "--players", "3", "--types", "4", "--shift", str(shift)]) == 0
        liar = _json(capsys)["players"][0]
        gains[shift] = liar["exact_utility"] - liar["truthful_utility"]
    assert gains[0] == pytest.approx(0.0, abs=1e-15)  # shifting by 0 levels is the truth
    assert gains[2] < gains[1] < 0


def test_the_built_in_options_need_the_built_in_scenario(tmp_path, capsys):
    from pathlib import Path

    scenario = Path(__file__).parent.parent / "examples" / "feeder-inflate.toml"
    assert main(["run", str(scenario), "--players", "3", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "built-in scenario only" in err, err


def test_figures_command(tmp_path, capsys):
    args = ["figures", "--out", str(tmp_path), "--days", "300", "--replications", "2",
            "--levels", "3", "--workers", "1", "--json"]  # fmt: skip
    assert main(args) == 0
    r = _json(capsys)
    assert [f["figure"] for f in r["figures"]] == ["fig2", "fig3", "fig4"]
    for f in r["figures"]:
        for kind in ("png", "csv", "json"):
            assert (tmp_path / f[kind].split("/")[-1]).exists()
        assert np.isfinite(f["max_abs_z"])
    fig4 = r["figures"][2]
    assert fig4["gap_exact"] > 0 and fig4["best_price"] > 0
    assert r["choices"]["levels_K"] == 3
    assert main(["figures", "--out", str(tmp_path / "b"), "--days", "300", "--replications",
                 "2", "--levels", "3", "--workers", "1", "--only", "4"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "Fig. 4" in text and "gap" in text and "Fig. 2" not in text


def test_incentives_command(capsys):
    args = ["incentives", "--providers", "3", "--levels", "3", "--days", "1500",
            "--replications", "3", "--workers", "1"]  # fmt: skip
    assert main([*args, "--json"]) == 0
    r = _json(capsys)
    assert r["lying_pays"] == {"mechanism": False, "posted price": True, "pay as bid": True}
    assert main(args) == 0
    assert "mechanism   : lying never pays" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--players", "1"],
        ["run", "--types", "0"],
        ["run", "--days", "0"],
        ["figures", "--replications", "1"],
        ["figures", "--workers", "0"],
        ["incentives", "--providers", "1"],
    ],
)
def test_bad_arguments(argv, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path)] if argv[0] != "incentives" else argv) == 2
    assert capsys.readouterr().err.count("\n") == 1
