"""The fast paths of the simulation's day loop against plain references, bit for bit: the
type draws, the demand-response market's batch terms, the running totals, and the whole
engine (ledger in the background) against a plain day loop."""

from __future__ import annotations

import numpy as np
import pytest
from engine_reference import running_reference, simulate_reference
from hypothesis import given
from hypothesis import strategies as st

from stochmech._ragged import padded_cdf
from stochmech._sampling import TypeTable, reference_types
from stochmech.markets.demand_response import DemandResponseMarket, betaprime_supertype
from stochmech.mechanism import DNBEMechanism
from stochmech.schemes import PayAsBid
from stochmech.simulation import Simulation, _running, _Totals
from stochmech.strategies import (
    FixedBid,
    StationaryMisreport,
    SupertypeLie,
    Truthful,
    shift_kernel,
)
from stochmech.supertype import Supertype


def _bits(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.view(np.int64) if a.dtype == np.float64 else a


def assert_same(a, b, what: str = "") -> None:
    assert np.array_equal(_bits(a), _bits(b)), what


# ----- type draws ------------------------------------------------------------------------------
@st.composite
def pmf_tables(draw):
    """Padded pmfs of 1..12 players with 1..20 types each: uniform, random, with zeros, with
    tiny or nearly equal probabilities, or summing to slightly more or less than one."""
    n = draw(st.integers(1, 12))
    width = draw(st.integers(1, 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    counts = rng.integers(1, width + 1, size=n)
    counts[0] = width
    theta = np.zeros((n, width))
    for i, k in enumerate(counts):
        kind = draw(st.sampled_from(["uniform", "random", "sparse", "tiny", "off"]))
        if kind == "uniform":
            p = np.full(k, 1.0 / k)
        else:
            p = rng.dirichlet(np.full(k, 0.3 if kind == "sparse" else 1.0))
            if kind == "sparse":
                p[rng.random(k) < 0.4] = 0.0
            if kind == "tiny":
                p[rng.integers(0, k, size=max(1, k // 2))] = 10.0 ** -rng.integers(4, 15)
            if p.sum() == 0:
                p[0] = 1.0
            p = p / p.sum()
            if kind == "off" and k > 1:  # within the pmf tolerance: a CDF above one
                p[0] += 1e-11
        theta[i, :k] = p
    return theta, counts


def _edges(table: TypeTable, cdf: np.ndarray) -> np.ndarray:
    """Uniforms at and beside every CDF value and bucket edge (where a draw could go wrong)."""
    grid = np.arange(table.buckets + 1) / table.buckets
    points = np.concatenate([cdf.ravel(), grid])
    near = np.concatenate([points, np.nextafter(points, 0.0), np.nextafter(points, 2.0)])
    return np.unique(near[(near >= 0.0) & (near < 1.0)])


@given(pmf_tables(), st.integers(0, 2**32 - 1))
def test_type_table_draws_the_reference_types(table_and_counts, seed):
    theta, counts = table_and_counts
    cdf = padded_cdf(theta, counts)
    table = TypeTable(cdf, counts)
    n = theta.shape[0]
    u = np.random.default_rng(seed).random((300, n))
    assert_same(table.draw(u), reference_types(cdf, counts, u))
    edges = np.repeat(_edges(table, cdf)[:, None], n, axis=1)
    assert_same(table.draw(edges), reference_types(cdf, counts, edges))


def test_type_table_with_many_close_cdf_values_keeps_the_reference():
    # CDF values closer than the finest bucket: those players are drawn by the reference
    theta = np.array([[1e-9, 1e-9, 1e-9, 1e-9, 1e-9, 1e-9, 1.0 - 6e-9], [0.5, 0.5, 0, 0, 0, 0, 0]])
    counts = np.array([7, 2])
    cdf = padded_cdf(theta, counts)
    table = TypeTable(cdf, counts)
    assert table.slow.tolist() == [0]
    u = np.concatenate([np.random.default_rng(1).random((500, 2)), np.full((1, 2), 3e-9)])
    assert_same(table.draw(u), reference_types(cdf, counts, u))


# ----- the demand-response market's batch terms --------------------------------------------------
def _random_market(rng: np.random.Generator, n: int, shared: bool) -> DemandResponseMarket:
    laws = []
    for _ in range(n):
        k = int(rng.integers(1, 7))
        p = rng.dirichlet(np.ones(k))
        p[rng.random(k) < 0.2] = 0.0
        p = p / p.sum() if p.sum() else np.eye(k)[0]
        laws.append(Supertype(np.sort(rng.uniform(0.1, 8.0, size=k)), p))
    reserve = Supertype([0.3, 1.0, 4.0], [0.2, 0.5, 0.3])
    shortage = Supertype([0.0, 0.7, 2.5], [0.1, 0.6, 0.3])
    levels = np.unique(np.concatenate([law.values for law in laws])) if shared else None
    return DemandResponseMarket(laws, reserve, shortage, type_values=levels)


@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 9),
    st.booleans(),
    st.sampled_from(["same array", "none differ", "some differ", "any differ"]),
)
def test_market_batch_terms_are_the_second_stage_valuations_and_cost(seed, n, shared, differ):
    rng = np.random.default_rng(seed)
    market = _random_market(rng, n, shared)
    counts = market.type_counts
    days = int(rng.integers(1, 400))
    types = (rng.random((days, n)) * counts).astype(np.int64)
    states = market.sample_states(rng, days)
    columns = None
    bids = types
    if differ != "same array":
        bids = types.copy()
        columns = np.array([], dtype=np.int64)
        if differ != "none differ":
            columns = np.flatnonzero(rng.random(n) < 0.5)
            bids[:, columns] = (rng.random((days, columns.size)) * counts[columns]).astype(int)
        if differ == "any differ":
            columns = None
    o2, v_bid, v_true, cost = market._day_terms(0, types, bids, states, columns)
    assert_same(o2, market.second_stage(0, bids, states), "o2")
    assert_same(v_bid, market.valuations(bids, 0, o2, states), "valuations at the bids")
    assert_same(v_true, market.valuations(types, 0, o2, states), "valuations at the types")
    assert_same(cost, market.cost(0, o2, states), "cost")


# ----- running totals --------------------------------------------------------------------------
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 2, 5, 48, 49, 130]),
    st.integers(1, 700),
    st.booleans(),
)
def test_running_totals_are_the_day_by_day_additions(seed, n, days, sparse):
    rng = np.random.default_rng(seed)
    # magnitudes over 20 decades: any other order of the additions shows in the bits
    values = rng.normal(size=(days, n)) * 10.0 ** rng.integers(-10, 10, size=(days, n))
    if sparse:
        values[rng.random((days, n)) < 0.9] = 0.0
        values[rng.random((days, n)) < 0.05] = -0.0
    previous = rng.normal(size=n) * 1e6
    rows = sorted(set(rng.integers(0, days, size=3).tolist()))
    expected, acc = running_reference(previous, values, rows)
    at, end = _running(previous, values, rows)
    assert_same(end, acc)
    assert len(at) == len(expected)
    for a, b in zip(at, expected, strict=True):
        assert_same(a, b)
    # blocks fed by hand, with the zero-run shortcut, cut inside and at the ends of blocks
    totals = _Totals(previous, n, 64)
    got = []
    for r0 in range(0, days, 64):
        part = values[r0 : r0 + 64]
        totals.slots(part.shape[0])[...] = part
        got += totals.add(part.shape[0], [r - r0 for r in rows if r0 <= r < r0 + 64], sparse)
    assert_same(totals.total, acc)
    for a, b in zip(got, expected, strict=True):
        assert_same(a, b)


def test_running_totals_keep_a_negative_zero_total():
    values = np.full((20, 60), -0.0)
    values[3, 7] = 0.0
    at, end = _running(np.full(60, -0.0), values, [2])
    acc = np.full(60, -0.0)
    for row in values:
        acc += row
    assert_same(end, acc)
    assert_same(at[0], np.full(60, -0.0))


# ----- the whole engine ------------------------------------------------------------------------
def _providers(n: int, levels: int) -> DemandResponseMarket:
    means = 2.0 ** (2.0 * np.arange(n) / max(n - 1, 1) - 1.0)
    laws = [betaprime_supertype(float(m), 2.0, levels) for m in means]
    return DemandResponseMarket(laws, betaprime_supertype(1.0, 2.0, levels), 1.0)


def _mixed_strategies(market: DemandResponseMarket) -> list:
    n = market.n_players
    k = [int(c) for c in market.type_counts]
    strategies = [Truthful() for _ in range(n)]
    strategies[0] = StationaryMisreport(shift_kernel(k[0], 1))
    strategies[1] = SupertypeLie(np.full(k[1], 1.0 / k[1]))
    strategies[2] = StationaryMisreport(np.full((k[2], k[2]), 1.0 / k[2]), "truthful")
    strategies[3] = FixedBid(0)
    return strategies


@pytest.mark.parametrize(
    ("liars", "mechanism"),
    [
        (False, {}),
        (True, {}),
        (True, {"penalize": False}),
        (True, {"penalty": lambda days: 0.5 * np.asarray(days, dtype=float)}),
    ],
)
def test_two_hundred_providers_give_the_plain_day_loop(liars, mechanism):
    market = _providers(200, 16)
    theta = market.supertype_bids()
    strategies = _mixed_strategies(market) if liars else [Truthful() for _ in range(200)]
    days, chunk = 2_300, 500
    scheme = DNBEMechanism(market, **mechanism)
    sim = Simulation(market, theta, strategies, seed=4, chunk=chunk, mechanism=scheme)
    result = sim.run(days).result()
    reference = simulate_reference(market, theta, strategies, days, 4, chunk, **mechanism)
    assert sim.market.ledger.to_bytes() == reference.pop("ledger")
    grid = len(reference["checkpoints"])
    for name, expected in reference.items():
        got = getattr(result, name)
        if name in ("checkpoints", "utility_path", "welfare_path", "budget_path"):
            got = got[:grid]
        assert_same(got, expected, name)
    assert result.checkpoints[-1] == days


def test_the_ledger_in_the_background_changes_no_number():
    """A run of many chunks (the ledger one chunk behind, on a worker thread) equals the same
    days played one chunk per call (never overlapped), checkpoints included."""
    market = _providers(60, 5)
    theta = market.supertype_bids()
    strategies = _mixed_strategies(market)
    overlapped = Simulation(market, theta, strategies, seed=9, chunk=97, daily=True)
    saves: list[tuple[int, bytes]] = []
    overlapped.save = lambda path: saves.append((overlapped.day, overlapped.to_bytes()))
    overlapped.run(1_000, checkpoint="unused", checkpoint_every=250)
    assert [day for day, _ in saves] == [291, 582, 873, 1_000]
    serial = Simulation(market, theta, strategies, seed=9, chunk=97, daily=True)
    for day, data in saves:
        while serial.day < day:
            serial.run(min(97 - serial.day % 97, day - serial.day))
        assert data == serial.to_bytes(), day


def test_a_record_that_fails_in_the_background_puts_the_chunk_back():
    class Failing:
        """l^1.5, except that it raises once day ``fail`` is reached, while armed."""

        def __init__(self, fail: int) -> None:
            self.fail = fail

        def __call__(self, days):
            if self.fail and days[-1] >= self.fail:
                raise ValueError("no penalty today")
            return np.asarray(days, dtype=float) ** 1.5

    market = _providers(20, 4)
    theta = market.supertype_bids()
    schedule = Failing(530)
    mechanism = DNBEMechanism(market, penalty=schedule)
    sim = Simulation(
        market, theta, _mixed_strategies(market), seed=2, chunk=100, mechanism=mechanism
    )
    with pytest.raises(ValueError, match="no penalty today"):
        sim.run(1_000)
    assert sim.day == 500 and sim.market.day == 500
    schedule.fail = 0
    sim.run(500)
    again = Simulation(
        market,
        theta,
        _mixed_strategies(market),
        seed=2,
        chunk=100,
        mechanism=DNBEMechanism(market, penalty=Failing(0)),
    )
    again.run(1_000)
    for name in ("average_utility", "average_payment", "penalty_days", "utility_path"):
        assert_same(getattr(sim.result(), name), getattr(again.result(), name), name)


def test_other_schemes_and_bad_bids_keep_their_messages():
    market = _providers(6, 3)
    theta = market.supertype_bids()

    class OutOfRange(Truthful):
        """Truthful, except for a bid of 7 on day 41."""

        seen = 0

        def type_bids(self, types, rng):
            days = self.seen + 1 + np.arange(types.size)
            self.seen += types.size
            return np.where(days == 41, 7, types)

    strategies = [Truthful() for _ in range(6)]
    strategies[4] = OutOfRange()
    sim = Simulation(market, theta, strategies, seed=1, chunk=30)
    with pytest.raises(ValueError, match=r"bid 7 of player 4 on day 41 is outside the type space"):
        sim.run(100)
    assert sim.day == 30 and sim.market.day == 30
    pay_as_bid = Simulation(market, theta, seed=1, chunk=30, mechanism=PayAsBid()).run(100)
    assert pay_as_bid.day == 100


def test_a_valuation_that_is_not_finite_is_refused_with_the_settlement_message():
    from stochmech.games.finite import FiniteGame

    class Overflowing(FiniteGame):
        """A finite game whose valuations overflow from the 250th valuation call on."""

        calls = 0

        def valuations(self, types, o1, o2, states=None):
            out = np.array(super().valuations(types, o1, o2, states), dtype=float)
            Overflowing.calls += 1
            if Overflowing.calls >= 250:
                out[-1, 0] = np.inf
            return out

    rng = np.random.default_rng(3)
    game = Overflowing(rng.normal(size=(3, 3, 2, 2)), rng.normal(size=(2, 2)))
    theta = np.full((3, 3), 1 / 3)
    sim = Simulation(game, theta, seed=0, chunk=4)
    with pytest.raises(ValueError, match=r"settlement valuation of player 0 on batch day 3 is inf"):
        sim.run(1_000)
    assert sim.day % 4 == 0 and 0 < sim.day < 1_000
