"""The library's default window exponent gamma and penalty, in one place.

Every entry that takes gamma defaults to ``stochmech.DEFAULT_GAMMA`` (= 1), chosen so that a
truthful player's expected penalty per day vanishes with the horizon under the default penalty
J_p(l) = l^1.5 (docs/modelling.md, "Defaults: gamma = 1, exponent 1.5").
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

import stochmech
from stochmech import BidLedger, DNBEMechanism, FiniteGame, PowerPenalty, window
from stochmech.audit import (
    WindowExploit,
    coverage_warning,
    detection_day,
    flag_probabilities,
    joint_test_power,
    truthful_risk,
)
from stochmech.cli import main
from stochmech.scenario import default_scenario, parse_scenario


def _game() -> FiniteGame:
    v = np.zeros((2, 2, 2, 2))
    v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    return FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])


def test_the_default_truthful_risk_per_day_falls_with_the_horizon() -> None:
    # gamma = 1, J_p(l) = l^1.5 sits inside 1 < exponent < 1 + gamma: the mean penalty per day
    # of a truthful player falls like L^-1/2 (0.00366 at 10^3 days, 0.000379 at 10^5).
    short = truthful_risk([[0.5, 0.5]], 0, 1_000).expected_penalty_per_day
    long = truthful_risk([[0.5, 0.5]], 0, 100_000).expected_penalty_per_day
    assert long < short / 5
    assert short == pytest.approx(0.00366, rel=0.01)
    assert long == pytest.approx(0.000379, rel=0.01)
    # the paper's gamma = 0.5 on the boundary does not (0.0795 -> 0.0675)
    old_short = truthful_risk([[0.5, 0.5]], 0, 1_000, gamma=0.5).expected_penalty_per_day
    old_long = truthful_risk([[0.5, 0.5]], 0, 100_000, gamma=0.5).expected_penalty_per_day
    assert old_long > old_short / 2
    assert old_short == pytest.approx(0.0795, rel=0.01)


def test_the_default_is_one_and_the_penalty_is_l_to_the_1_5() -> None:
    assert stochmech.DEFAULT_GAMMA == 1.0
    pen = DNBEMechanism(_game()).penalty
    assert isinstance(pen, PowerPenalty)
    assert (pen.scale, pen.exponent) == (1.0, 1.5)
    assert 1 < pen.exponent < 1 + stochmech.DEFAULT_GAMMA


def test_every_default_gamma_agrees(tmp_path, capsys) -> None:
    g = stochmech.DEFAULT_GAMMA
    ledger = BidLedger([[0.5, 0.5], [0.5, 0.5]])
    mech = DNBEMechanism(_game())
    scenario = default_scenario(players=2, levels=2)
    finite = parse_scenario(
        """
        [game]
        kind = "finite"
        valuations = [[[[0.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 2.0]]],
                      [[[0.0, 0.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 2.0]]]]
        cost = [[0.0, 9.0], [1.0, 1.0]]
        [[players]]
        supertype = [0.5, 0.5]
        [[players]]
        supertype = [0.5, 0.5]
        """
    )
    args = ["run", "--players", "2", "--types", "2", "--days", "50", "--json", "--no-plots"]
    assert main(args) == 0
    cli = json.loads(capsys.readouterr().out)["mechanism"]["gamma"]
    assert ledger.gamma == mech.gamma == scenario.mechanism.gamma == g
    assert finite.mechanism.gamma == cli == g
    assert mech.open([[0.5, 0.5], [0.5, 0.5]]).ledger.gamma == g
    # the functions that take gamma: their signatures' defaults, and what the default computes
    for fn in (
        window,
        truthful_risk,
        flag_probabilities,
        detection_day,
        joint_test_power,
        coverage_warning,
        BidLedger,
        DNBEMechanism,
        WindowExploit,
    ):
        assert inspect.signature(fn).parameters["gamma"].default == g, fn
    assert window(1000) == window(1000, g) != window(1000, 0.5)
    assert detection_day(0.1) == detection_day(0.1, g) == 689
    assert detection_day(0.1, 0.5) == 501
    up, _, _ = flag_probabilities([0.5, 0.5], [10, 100])
    assert up.tolist() == flag_probabilities([0.5, 0.5], [10, 100], gamma=g)[0].tolist()
