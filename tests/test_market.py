"""The mechanism's payments (eqs. 5, 14, 15) and the operator's Market."""

from __future__ import annotations

import game_reference as ref
import numpy as np
import pytest
from hypothesis import given
from test_finite_game import finite_games

from stochmech import BidLedger, DNBEMechanism, FiniteGame, Market, PowerPenalty


def small_game(seed: int = 0, n: int = 3, k: int = 3):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, k, 2, 3))
    c = rng.normal(size=(2, 3))
    theta = rng.dirichlet(np.ones(k), size=n)
    return FiniteGame(v, c), v, c, theta


@given(finite_games())
def test_first_stage_payments_follow_eq_5(case):
    v, c, theta = case
    opening = DNBEMechanism(FiniteGame(v, c)).opening(theta)
    for i in range(v.shape[0]):
        assert opening.first_stage_payments[i] == pytest.approx(
            ref.first_stage_payment(v, c, theta, i), rel=1e-12, abs=1e-12
        )
        assert opening.expected_valuations[i] == pytest.approx(
            ref.expected_valuation(v, c, theta, i), rel=1e-12, abs=1e-12
        )


def test_clearing_follows_eqs_14_and_15():
    game, v, c, theta = small_game(1)
    mech = DNBEMechanism(game, penalty=PowerPenalty(2.0, 1.25))
    market = mech.open(theta)
    rng = np.random.default_rng(2)
    bids = rng.integers(0, 3, size=(500, 3))
    bids[:, 2] = 0  # player 2 always bids type 0: penalized
    out = market.clear(bids)
    ledger = BidLedger(theta, penalty=PowerPenalty(2.0, 1.25))
    record = ledger.record(bids)
    a = market.o1
    assert a == ref.first_stage(v, c, theta)[0]
    for row in range(500):
        b = ref.second_stage(v, c, [0, 1, 2], tuple(bids[row]), a)
        assert out.o2[row] == b
        for i in range(3):
            nu = ref.expected_valuation(v, c, theta, i)
            assert out.valuation_term[row, i] == pytest.approx(v[i, bids[row, i], a, b] - nu)
    np.testing.assert_array_equal(out.flags, record.flags)
    np.testing.assert_array_equal(out.penalty, 2.0 * record.days[:, None] ** 1.25 * record.flags)
    np.testing.assert_allclose(out.total, out.first_stage + out.valuation_term + out.penalty)
    assert out.flags[:, 2].all()
    np.testing.assert_array_equal(out.days, np.arange(1, 501))


def test_batch_equals_day_by_day_and_continues_day_numbers():
    game, _, _, theta = small_game(2)
    bids = np.random.default_rng(0).integers(0, 3, size=(60, 3))
    batch = DNBEMechanism(game).open(theta).clear(bids)
    market = DNBEMechanism(game).open(theta)
    for row in range(60):
        day = market.clear(bids[row])
        assert day.days.tolist() == [row + 1]
        np.testing.assert_array_equal(day.total[0], batch.total[row])
        assert day.o2[0] == batch.o2[row]
    assert market.day == 60


def test_second_stage_payments_average_to_zero_under_truth():
    game, _, _, theta = small_game(3)
    market = DNBEMechanism(game).open(theta)
    rng = np.random.default_rng(4)
    days = 200_000
    types = np.stack([rng.choice(3, size=days, p=theta[i]) for i in range(3)], axis=1)
    out = market.clear(types)
    mean = out.valuation_term.mean(axis=0)
    se = out.valuation_term.std(axis=0) / np.sqrt(days)
    assert np.all(np.abs(mean) < 5 * se + 1e-12)
    # truthful players are penalized only on a few early days (Lemma 1)
    assert out.flags[days // 10 :].sum() == 0


def test_bad_bids_change_nothing_and_name_the_bid():
    game, _, _, theta = small_game(4)
    market = DNBEMechanism(game).open(theta)
    market.clear([[0, 1, 2], [1, 1, 1]])
    before = market.to_bytes()
    with pytest.raises(ValueError, match=r"bid 3 of player 1 on day 4"):
        market.clear([[0, 0, 0], [0, 3, 0]])
    with pytest.raises(ValueError, match="columns"):
        market.clear([[0, 0]])
    with pytest.raises(ValueError, match="integer"):
        market.clear([[0.5, 0, 0]])
    assert market.day == 2
    assert market.to_bytes() == before


def test_bad_mechanism_arguments():
    game, _, _, _theta = small_game(5)
    with pytest.raises(ValueError, match="gamma"):
        DNBEMechanism(game, gamma=0.0)
    with pytest.raises(ValueError, match="gamma"):
        DNBEMechanism(game, gamma=float("nan"))
    with pytest.raises(ValueError, match="TwoStageGame"):
        DNBEMechanism("not a game")
    with pytest.raises(ValueError, match="player 0 sums to"):
        DNBEMechanism(game).open(np.full((3, 3), 0.5))
    with pytest.raises(ValueError, match=r"type 2 is nan"):
        DNBEMechanism(game).open([[0.5, 0.5, np.nan]] * 3)


def test_saved_market_resumes_exactly(tmp_path):
    game, _, _, theta = small_game(6)
    rng = np.random.default_rng(7)
    bids = rng.integers(0, 3, size=(4000, 3))
    bids[::3, 1] = 2
    straight = DNBEMechanism(game).open(theta)
    full = straight.clear(bids, detail=True)
    market = DNBEMechanism(game).open(theta)
    first = market.clear(bids[:1500])
    market.save(tmp_path / "market.bin")
    resumed = Market.load(tmp_path / "market.bin")
    rest = resumed.clear(bids[1500:], detail=True)
    np.testing.assert_array_equal(np.concatenate([first.total, rest.total]), full.total)
    np.testing.assert_array_equal(np.concatenate([first.flags, rest.flags]), full.flags)
    assert resumed.day == 4000
    assert resumed.ledger.to_bytes() == straight.ledger.to_bytes()


def test_damaged_market_files_are_errors(tmp_path):
    game, _, _, theta = small_game(8)
    market = DNBEMechanism(game).open(theta)
    market.clear([[0, 1, 2]] * 10)
    data = market.to_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(ValueError):
            Market.from_bytes(data[:cut])
    for pos in (3, 30, len(data) // 2, len(data) - 2):
        bad = bytearray(data)
        bad[pos] ^= 0x40
        with pytest.raises(ValueError):
            Market.from_bytes(bytes(bad))


def test_switches_remove_parts_of_the_payment():
    game, _, _, theta = small_game(9)
    bids = np.zeros((100, 3), dtype=int)
    full = DNBEMechanism(game).open(theta).clear(bids)
    no_first = DNBEMechanism(game, first_stage_payment=False).open(theta).clear(bids)
    no_penalty = DNBEMechanism(game, penalize=False).open(theta).clear(bids)
    assert np.all(no_first.first_stage == 0) and np.any(full.first_stage != 0)
    assert np.all(no_penalty.penalty == 0) and np.any(full.penalty > 0)
    np.testing.assert_array_equal(no_penalty.flags, full.flags)
