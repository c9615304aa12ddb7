"""Calibration of gamma and the penalty: detection days, the risk targets, the trade-off plot."""

from __future__ import annotations

import itertools

import matplotlib
import numpy as np
import pytest

import stochmech
from stochmech import BidLedger
from stochmech.audit import (
    calibrate,
    detection_day,
    lie_size,
    plot_calibration,
    truthful_risk,
    truthful_utility_scale,
)
from stochmech.audit.risk import sample_truthful_bids
from stochmech.games.finite import FiniteGame
from stochmech.ledger import PowerPenalty

matplotlib.use("Agg")


@pytest.mark.parametrize("lie", [0.3, 0.1, 0.05, 0.02])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_detection_day_is_the_first_day_the_window_is_below_the_lie(lie, gamma):
    day = detection_day(lie, gamma)
    scan = next(ell for ell in range(2, 10**6) if stochmech.window(ell, gamma) <= lie)
    assert day == scan


def test_detection_day_predicts_when_a_lie_is_caught():
    # bids follow (0.62, 0.38) while the declaration is (0.5, 0.5): drift 0.12
    declared = np.array([[0.5, 0.5]])
    law = np.array([[0.62, 0.38]])
    size = lie_size(declared[0], law[0])
    assert size == pytest.approx(0.12)
    predicted = detection_day(size, 0.5)
    rng = np.random.default_rng(4)
    caught = []
    for _ in range(200):
        flags = (
            BidLedger(declared).record(sample_truthful_bids(law, 3 * predicted, rng)).flags[:, 0]
        )
        quiet = np.flatnonzero(~flags)
        caught.append(int(quiet[-1]) + 2 if quiet.size else 1)
    median = float(np.median(caught))
    assert 0.5 * predicted <= median <= 2.0 * predicted


def test_calibration_meets_its_targets_and_matches_truthful_risk():
    theta = [[0.5, 0.5], [0.3, 0.7]]
    cal = calibrate(0.002, theta, 20_000)
    assert cal.feasible and cal.scale == 0.002
    assert cal.relative_risk <= 0.01 and cal.tail_risk <= 1e-3
    assert 1 < cal.exponent < 1 + cal.gamma
    # the reported risk is the truthful risk of the worse player, relative to u * L
    # (with the joint test's extra risk: the same 100 paths of 10,000 days, bounded after)
    assert "simulated on days 1..10000, 100 paths" in cal.joint_note
    assert "bounded on days 10001..20000" in cal.joint_note
    risks = [
        truthful_risk(
            theta, i, 20_000, gamma=cal.gamma, penalty=cal.penalty, paths=100, joint_days=10_000
        )
        for i in range(2)
    ]
    worst = max(r.expected_penalty for r in risks)
    assert cal.relative_risk == pytest.approx(worst / (0.002 * 20_000), rel=1e-9)
    assert cal.tail_risk == pytest.approx(max(r.any_flag_after(100) for r in risks), rel=1e-9)
    # no smaller gamma on the grid is feasible, and detection grows with gamma
    assert all(not p["feasible"] for p in cal.grid if p["gamma"] < cal.gamma)
    days = sorted({(p["gamma"], p["detection_days"]) for p in cal.grid})
    assert all(a[1][0] <= b[1][0] for a, b in itertools.pairwise(days))
    assert cal.mechanism_options()["gamma"] == cal.gamma
    assert "meets the targets" in str(cal)


def test_the_old_window_fails_the_tail_target():
    # gamma = 0.5 with exponent 1.5 is not even on the grid (exponent >= 1 + gamma: the risk
    # per day does not vanish); with a smaller exponent the tail target still fails
    cal = calibrate(1.0, [[0.5, 0.5]], 10_000, gammas=[0.5], exponents=[1.25, 1.5])
    assert not cal.feasible and cal.tail_risk > 1e-2
    assert [p["exponent"] for p in cal.grid] == [1.25]


def test_value_scale_from_a_game():
    v = np.zeros((2, 2, 2, 2))
    v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    theta = [[0.5, 0.5], [0.5, 0.5]]
    u = truthful_utility_scale(game, theta)
    cal = calibrate(game, theta, 2_000)
    assert cal.scale == pytest.approx(u[u > 0].min())
    # a truthful simulation's utility per day matches the scale (penalties switched off)
    mech = stochmech.DNBEMechanism(game, penalize=False)
    sim = stochmech.simulate(game, theta, days=40_000, seed=3, mechanism=mech)
    assert sim.average_utility == pytest.approx(u, abs=0.03)


def test_plot_draws_on_a_given_axis():
    import matplotlib.pyplot as plt

    cal = calibrate(1.0, [[0.5, 0.5]], 2_000)
    fig, ax = plt.subplots()
    assert plot_calibration(cal, ax=ax) is fig
    assert len(ax.lines) >= 2
    plt.close(fig)
    with pytest.raises(ValueError, match="not one of"):
        plot_calibration(cal, lie=0.33)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((0.0, [[0.5, 0.5]], 100), {}, "value scale"),
        ((float("nan"), [[0.5, 0.5]], 100), {}, "value scale"),
        (("x", [[0.5, 0.5]], 100), {}, "game_or_value_scale"),
        ((1.0, [[0.5, 0.4]], 100), {}, "sums to"),
        ((1.0, [[0.5, 0.5]], 100), {"exponents": [1.0]}, "exponents"),
        ((1.0, [[0.5, 0.5]], 100), {"gammas": [0.0]}, "gammas"),
        ((1.0, [[0.5, 0.5]], 100), {"target_risk": -1}, "target_risk"),
        ((1.0, [[0.5, 0.5]], 100), {"lies": [0.0]}, "lie sizes"),
        ((1.0, [[0.5, 0.5]], 100), {"gammas": [0.1], "exponents": [1.5]}, "1 \\+ gamma"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        calibrate(*args, **kwargs)
    with pytest.raises(ValueError, match="lie size"):
        detection_day(-0.1)
    with pytest.raises(ValueError, match="pmfs"):
        lie_size([0.5, 0.5], [1.0])


def test_power_penalty_of_the_calibration():
    cal = calibrate(3.0, [[0.4, 0.6]], 1_000)
    assert cal.penalty == PowerPenalty(scale=3.0, exponent=cal.exponent)


def test_calibration_states_what_its_risk_covers():
    one = calibrate(1.0, [[0.5, 0.5]], 2_000)
    assert one.joint_note.startswith("frequency test only (one player")
    off = calibrate(1.0, [[0.5, 0.5], [0.2, 0.8]], 2_000, joint=False)
    assert "joint test's extra risk is NOT included" in off.joint_note
    assert "NOT included" in str(off) and off.to_dict()["joint_note"] == off.joint_note
    assert all(p["joint_relative_risk"] == 0.0 for p in off.grid)
    on = calibrate(1.0, [[0.5, 0.5], [0.2, 0.8]], 2_000, joint_paths=50)
    assert "simulated on days 1..2000, 50 paths per gamma)" in on.joint_note
    for p_on, p_off in zip(on.grid, off.grid, strict=True):
        # the worst player's risk with the joint part, whose frequency part is at most the
        # frequency-only worst
        assert p_on["relative_risk"] >= p_off["relative_risk"]
        assert p_on["relative_risk"] - p_on["joint_relative_risk"] <= p_off["relative_risk"] * (
            1 + 1e-12
        )
        assert p_on["tail_risk"] >= p_off["tail_risk"]


def test_calibration_counts_the_joint_test_where_it_matters():
    # few groups, small gamma: honest player 0 is flagged by the joint test alone at times
    theta = [[0.5, 0.5], [0.2, 0.8]]
    kw = {"gammas": [0.1], "exponents": [1.05], "joint_paths": 400, "seed": 1}
    on = calibrate(1.0, theta, 300, **kw)
    off = calibrate(1.0, theta, 300, joint=False, **kw)
    assert on.grid[0]["joint_relative_risk"] > 0
    assert on.relative_risk > off.relative_risk
    # the joint part is truthful_risk's simulated excess on the same paths
    risks = [
        truthful_risk(theta, i, 300, gamma=0.1, penalty=on.penalty, paths=400, seed=1)
        for i in range(2)
    ]
    worst = max(r.expected_penalty for r in risks)
    assert on.relative_risk == pytest.approx(worst / 300, rel=1e-9)
