"""Coalitions audited as a group: exact gains against independent computations and simulation;
the joint test's drift and power against the ledger."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech import BidLedger, DNBEMechanism
from stochmech.audit import (
    DaySignal,
    coalition_audit,
    coalition_gain_exact,
    comonotone_collusion,
    coverage_warning,
    joint_drift,
    joint_test_power,
    quantile_coupling,
    ring_drift,
    stationary_gain,
)
from stochmech.audit.risk import sample_truthful_bids
from stochmech.games.finite import FiniteGame
from stochmech.strategies import PublicSignalCollusion, shift_kernel


def random_game(seed: int, n: int = 3, k: int = 2) -> FiniteGame:
    rng = np.random.default_rng(seed)
    return FiniteGame(rng.normal(size=(n, k, 2, 3)), rng.normal(size=(2, 3)))


def pmf(rng: np.random.Generator, k: int) -> np.ndarray:
    p = rng.random(k) + 0.05
    return p / p.sum()


@settings(max_examples=max(3, settings.default.max_examples // 4))
@given(seed=st.integers(0, 10_000))
def test_single_member_exact_gain_equals_the_stationary_lp_formula(seed):
    rng = np.random.default_rng(seed)
    game = random_game(seed, n=2, k=3)
    theta = np.array([pmf(rng, 3), pmf(rng, 3)])
    kernel = np.array([pmf(rng, 3) for _ in range(3)])
    declared = theta.copy()
    declared[0] = theta[0] @ kernel
    mech = DNBEMechanism(game, penalize=False)
    exact = coalition_gain_exact(game, theta, declared, [1.0], {0: kernel[None]}, mechanism=mech)
    ref = stationary_gain(game, 0, theta[0], declared, kernel, mechanism=mech)
    assert exact[0] == pytest.approx(ref, abs=1e-10)


def brute_force_ring_gain(game, theta, mech):
    """Total gain of a 2-player comonotone ring (players 0, 1) by a direct double loop over
    true type profiles and the ring's joint bid, from eqs. (5), (14) and (15)."""
    n, k = theta.shape
    pi = quantile_coupling(theta[0], theta[1])
    o1 = game.first_stage(theta)
    opening = mech.opening(theta)
    total = 0.0
    for delta in itertools.product(range(k), repeat=n):
        p = np.prod([theta[j, delta[j]] for j in range(n)])
        for b0, b1 in itertools.product(range(k), repeat=2):
            q = p * pi[b0, b1]
            if q == 0:
                continue
            bid = np.array([[b0, b1, *delta[2:]]])
            true = np.array([delta])
            o2 = game.second_stage(o1, bid)
            v_true = game.valuations(true, o1, o2)[0]
            v_bid = game.valuations(bid, o1, o2)[0]
            for j in (0, 1):
                total += q * (v_true[j] - v_bid[j])
    # the declarations are the truth, so nu - p^F cancels against the truthful utility
    del opening
    return total


def test_ring_gain_matches_brute_force_and_simulation():
    game = random_game(0)
    theta = np.array([[0.5, 0.5]] * 3)
    ring = comonotone_collusion(0, 1, theta[0], theta[1], salt=3)
    mech = DNBEMechanism(game, penalize=False)
    signal = ring[0].signal
    exact = coalition_gain_exact(
        game, theta, theta, signal.probs, {0: ring[0].kernels, 1: ring[1].kernels}, mechanism=mech
    )
    assert exact.sum() == pytest.approx(brute_force_ring_gain(game, theta, mech), abs=1e-12)
    result = coalition_audit(game, theta, ring, days=20_000, seed=2, mechanism=mech)
    assert result.exact_gain == pytest.approx(exact.sum())
    assert abs(result.total_gain - exact.sum()) <= 4 * result.total_gain_se + 1e-3
    assert result.drift == pytest.approx(0.125)


def test_ring_is_caught_by_the_joint_test_at_three_players():
    game = random_game(1)
    theta = [[0.5, 0.5]] * 3
    result = coalition_audit(game, theta, comonotone_collusion(0, 1, theta[0], theta[1]), 4_000)
    assert result.caught
    assert all(0 < c.flagged_every_day_from <= 3 * result.detection_day for c in result.catch)
    assert result.total_gain < 0  # penalties dwarf anything the ring earns
    text = str(result)
    assert "coalition [0, 1]" in text and "Coverage: unilateral" in text
    assert result.to_dict()["caught"] is True


def test_shared_lie_kernel_is_seen_by_the_frequency_test():
    game = random_game(2)
    theta = [[0.5, 0.5]] * 3
    signal = DaySignal([1.0], salt=1)
    lie = shift_kernel(2, 1)[None]
    members = {j: PublicSignalCollusion(signal, lie, supertype_bid="truthful") for j in (0, 2)}
    result = coalition_audit(game, theta, members, 2_000, seed=4)
    assert result.drift == pytest.approx(0.5)  # bids are always type 1, declared 1/2
    assert result.caught and result.members == (0, 2)


@pytest.mark.parametrize("n, k", [(3, 2), (4, 2), (3, 3)])
def test_joint_drift_closed_form_and_dense_law_agree(n, k):
    rng = np.random.default_rng(n * 10 + k)
    p = pmf(rng, k)
    dense = joint_drift(np.tile(p, (n, 1)), [0, 1], quantile_coupling(p, p))
    assert dense == pytest.approx(ring_drift(n, p), rel=1e-12)


def test_joint_statistic_converges_to_the_drift_on_the_ledger():
    theta = np.array([[0.5, 0.5]] * 4)
    rng = np.random.default_rng(3)
    bids = sample_truthful_bids(theta, 200_000, rng)
    bids[:, 1] = bids[:, 0]  # comonotone ring of identical declarations
    ledger = BidLedger(theta)
    ledger.record(bids)
    assert ledger.joint_max()[0] == pytest.approx(ring_drift(4, [0.5, 0.5]), abs=0.004)


def test_joint_test_power_small_and_large_rings():
    power = joint_test_power([3, 5, 20], days=60_000, seed=1)
    caught = dict(zip(power.n_players, power.caught_from, strict=True))
    predicted = dict(zip(power.n_players, power.predicted_day, strict=True))
    for n in (3, 5):
        assert 0 < caught[n] <= 3 * predicted[n] and caught[n] >= predicted[n] / 3
    assert caught[20] == 0 and predicted[20] > 10**9
    assert "not caught" in str(power)
    assert power.rows()[0]["groups"] == 4


def test_coverage_warning_texts():
    small = coverage_warning(3, 2, 10_000, supertypes=[[0.5, 0.5]] * 3)
    assert "WARNING" not in small and "unilateral" in small
    late = coverage_warning(10, 2, 10_000, supertypes=[[0.5, 0.5]] * 10)
    assert "WARNING" in late and "after the horizon" in late
    big = coverage_warning(30, 5, 100_000)
    assert "WARNING" in big and "no power" in big
    assert coverage_warning(1, 4, 100) == (
        "Coverage: unilateral deviations (one player at a time, the others truthful)."
    )
    with pytest.raises(ValueError, match="n_players"):
        coverage_warning(0, 2, 10)


def test_bad_input():
    game = random_game(0)
    theta = [[0.5, 0.5]] * 3
    with pytest.raises(ValueError, match="at least one member"):
        coalition_audit(game, theta, {}, 100)
    with pytest.raises(ValueError, match="members must be players"):
        coalition_audit(game, theta, comonotone_collusion(0, 5, theta[0], theta[1]), 100)
    with pytest.raises(ValueError, match="days"):
        coalition_audit(game, theta, comonotone_collusion(0, 1, theta[0], theta[1]), 1)
    with pytest.raises(ValueError, match="signal_probs"):
        coalition_gain_exact(game, theta, theta, [0.5], {0: np.eye(2)[None]})
    with pytest.raises(ValueError, match="shape"):
        coalition_gain_exact(game, theta, theta, [1.0], {0: np.eye(3)[None]})
    with pytest.raises(ValueError, match=r"2\.\.64"):
        joint_test_power([65], days=10)
    with pytest.raises(ValueError, match="distinct players"):
        joint_drift(theta, [0, 0], np.eye(2))
