"""Truthful risk and the coverage warning in ``stochmech run`` and ``stochmech audit``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stochmech.audit import coverage_warning, truthful_risk
from stochmech.cli import main
from stochmech.scenario import load_scenario

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_run_reports_truthful_risk_and_coverage(tmp_path, capsys) -> None:
    scenario = str(EXAMPLES / "feeder-inflate.toml")
    args = ["run", scenario, "--days", "2000", "--seed", "1", "--no-plots", "--json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    s = load_scenario(scenario)
    m = s.mechanism
    for i, p in enumerate(data["players"]):
        ref = truthful_risk(
            s.true_supertypes[i : i + 1], 0, 2000, gamma=m.gamma, penalty=m.penalty, joint=False
        )
        assert p["truthful_risk"]["expected_penalty"] == pytest.approx(ref.expected_penalty)
        assert p["truthful_risk"]["exact"] == ref.exact
        assert p["truthful_risk"]["joint_test"] == "not included"
    n, k = s.true_supertypes.shape
    assert data["coverage"] == coverage_warning(
        n, k, 2000, supertypes=s.true_supertypes, gamma=m.gamma
    )
    assert main(args[:-1]) == 0
    text = capsys.readouterr().out
    assert "risk/day" in text and "Coverage: unilateral deviations" in text


def test_audit_reports_truthful_risk_and_coverage(tmp_path, capsys) -> None:
    scenario = str(EXAMPLES / "feeder-inflate.toml")
    args = ["audit", scenario, "--days", "1500", "--history-days", "300", "--no-plots"]
    main([*args, "--player", "0"])
    text = capsys.readouterr().out
    assert "Truthful risk of player 0 (bidding truthfully)" in text
    assert "the joint test's extra risk not included" in text
    assert "Coverage: unilateral deviations" in text


def test_audit_json_without_penalties_has_no_truthful_risk(capsys) -> None:
    scenario = str(EXAMPLES / "feeder-no-penalty.toml")
    args = ["audit", scenario, "--days", "1500", "--history-days", "300", "--no-plots", "--json"]
    main([*args, "--player", "0"])
    data = json.loads(capsys.readouterr().out)
    assert data["audits"][0]["truthful_risk"]["expected_penalty"] == 0.0
    assert data["coverage"].startswith("Coverage: unilateral deviations")


def test_built_in_run_reports_risk_and_coverage(tmp_path, capsys) -> None:
    args = ["run", "--days", "1500", "--players", "5", "--types", "3", "--json", "--no-plots"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["players"][1]["truthful_risk"]["expected_penalty_per_day"] > 0
    assert "Coverage: unilateral deviations" in r["coverage"]
