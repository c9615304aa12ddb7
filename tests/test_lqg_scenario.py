"""LQG scenario files: parsing, errors naming the key, ``stochmech lqg run|verify SCENARIO``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from stochmech.cli import main
from stochmech.lqg import LayeredVCG, LQGAgents
from stochmech.lqg.examples import power_system_example
from stochmech.lqg.rationality import expected_budget, individual_rationality
from stochmech.lqg.scenario import (
    load_lqg_scenario,
    parse_lqg_scenario,
    run_scenario,
    verify_scenario,
)
from stochmech.lqg.verification import ScaledDeviation, deviation_gains, monte_carlo_gain

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "lqg"

BASE = """
horizon = 5
seed = 2
[[agents]]
name = "g"
a = 0.9
b = 1.0
q = -1.0
r = -0.5
sigma = 0.1
zeta = 0.2
[[agents]]
name = "l"
a = 1.0
b = -1.0
q = -2.0
r = -1.0
sigma = 0.2
x0 = 0.5
"""


def test_parse_and_run_match_the_library() -> None:
    s = parse_lqg_scenario(BASE + '[verify]\nagents = ["l"]\nsamples = 300\n', name="t")
    agents = LQGAgents([0.9, 1.0], [1.0, -1.0], [-1.0, -2.0], [-0.5, -1.0], [0.1, 0.2], [0.2, 0])
    for key in ("a", "b", "q", "r", "sigma", "zeta"):
        np.testing.assert_array_equal(getattr(s.agents, key), getattr(agents, key))
    assert s.names == ("g", "l") and s.horizon == 5 and s.samples == 300
    assert {d.agent for d in s.deviations} == {1}
    result = run_scenario(s)
    mech = LayeredVCG(agents, 5)
    xi = agents.sample_layer_inputs(5, np.random.default_rng(2))
    xi[0] += [0.0, 0.5]
    run = mech.run(xi)
    np.testing.assert_array_equal(result.run.payments, run.payments)
    np.testing.assert_array_equal(result.realized_budget.per_layer, run.payments.sum(axis=1))
    mean = np.array([0.0, 0.5])
    np.testing.assert_array_equal(
        result.individual_rationality.margins, individual_rationality(mech, mean).margins
    )
    np.testing.assert_array_equal(
        result.expected_budget.per_layer, expected_budget(mech, mean).per_layer
    )


def test_verify_matches_monte_carlo_gain() -> None:
    text = BASE + (
        "[verify]\nstandard = false\nsamples = 500\nseed = 4\n"
        '[[verify.deviations]]\nagent = "g"\nkind = "scaled"\nfactor = 1.5\nlayers = [1, 2]\n'
    )
    check = verify_scenario(parse_lqg_scenario(text))
    mech = LayeredVCG(check.scenario.agents, 5)
    dev = ScaledDeviation(0, layers=(1, 2), factor=1.5)
    kw = {"n_samples": 500, "seed": 4, "initial_mean": [0.0, 0.5]}
    (with_t, without) = check.rows[0]
    assert with_t == monte_carlo_gain(mech, 0, dev, **kw)
    assert without == monte_carlo_gain(mech, 0, dev, transfers=False, **kw)
    assert (with_t, without) == deviation_gains(mech, 0, dev, **kw)
    assert check.passed


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("r = -0.5", "r = 0.5"), r"agents\[0\].r: must be < 0 \(a cost\), got 0.5"),
        (("r = -0.5", "r = 0.0"), r"agents\[0\].r: must be < 0 \(a cost\), got 0.0"),
        (("q = -2.0", "q = 1.0"), r"agents\[1\].q: must be <= 0 \(a cost\), got 1.0"),
        (("a = 0.9", "a = nan"), r"agents\[0\].a: must be finite, got nan"),
        (("sigma = 0.2", "sigma = -0.2"), r"agents\[1\].sigma: must be >= 0 \(a variance\)"),
        (("zeta = 0.2", "zeta = -1"), r"agents\[0\].zeta: must be >= 0 \(a variance\), got -1"),
        (("b = 1.0", 'b = "one"'), r"agents\[0\].b: expected a number, got 'one'"),
        (("b = 1.0", "b = [1.0, 2.0]"), r"agents\[0\].b: expected a number, got \[1.0, 2.0\]"),
        (("b = 1.0", ""), r"agents\[0\].b: missing"),
        (("x0 = 0.5", "x0 = inf"), r"agents\[1\].x0: must be finite, got inf"),
        (("x0 = 0.5", "xo = 0.5"), r"agents\[1\].xo: unknown key"),
        (("horizon = 5", "horizon = 0"), r"horizon: must be >= 1, got 0"),
        (("horizon = 5", "horizon = 2.5"), r"horizon: expected an integer >= 1, got 2.5"),
        (("seed = 2", 'pivot = "vcg"'), r"pivot: must be one of \['clarke', 'none'\], got 'vcg'"),
        (('name = "l"', 'name = "g"'), r"agents: agent names must be distinct"),
    ],
)
def test_bad_values_name_the_key(edit: tuple[str, str], message: str) -> None:
    old, new = edit
    assert old in BASE
    with pytest.raises(ValueError, match=message):
        parse_lqg_scenario(BASE.replace(old, new, 1))


@pytest.mark.parametrize(
    ("verify", "message"),
    [
        ("agents = [2]", r"verify.agents\[0\]: must be < 2 \(the number of agents\), got 2"),
        ('agents = ["x"]', r"verify.agents\[0\]: no agent named 'x'"),
        ("samples = 1", r"verify.samples: must be >= 2, got 1"),
        ("standard = 1", r"verify.standard: expected true or false, got 1"),
        ("standard = false", r"verify: no deviation to check"),
        ("[[verify.deviations]]\nagent = 0\nkind = 'lie'",
         r"verify.deviations\[0\].kind: must be one of \['scaled'"),
        ("[[verify.deviations]]\nagent = 0\nkind = 'scaled'\nbias = 1.0",
         r"verify.deviations\[0\].bias: unknown key"),
        ("[[verify.deviations]]\nagent = 0\nkind = 'biased'\nbias = nan",
         r"verify.deviations\[0\].bias: must be finite, got nan"),
        ("[[verify.deviations]]\nagent = 0\nkind = 'zeroed'\nlayers = [5]",
         r"verify.deviations\[0\].layers\[0\]: must be < horizon = 5, got 5"),
        ("[[verify.deviations]]\nkind = 'zeroed'", r"verify.deviations\[0\].agent: missing"),
    ],
)  # fmt: skip
def test_bad_verify_options_name_the_key(verify: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_lqg_scenario(BASE + "[verify]\n" + verify + "\n")


def test_structural_errors() -> None:
    with pytest.raises(ValueError, match="agents: missing"):
        parse_lqg_scenario("horizon = 3\n")
    with pytest.raises(ValueError, match="agents: at least one agent"):
        parse_lqg_scenario("horizon = 3\nagents = []\n")
    with pytest.raises(ValueError, match="days: unknown key"):
        parse_lqg_scenario(BASE + "days = 3\n")
    with pytest.raises(ValueError, match="invalid TOML"):
        parse_lqg_scenario("horizon = \n")
    with pytest.raises(ValueError, match="cannot read scenario file"):
        load_lqg_scenario("/nonexistent/x.toml")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")))
def test_example_files_load_and_hold(path: Path) -> None:
    s = load_lqg_scenario(path)
    assert s.name == path.stem.removeprefix("lqg-")
    result = run_scenario(s, horizon=min(s.horizon, 8))
    assert result.individual_rationality.holds
    assert result.centralized_control_gap < 1e-12


def test_power_system_file_is_the_builtin_example() -> None:
    s = load_lqg_scenario(EXAMPLES / "power-system.toml")
    ex = power_system_example()
    assert s.names == ex.names
    for key in ("a", "b", "q", "r", "sigma", "zeta"):
        np.testing.assert_array_equal(getattr(s.agents, key), getattr(ex.agents, key))


def test_cli_run_and_verify_scenario(tmp_path, capsys) -> None:
    path = tmp_path / "s.toml"
    verify = '[[verify.deviations]]\nagent = "l"\nkind = "biased"\nbias = 0.5\n'
    path.write_text(BASE + "[verify]\nstandard = false\nsamples = 200\n" + verify)
    assert main(["lqg", "run", str(path), "--json", "--no-plots", "--horizon", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["horizon"] == 4 and out["seed"] == 2 and out["plots"] == []
    assert out["individual_rationality"]["holds"] is True
    assert len(out["budget"]["expected"]["per_layer"]) == 4
    assert out["budget"]["realized"]["total"] == pytest.approx(out["revenue"])
    assert main(["lqg", "run", str(path), "--out", str(tmp_path / "p")]) == 0
    text = capsys.readouterr().out
    assert "individual rationality" in text and "expected budget" in text
    assert (tmp_path / "p" / "states.png").exists()
    assert main(["lqg", "verify", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["passed"] is True and out["rows"][0]["agent"] == "l"
    assert out["rows"][0]["exact_gain"] <= 1e-10
    assert "individual_rationality" in out and "budget" in out
    assert main(["lqg", "verify", str(path), "--samples", "100"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys) -> None:
    def refused(argv: list[str], pattern: str) -> None:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(pattern, err), err

    path = tmp_path / "bad.toml"
    path.write_text(BASE.replace("r = -0.5", "r = 0.5"))
    refused(["lqg", "run", str(path)], r"error: .*bad.toml: agents\[0\].r: must be < 0")
    good = tmp_path / "good.toml"
    good.write_text(BASE)
    refused(["lqg", "verify", str(good), "--horizon", "0"], "--horizon must be >= 1, got 0")
    refused(["lqg", "verify", str(good), "--samples", "1"], "--samples must be >= 2, got 1")


def test_builtin_commands_report_ir_and_budget(capsys) -> None:
    assert main(["lqg", "run", "--horizon", "6", "--no-plots", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    mech = LayeredVCG(power_system_example().agents, 6)
    np.testing.assert_allclose(
        out["budget"]["expected"]["per_layer"], expected_budget(mech).per_layer
    )
    assert out["individual_rationality"]["holds"] is True
    assert main(["lqg", "verify", "--horizon", "3", "--samples", "50"]) == 0
    assert "individual rationality" in capsys.readouterr().out
