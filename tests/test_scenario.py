"""Scenario files: the examples load and mean what they say; every mistake names its key."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

import stochmech.scenario as scenario_module
from stochmech import FiniteGame
from stochmech.audit import DaySignal, WindowExploit
from stochmech.markets import DemandResponseMarket, betaprime_supertype
from stochmech.scenario import load_scenario, parse_scenario
from stochmech.strategies import (
    FixedBid,
    HistoryDependent,
    PublicSignalCollusion,
    StationaryMisreport,
    SupertypeLie,
    Truthful,
)

# DNBE scenarios; the LQG scenario files (examples/lqg/) are tested in test_lqg_scenario.py
EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.toml"))

FINITE = """
[game]
kind = "finite"
valuations = [[[[0.0, 1.0]], [[0.0, 2.0]]], [[[0.0, 1.5]], [[0.0, 0.5]]]]
cost = [[0.0, 1.2]]
"""


def finite(players: str, extra: str = "") -> str:
    return extra + FINITE + players


TWO_PLAYERS = """
[[players]]
supertype = [0.5, 0.5]
[[players]]
supertype = [0.25, 0.75]
"""


def test_there_are_examples_of_every_kind() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"feeder-inflate", "demand-response-inflate", "collusion"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_loads_and_runs(path: Path) -> None:
    s = load_scenario(path)
    assert s.name == path.stem and s.source == str(path)
    assert s.true_supertypes.shape == (s.game.n_players, s.game.n_types)
    assert len(s.strategies) == len(s.player_names) == s.game.n_players
    res = s.simulate(days=300)
    assert res.days == 300 and np.all(np.isfinite(res.average_utility))


def test_feeder_example_is_what_its_comments_say() -> None:
    s = load_scenario(Path(__file__).parents[1] / "examples" / "feeder-inflate.toml")
    assert isinstance(s.game, FiniteGame) and s.game.valuation_table.shape == (2, 3, 2, 3)
    inflate = s.strategies[0]
    assert isinstance(inflate, StationaryMisreport)
    np.testing.assert_array_equal(inflate.kernel, [[0, 1, 0], [0, 0, 1], [0, 0, 1]])
    assert isinstance(s.strategies[1], Truthful)
    assert s.audit_players == (0,) and s.audit_options == {"history_days": 20000}
    assert s.mechanism.penalize and s.mechanism.first_stage_payment


def test_demand_response_example_uses_the_beta_prime_providers() -> None:
    s = load_scenario(Path(__file__).parents[1] / "examples" / "demand-response-inflate.toml")
    assert isinstance(s.game, DemandResponseMarket)
    expected = betaprime_supertype(1.0, 2.0, 4)
    np.testing.assert_allclose(s.game.type_values, expected.values)
    np.testing.assert_allclose(s.true_supertypes, np.full((3, 4), 0.25))


def test_collusion_example_shares_one_signal() -> None:
    s = load_scenario(Path(__file__).parents[1] / "examples" / "collusion.toml")
    a, b = s.strategies
    assert isinstance(a, PublicSignalCollusion) and isinstance(b, PublicSignalCollusion)
    assert isinstance(a.signal, DaySignal) and a.signal is b.signal
    res = s.simulate(days=3000)
    assert res.penalty_days.min() > 2500  # the joint test catches both


def test_every_strategy_kind() -> None:
    text = finite(
        """
[[players]]
supertype = [0.5, 0.5]
strategy = { kind = "kernel", kernel = [[0.5, 0.5], [0.0, 1.0]], declare = [0.25, 0.75] }
[[players]]
supertype = [0.25, 0.75]
strategy = { kind = "supertype-lie", bid = [0.5, 0.5], coupling = "independent" }
""",
    )
    s = parse_scenario(text)
    assert isinstance(s.strategies[0], StationaryMisreport)
    assert s.strategy_specs == (
        "misreport kernel, declares [0.25, 0.75]",
        "supertype lie [0.5, 0.5] (independent bids)",
    )
    assert isinstance(s.strategies[1], SupertypeLie)
    others = {
        '"yesterday"': HistoryDependent,
        '{ kind = "fixed", type = 1 }': FixedBid,
        '{ kind = "window-exploit", margin = 0.5 }': WindowExploit,
        '{ kind = "shift", steps = -1, declare = "truthful" }': StationaryMisreport,
        '"truthful"': Truthful,
    }
    for spec, cls in others.items():
        s = parse_scenario(
            finite(
                f"[[players]]\nsupertype = [0.5, 0.5]\nstrategy = {spec}\n"
                "[[players]]\nsupertype = [0.5, 0.5]\n"
            )
        )
        assert isinstance(s.strategies[0], cls), spec


def test_demand_response_laws_and_lies() -> None:
    s = parse_scenario(
        """
[mechanism]
gamma = 0.25
penalty = { exponent = 2.0, scale = 0.5 }
first_stage_payment = false
[game]
kind = "demand-response"
reserve = { values = [1.0, 2.0], probs = [0.5, 0.5] }
shortage = { values = [0.5, 1.5], probs = [0.5, 0.5] }
[[players]]
supertype = { values = [1.0, 3.0], probs = [0.4, 0.6] }
strategy = { kind = "supertype-lie", bid = { values = [3.0], probs = [1.0] } }
[[players]]
supertype = 1.0
""",
        name="laws",
    )
    assert s.game.n_types == 2 and s.true_supertypes.tolist() == [[0.4, 0.6], [1.0, 0.0]]
    assert s.strategies[0].bid.tolist() == [0.0, 1.0]
    m = s.mechanism
    assert (m.gamma, m.penalty.exponent, m.penalty.scale) == (0.25, 2.0, 0.5)
    assert not m.first_stage_payment and m.penalize
    assert s.audit_players == (0,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[game]\nkind = 'finite'\n", r"scenario: missing key 'players'"),
        ("days = 0\n" + FINITE + TWO_PLAYERS, r"days: must be >= 1, got 0"),
        ("seed = 'x'\n" + FINITE + TWO_PLAYERS, r"seed: expected an integer, got 'x'"),
        ("nmae = 'x'\n" + FINITE + TWO_PLAYERS, r"scenario: unknown key 'nmae'"),
        ("name = 'a/b'\n" + FINITE + TWO_PLAYERS, r"name: must be a non-empty file-name-safe"),
        (
            "[game]\nkind = 'poker'\n" + TWO_PLAYERS,
            r"game.kind: expected one of 'finite', 'demand-response', got 'poker'",
        ),
        (
            FINITE.replace("cost = [[0.0, 1.2]]", "cost = [[0.0, 1.2, 3.0]]") + TWO_PLAYERS,
            r"game: cost must have shape \(A, B\) = \(1, 2\)",
        ),
        (
            FINITE.replace("0.5]]]]", "'x']]]]") + TWO_PLAYERS,
            r"game.valuations: expected a 4-D array of numbers",
        ),
        (FINITE + "[[players]]\nsupertype = [0.5, 0.5]\n", r"describes 2 players but there are 1"),
        (
            FINITE + "[[players]]\nsupertype = [0.5, 0.6]\n[[players]]\nsupertype = [1, 0]\n",
            r"players\[0\].supertype: probabilities sum to 1.1",
        ),
        (
            FINITE + "[[players]]\nsupertype = [1.5, -0.5]\n[[players]]\nsupertype = [1, 0]\n",
            r"players\[0\].supertype\[1\]: probability -0.5 is negative",
        ),
        (
            FINITE + TWO_PLAYERS + "strategy = 'honest'\n",
            r"players\[1\].strategy.kind: expected one of 'truthful', 'shift'",
        ),
        (
            FINITE + TWO_PLAYERS + "strategy = { kind = 'shift', steps = 1.5 }\n",
            r"players\[1\].strategy.steps: expected an integer, got 1.5",
        ),
        (
            FINITE + TWO_PLAYERS + "strategy = { kind = 'inflate', steps = 0 }\n",
            r"players\[1\].strategy.steps: inflate needs steps >= 1, got 0",
        ),
        (
            FINITE + TWO_PLAYERS + "strategy = { kind = 'shift', stpes = 1 }\n",
            r"players\[1\].strategy: unknown key 'stpes'",
        ),
        (
            FINITE + TWO_PLAYERS + "strategy = { kind = 'fixed', type = 2 }\n",
            r"players\[1\].strategy.type: must be a type index in \[0, 1\], got 2",
        ),
        (
            FINITE + TWO_PLAYERS + "strategy = { kind = 'kernel', kernel = [[1.0, 0.0]] }\n",
            r"players\[1\].strategy.kernel: expected shape \(2, 2\), got \(1, 2\)",
        ),
        (
            FINITE + TWO_PLAYERS + "strategy = { kind = 'shift', declare = 'lies' }\n",
            r"players\[1\].strategy.declare: expected one of 'induced', 'truthful', got 'lies'",
        ),
        (
            FINITE
            + "[[players]]\nsupertype = [0.5, 0.5]\n"
            + "strategy = { kind = 'collusion', group = 'g', kernels = [[[1, 0], [1, 0]]] }\n"
            + "[[players]]\nsupertype = [0.5, 0.5]\n"
            + "strategy = { kind = 'collusion', group = 'g', kernels = [[[1, 0], [1, 0]], "
            + "[[0, 1], [0, 1]]] }\n",
            r"players\[1\].strategy.kernels: group 'g' uses a signal with 1 values, got 2",
        ),
        (
            "[mechanism]\npenalty = { exponent = 1.0 }\n" + FINITE + TWO_PLAYERS,
            r"mechanism.penalty.exponent: must be > 1 so that J_p\(l\)/l -> infinity",
        ),
        (
            "[mechanism]\npenalize = 'no'\n" + FINITE + TWO_PLAYERS,
            r"mechanism.penalize: expected true or false, got 'no'",
        ),
        (
            FINITE + TWO_PLAYERS + "[audit]\nplayers = [2]\n",
            r"audit.players\[0\]: player 2 does not exist \(n = 2\)",
        ),
        (
            "[game]\nkind = 'demand-response'\nreserve = { mean = -1.0, var = 1.0, levels = 3 }\n"
            + "[[players]]\nsupertype = 1.0\n",
            r"game.reserve.mean: must be > 0, got -1.0",
        ),
        (
            "[game]\nkind = 'demand-response'\nreserve = 1.0\n[[players]]\nsupertype = -2.0\n",
            r"game: providers\[0\] has non-positive cost parameter -2.0",
        ),
        (
            "[game]\nkind = 'demand-response'\nreserve = 1.0\n[[players]]\nsupertype = 1.0\n"
            + "strategy = { kind = 'supertype-lie', bid = { values = [5.0], probs = [1.0] } }\n",
            r"players\[0\].strategy.bid: value 5.0 \(probability 1.0\) is not in the type space",
        ),
        ("[game\n", r"not valid TOML"),
    ],
)
def test_errors_name_the_key_and_the_value(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_scenario(text)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read scenario file .*nope.toml"):
        load_scenario(tmp_path / "nope.toml")


def test_switches_and_audit_of_a_scenario() -> None:
    s = parse_scenario(finite(TWO_PLAYERS), name="tiny")
    broken = s.with_switches(penalize=False)
    assert not broken.mechanism.penalize and s.mechanism.penalize
    assert broken.mechanism.game is s.game
    report = s.audit(1, days=2000, history_days=500)
    assert report.player == 1 and report.long_run_ok
    with pytest.raises(ValueError, match=r"player must be an integer in \[0, 1\], got 2"):
        s.audit(2)


def test_docstring_examples() -> None:
    result = doctest.testmod(scenario_module)
    assert result.attempted > 0 and result.failed == 0
