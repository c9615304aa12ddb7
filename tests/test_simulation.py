"""simulate() and the strategy space: determinism, common random numbers, sealed bids, and
the mechanism's long-run properties on small games."""

from __future__ import annotations

import numpy as np
import pytest
from engine_reference import running_reference

from stochmech import DNBEMechanism, FiniteGame, Simulation, simulate
from stochmech.strategies import (
    FixedBid,
    History,
    HistoryDependent,
    PlayerContext,
    PublicSignalCollusion,
    StationaryMisreport,
    SupertypeLie,
    Truthful,
    shift_kernel,
)


def game_and_theta(seed: int = 0, n: int = 3, k: int = 3):
    rng = np.random.default_rng(seed)
    game = FiniteGame(rng.normal(size=(n, k, 2, 3)), rng.normal(size=(2, 3)))
    return game, rng.dirichlet(np.ones(k) * 2, size=n)


def test_same_seed_same_result_and_chunking_does_not_matter():
    game, theta = game_and_theta(1)
    strategies = [
        StationaryMisreport(shift_kernel(3, 1)),
        Truthful(),
        SupertypeLie([0.2, 0.3, 0.5]),
    ]
    a = simulate(game, theta, strategies, days=30_000, seed=5)
    b = simulate(game, theta, strategies, days=30_000, seed=5, chunk=4096)
    c = simulate(game, theta, strategies, days=30_000, seed=6)
    for field in (
        "average_utility",
        "average_payment",
        "penalty_days",
        "last_penalty_day",
        "checkpoints",
        "utility_path",
        "welfare_path",
        "penalty_path",
    ):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.average_welfare == b.average_welfare and a.budget == b.budget
    assert not np.allclose(a.average_utility, c.average_utility)


def echo_policy(own_type, history, rng):
    """A module-level (hence picklable) history-dependent policy: flips after odd outcomes."""
    if history.outcomes and history.outcomes[-1] % 2 == 1:
        return (own_type + 1) % history.context.n_types
    return own_type


def test_a_saved_simulation_resumes_bit_identically(tmp_path):
    game, theta = game_and_theta(11)
    strategies = [
        HistoryDependent(echo_policy),
        StationaryMisreport(shift_kernel(3, 1)),
        Truthful(),
    ]
    once = Simulation(game, theta, strategies, seed=4, chunk=1000).run(7_777).result()
    sim = Simulation(game, theta, strategies, seed=4, chunk=1000).run(1234)
    sim.save(tmp_path / "sim.bin")
    with pytest.raises(ValueError, match=r"player 0 played 'history-dependent'.*strategies=\{0"):
        Simulation.load(tmp_path / "sim.bin")
    resumed = Simulation.load(tmp_path / "sim.bin", strategies={0: HistoryDependent(echo_policy)})
    resumed = resumed.run(3000).run(7_777 - 4234).result()
    for field in (
        "average_utility",
        "average_valuation",
        "average_payment",
        "average_penalty",
        "penalty_days",
        "last_penalty_day",
        "checkpoints",
        "utility_path",
        "welfare_path",
        "budget_path",
        "penalty_path",
    ):
        np.testing.assert_array_equal(getattr(once, field), getattr(resumed, field), err_msg=field)
    assert (once.average_welfare, once.budget) == (resumed.average_welfare, resumed.budget)
    # damaged files are errors; a lambda policy is saved by reference and must be given again
    data = (tmp_path / "sim.bin").read_bytes()
    with pytest.raises(ValueError, match="corrupted"):
        Simulation.from_bytes(data[:-10] + b"x" * 10)
    lam = Simulation(game, theta, [HistoryDependent(lambda t, h, r: t), Truthful(), Truthful()])
    lam.run(10).save(tmp_path / "x")
    back = Simulation.load(tmp_path / "x", strategies={0: HistoryDependent(lambda t, h, r: t)})
    assert back.day == 10
    with pytest.raises(ValueError, match="no day"):
        Simulation(game, theta).result()


def test_true_types_do_not_depend_on_strategies():
    # valuations that ignore the outcomes: each player's average valuation is a function of its
    # true types only, so it must be identical across strategy profiles for one seed
    rng = np.random.default_rng(2)
    v = np.repeat(rng.normal(size=(2, 3, 1, 1)), 2, axis=3)
    game = FiniteGame(v, np.zeros((1, 2)))
    theta = rng.dirichlet(np.ones(3), size=2)
    truth = simulate(game, theta, days=5000, seed=9)
    lie = simulate(
        game, theta, [FixedBid(2), StationaryMisreport(shift_kernel(3, -1))], days=5000, seed=9
    )
    np.testing.assert_array_equal(truth.average_valuation, lie.average_valuation)


def test_history_path_matches_stationary_path():
    game, theta = game_and_theta(3)
    echo = HistoryDependent(lambda t, history, rng: t, name="echo")
    a = simulate(game, theta, [Truthful(), Truthful(), Truthful()], days=3000, seed=1)
    b = simulate(game, theta, [echo, Truthful(), echo], days=3000, seed=1)
    np.testing.assert_allclose(a.average_utility, b.average_utility, rtol=1e-12)
    np.testing.assert_array_equal(a.penalty_days, b.penalty_days)


def test_histories_hold_only_sealed_information():
    game, theta = game_and_theta(4, n=2)
    days_seen: list[int] = []
    histories: list[History] = []

    def policy(t, history, rng):
        # the bid of day l may use the own type and days 1..l-1 only
        assert len(history.own_types) == len(history.outcomes) == history.day
        days_seen.append(history.day)
        histories.append(history)
        return t

    simulate(game, theta, [HistoryDependent(policy), Truthful()], days=50, seed=0)
    assert days_seen == list(range(50))
    h = histories[-1]
    assert set(vars(h)) == {
        "context",
        "supertype_bid",
        "o1",
        "own_types",
        "own_bids",
        "outcomes",
        "states",
    }
    np.testing.assert_array_equal(h.context.supertype, theta[0])


def test_efficiency_and_lemma_1_under_truth():
    game, theta = game_and_theta(5)
    result = simulate(game, theta, days=200_000, seed=3)
    assert result.optimal_welfare == pytest.approx(game.optimal_welfare(theta))
    # average welfare -> W*(theta): check within a generous Monte Carlo margin
    spread = np.abs(game.valuation_table).max() * 3 + np.abs(game.cost_table).max()
    assert abs(result.average_welfare - result.optimal_welfare) < 5 * spread / np.sqrt(200_000)
    # truthful players stop being penalized early (Lemma 1)
    assert np.all(result.last_penalty_day < 2000)
    # eq. (21) under truth: utility -> W*(theta) - W*(theta_-i)
    expected = result.opening.welfare - result.opening.welfare_without
    assert np.all(np.abs(result.average_utility - expected) < 5 * spread / np.sqrt(200_000))


def test_bankrupting_and_off_supertype_players_are_penalized_every_day():
    game, theta = game_and_theta(6)
    result = simulate(
        game,
        theta,
        [FixedBid(0), StationaryMisreport(shift_kernel(3, 1), "truthful"), Truthful()],
        days=20_000,
        seed=1,
    )
    # while r(l) is large, |1 - theta(t)| may stay inside the window for a few days
    assert result.penalty_days[0] >= 19_980  # 19,988 at gamma = 1 (19,992 at gamma = 0.5)
    j = np.searchsorted(result.checkpoints, 100)  # flagged on every day after that checkpoint
    assert result.penalty_path[-1, 0] - result.penalty_path[j, 0] == 20_000 - result.checkpoints[j]
    assert result.penalty_days[1] > 19_000
    assert result.average_penalty[0] > 20_000**1.5 / 4
    assert result.average_utility[0] < -1e5
    assert result.last_penalty_day[2] < 2000


def test_public_signal_collusion_keeps_marginals_but_is_caught_by_the_joint_test():
    game, theta = game_and_theta(7, n=2, k=2)
    # both colluders read the same public clock: on even days both bid 0, on odd days both
    # bid 1. Each marginal is exactly the declared (1/2, 1/2), so eq. (6) stays quiet, but the
    # bids are perfectly correlated, which eq. (8) detects.
    kernels = np.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    signal = lambda h: h.day % 2  # noqa: E731
    colluders = [PublicSignalCollusion(signal, kernels), PublicSignalCollusion(signal, kernels)]
    result = simulate(game, theta, colluders, days=20_000, seed=2)
    np.testing.assert_allclose(result.supertype_bids, 0.5)
    assert result.penalty_days.min() > 19_000


def test_strategy_validation_and_copies():
    game, theta = game_and_theta(8)
    s = SupertypeLie([0.2, 0.3, 0.5])
    simulate(game, theta, [s, Truthful(), Truthful()], days=10, seed=0)
    assert not hasattr(s, "_bid_cdf")  # the caller's object is not modified
    with pytest.raises(ValueError, match="one strategy per player"):
        simulate(game, theta, [Truthful()], days=10)
    with pytest.raises(ValueError, match="not a Strategy"):
        simulate(game, theta, [Truthful(), Truthful(), "truthful"], days=10)
    with pytest.raises(ValueError, match="days must be >= 1"):
        simulate(game, theta, days=0)
    with pytest.raises(ValueError, match="kernel row 1"):
        StationaryMisreport([[1.0, 0.0], [0.7, 0.7]])
    with pytest.raises(ValueError, match="different game"):
        simulate(game, theta, days=10, mechanism=DNBEMechanism(game_and_theta(9)[0]))
    ctx = PlayerContext(player=0, supertype=np.array([0.5, 0.5, 0.0]), n_types=3)
    with pytest.raises(ValueError, match="fixed bid 5"):
        FixedBid(5).supertype_bid(ctx)


def test_supertype_lie_bids_follow_the_declaration():
    rng = np.random.default_rng(0)
    truth = np.array([0.5, 0.3, 0.2])
    declared = np.array([0.1, 0.2, 0.7])
    for coupling in ("quantile", "independent"):
        s = SupertypeLie(declared, coupling)
        ctx = PlayerContext(player=0, supertype=truth, n_types=3)
        assert np.array_equal(s.supertype_bid(ctx), declared)
        types = rng.choice(3, size=200_000, p=truth)
        bids = s.type_bids(types, rng)
        freq = np.bincount(bids, minlength=3) / bids.size
        np.testing.assert_allclose(freq, declared, atol=0.005)
        if coupling == "quantile":  # monotone: a higher type never bids lower
            order = np.argsort(types, kind="stable")
            assert np.all(np.diff(bids[order][np.diff(types[order], prepend=0) == 0]) >= -2)
            assert np.all([bids[types == t].max() <= bids[types == t + 1].min() for t in range(2)])


def test_stationary_misreport_declares_the_induced_law():
    kernel = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.2, 0.8]])
    s = StationaryMisreport(kernel)
    ctx = PlayerContext(player=0, supertype=np.array([0.2, 0.5, 0.3]), n_types=3)
    np.testing.assert_allclose(s.supertype_bid(ctx), ctx.supertype @ kernel)
    rng = np.random.default_rng(1)
    bids = s.type_bids(np.zeros(100_000, dtype=np.int64), rng)
    np.testing.assert_allclose(np.bincount(bids, minlength=3) / 1e5, kernel[0], atol=0.01)


@pytest.mark.parametrize("n", [1, 3, 70, 1000])
def test_running_totals_repeat_the_row_by_row_additions(n: int) -> None:
    """The blocked cumulative sums add exactly as a day-by-day loop (bit for bit), so where a
    run is split into batches cannot change a result."""
    from stochmech.simulation import _running

    rng = np.random.default_rng(n)
    values, previous, rows = rng.normal(size=(3000, n)), rng.normal(size=n), [0, 999, 2500]
    expected, acc = running_reference(previous, values, rows)
    at, end = _running(previous, values, rows)
    assert np.array_equal(end, acc)
    assert all(np.array_equal(a, b) for a, b in zip(at, expected, strict=True))
    flags = rng.random((3000, n)) < 0.3
    assert np.array_equal(_running(np.arange(n), flags)[1], np.arange(n) + flags.sum(axis=0))
