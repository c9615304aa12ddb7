"""``stochmech run`` (default scenario), ``stochmech figures`` and ``stochmech incentives``."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from stochmech.cli import main
from stochmech.cli.demand_response import default_market, run_default
from stochmech.simulation import simulate
from stochmech.strategies import StationaryMisreport, Truthful, shift_kernel


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_run_json_is_the_library_simulation(tmp_path, capsys):
    assert main(["run", "--days", "2000", "--out", str(tmp_path), "--json"]) == 0
    r = _json(capsys)
    market = default_market(10, 8)
    theta = market.supertype_bids()
    liar = StationaryMisreport(shift_kernel(8, 1), supertype_bid=theta[0] @ shift_kernel(8, 1))
    run = simulate(market, theta, [liar] + [Truthful() for _ in range(9)], days=2000, seed=0)
    truth = simulate(market, theta, days=2000, seed=0)
    assert r["scenario"]["providers"] == 10 and r["scenario"]["days"] == 2000
    assert r["social_cost"]["this_run"] == pytest.approx(-run.average_welfare, rel=1e-14)
    assert r["social_cost"]["all_truthful_same_days"] == pytest.approx(-truth.average_welfare)
    assert r["social_cost"]["optimum_exact"] == market.expected_social_cost()
    best = market.best_posted_price()
    assert r["social_cost"]["best_posted_price"] == best.price
    assert r["social_cost"]["best_posted_price_cost_exact"] == best.social_cost
    pays = [p["payment_received"] for p in r["providers"]]
    np.testing.assert_allclose(pays, -run.average_payment, rtol=1e-14)
    assert [p["penalty_days"] for p in r["providers"]] == run.penalty_days.tolist()
    np.testing.assert_allclose(
        [p["payment_received_exact_truthful"] for p in r["providers"]], market.expected_payments()
    )
    assert r["planner"]["budget_per_day"] == pytest.approx(run.budget, rel=1e-14)
    dev = r["deviator"]
    assert dev["gain"] == pytest.approx(run.average_utility[0] - truth.average_utility[0])
    assert dev["exact_long_run_gain"] < 0 and not dev["caught_by_ledger"]
    assert r["ledger"]["joint_test_has_power"] is False  # 8^9 groups >> 2000 days
    for name in ("run_convergence.png", "run_paths.csv", "run_report.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "run_convergence.png").read_bytes().startswith(b"\x89PNG")
    paths = np.loadtxt(tmp_path / "run_paths.csv", delimiter=",", skiprows=2)
    assert paths[-1, 0] == 2000
    assert paths[-1, 1] == pytest.approx(-run.average_welfare, rel=1e-9)


def test_run_text_report(tmp_path, capsys):
    assert main(["run", "--days", "2000", "--out", str(tmp_path), "--seed", "4"]) == 0
    text = capsys.readouterr().out
    for phrase in ("Social cost per day", "optimum (exact)", "best posted price", "Planner",
                   "budget", "penalty days", "Deviator (provider 0)", "it loses",
                   "only the frequency test has power"):  # fmt: skip
        assert phrase in text, phrase
    assert text.count("truthful ") >= 9


def test_run_naive_inflater_is_caught(tmp_path, capsys):
    args = ["run", "--days", "3000", "--out", str(tmp_path), "--json", "--no-plots"]
    assert main([*args, "--deviation", "inflate-naive", "--players", "4", "--types", "3"]) == 0
    r = _json(capsys)
    assert r["deviator"]["caught_by_ledger"] and r["deviator"]["exact_long_run_gain"] is None
    assert r["providers"][0]["penalty_days"] > 1000
    assert r["deviator"]["gain"] < 0
    assert r["files"] == [] and not (tmp_path / "run_convergence.png").exists()
    assert r["ledger"]["joint_test_has_power"] is True  # 3^3 groups


def test_run_without_deviation_and_with_a_claim(tmp_path, capsys):
    base = ["run", "--days", "1500", "--out", str(tmp_path), "--json", "--no-plots"]
    assert main([*base, "--deviation", "none", "--players", "3"]) == 0
    r = _json(capsys)
    assert r["deviator"]["gain"] == 0.0 and r["deviator"]["exact_long_run_gain"] == 0.0
    assert {p["strategy"] for p in r["providers"]} == {"truthful"}
    assert main([*base, "--deviation", "claim-top", "--players", "3"]) == 0
    r = _json(capsys)
    assert r["deviator"]["exact_long_run_gain"] < 0
    assert r["providers"][0]["penalty_days"] == 0  # declares a point mass and bids it


def test_run_shift_is_passed_through(tmp_path, capsys):
    base = ["run", "--days", "1500", "--out", str(tmp_path), "--json", "--no-plots"]
    gains = {}
    for shift in (0, 1, 2):
        assert main([*base, "--players", "3", "--types", "4", "--shift", str(shift)]) == 0
        r = _json(capsys)
        assert r["scenario"]["shift"] == shift
        gains[shift] = r["deviator"]["exact_long_run_gain"]
    assert gains[0] == pytest.approx(0.0, abs=1e-15)  # shifting by 0 levels is the truth
    assert gains[2] < gains[1] < 0


def test_run_default_needs_only_the_contract_attributes(tmp_path, capsys):
    args = argparse.Namespace(days=1000, seed=2, out=str(tmp_path / "o"), json=True)
    assert run_default(args) == 0
    r = _json(capsys)
    assert r["scenario"]["providers"] == 10 and r["scenario"]["levels"] == 8
    assert r["scenario"]["deviation"] == "inflate"
    assert (tmp_path / "o" / "run_convergence.png").exists()


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
        ["run", "--types", "300"],
        ["run", "--days", "1"],
        ["figures", "--replications", "1"],
        ["figures", "--workers", "0"],
        ["incentives", "--providers", "1"],
    ],
)
def test_bad_arguments(argv, tmp_path):
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path)] if argv[0] != "incentives" else argv)
