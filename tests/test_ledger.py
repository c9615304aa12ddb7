"""User-facing guarantees of :class:`stochmech.BidLedger`, checked against a dense reference.

The reference (``ledger_reference.py``) keeps J over the whole of Delta^n and evaluates
eqs. (6), (8), (11) and (13) literally. The ledger must give identical flags, identical
marginal maxima, joint maxima within 1e-15, penalties ``J_p(l) * flag`` exactly, whatever the
bids (truthful, off the supertype, correlated), however the days are split into calls, whether
detail is asked for or not, and across save/load. Bad input is a ``ValueError`` that names the
offending value and leaves the ledger unchanged; no byte string makes the core panic.
"""

from __future__ import annotations

import copy
import doctest
import json
import math
import pickle
import struct
import threading
import time
import zlib

import ledger_reference as ref
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import stochmech
import stochmech.ledger
from stochmech import BidLedger, LedgerRecord, PowerPenalty, _core

JOINT_TOL = 1e-15


def examples(divisor: int) -> settings:
    """The active profile's example count divided by ``divisor`` (for the slow tests)."""
    return settings(max_examples=max(3, settings.default.max_examples // divisor))


# ----------------------------------------------------------------------------------------
# bid generators
# ----------------------------------------------------------------------------------------


def draw_types(rng: np.random.Generator, pmf: np.ndarray, size: int) -> np.ndarray:
    """IID draws from ``pmf`` (inverse CDF of uniforms)."""
    return inverse_cdf(pmf, rng.random(size))


def inverse_cdf(pmf: np.ndarray, u: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(pmf)
    cdf[-1] = np.inf  # rows summing to 1 - 1e-10 must still cover u close to 1
    return np.searchsorted(cdf, u, side="right").astype(np.int64)


def make_bids(seed: int, theta: np.ndarray, days: int, behaviours: list[tuple]) -> np.ndarray:
    """Bids of ``days`` days; player i behaves as ``behaviours[i]``:

    ``("truthful",)`` IID from theta_i; ``("off", phi)`` IID from another pmf phi;
    ``("fixed", t)`` always t; ``("copy", j, perm)`` bids perm[bid of player j < i];
    ``("common",)`` theta_i's inverse CDF at a uniform shared by all "common" players (right
    marginals, comonotone joints).
    """
    rng = np.random.default_rng(seed)
    n = len(theta)
    bids = np.zeros((days, n), dtype=np.int64)
    common = rng.random(days)
    for i, behaviour in enumerate(behaviours):
        kind = behaviour[0]
        if kind == "truthful":
            bids[:, i] = draw_types(rng, theta[i], days)
        elif kind == "off":
            bids[:, i] = draw_types(rng, np.asarray(behaviour[1]), days)
        elif kind == "fixed":
            bids[:, i] = behaviour[1]
        elif kind == "copy":
            bids[:, i] = np.asarray(behaviour[2])[bids[:, behaviour[1]]]
        elif kind == "common":
            bids[:, i] = inverse_cdf(theta[i], common)
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(kind)
    return bids


@st.composite
def pmfs(draw, k: int) -> np.ndarray:
    """A pmf over k types: integer weights (so zeros and point masses are common),
    normalized, sometimes nudged off 1 within the accepted 1e-9."""
    weights = np.array(draw(st.lists(st.integers(0, 6), min_size=k, max_size=k)), dtype=float)
    if weights.sum() == 0:
        weights[draw(st.integers(0, k - 1))] = 1.0
    pmf = weights / weights.sum()
    if draw(st.booleans()) and draw(st.booleans()):
        pmf[int(np.argmax(pmf))] += draw(st.sampled_from([-9e-10, -3e-10, 4e-10, 9e-10]))
    return pmf


@st.composite
def behaviours(draw, theta: np.ndarray) -> list[tuple]:
    n, k = theta.shape
    out: list[tuple] = []
    for i in range(n):
        options = ["truthful", "truthful", "off", "fixed", "common"]
        if i > 0:
            options.append("copy")
        kind = draw(st.sampled_from(options))
        if kind == "off":
            out.append(("off", draw(pmfs(k))))
        elif kind == "fixed":
            out.append(("fixed", draw(st.integers(0, k - 1))))
        elif kind == "copy":
            j = draw(st.integers(0, i - 1))
            out.append(("copy", j, draw(st.permutations(range(k)))))
        else:
            out.append((kind,))
    return out


@st.composite
def markets(draw, max_n: int = 5, max_k: int = 4, max_days: int = 300, min_n: int = 1):
    """(supertypes, gamma, bids) for small n and K."""
    n = draw(st.integers(min_n, max_n))
    k = draw(st.integers(1, max_k))
    theta = np.array([draw(pmfs(k)) for _ in range(n)])
    gamma = draw(st.sampled_from([0.5, 0.5, 1.0]) | st.floats(0.01, 3.0))
    days = draw(st.integers(1, max_days))
    bids = make_bids(draw(st.integers(0, 2**32 - 1)), theta, days, draw(behaviours(theta)))
    return theta, gamma, bids


def cycle_market(denominator: int, k: int, n: int, shifts: list[int], counts: np.ndarray):
    """Rational supertypes theta_i(t) = counts[i, t] / denominator and a deterministic cycle
    of ``denominator`` days in which player i bids t exactly counts[i, t] times (in sorted
    order, rotated by shifts[i]): marginals are exact every ``denominator`` days, joints are
    whatever the rotations make them."""
    theta = counts / denominator
    cycle = np.zeros((denominator, n), dtype=np.int64)
    for i in range(n):
        sequence = np.repeat(np.arange(k), counts[i])
        cycle[:, i] = np.roll(sequence, shifts[i])
    return theta, cycle


# ----------------------------------------------------------------------------------------
# comparison helpers
# ----------------------------------------------------------------------------------------


def assert_matches_reference(record: LedgerRecord, dense: ref.DenseRecord, penalty) -> None:
    np.testing.assert_array_equal(record.days, dense.days)
    np.testing.assert_array_equal(record.flags, dense.flags)
    schedule = np.asarray(penalty(record.days), dtype=np.float64)
    np.testing.assert_array_equal(record.penalty, np.where(dense.flags, schedule[:, None], 0.0))
    if record.marginal is not None:
        np.testing.assert_array_equal(record.marginal, dense.marginal)
        np.testing.assert_allclose(record.joint, dense.joint, rtol=0, atol=JOINT_TOL)


def concat(records: list[LedgerRecord]) -> LedgerRecord:
    flags = np.concatenate([r.flags for r in records])
    return LedgerRecord(
        days=np.concatenate([r.days for r in records]),
        flags=flags,
        penalty=np.concatenate([r.penalty for r in records]),
        window=np.concatenate([r.window for r in records]),
    )


def assert_rows_equal(got, want) -> None:
    """Per-player arrays (an (n, K) array or a list of rows) are equal, row by row."""
    assert isinstance(got, np.ndarray) == isinstance(want, np.ndarray)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def assert_accessors_match(ledger: BidLedger, dense: ref.DenseLedger, rng) -> None:
    """Every read accessor against the dense reference at the ledger's current day."""
    assert ledger.day == dense.day
    assert ledger.type_counts == dense.ks
    assert_rows_equal(ledger.marginal_counts, dense.counts)
    assert_rows_equal(ledger.supertypes, dense.theta)
    np.testing.assert_array_equal(ledger.groups_seen(), dense.groups_seen())
    profiles, counts = ledger.profile_counts()
    assert profiles.shape == (len(counts), dense.n)
    assert {tuple(int(x) for x in p): int(c) for p, c in zip(profiles, counts, strict=True)} == (
        dense.profile_counts()
    )
    if dense.day == 0:
        return
    assert_rows_equal(ledger.marginal_discrepancy, dense.marginal_table())
    # joint_discrepancy at the profiles seen and at random ones (mostly unseen)
    seen = [tuple(int(x) for x in p) for p in profiles]
    drawn = [tuple(int(x) for x in rng.integers(0, np.array(dense.ks))) for _ in range(5)]
    tables = [dense.joint_table(i) for i in range(dense.n)]
    for profile in seen[:20] + drawn:
        expected = np.array([tables[i][profile] for i in range(dense.n)])
        np.testing.assert_array_equal(ledger.joint_discrepancy(np.array(profile)), expected)
    np.testing.assert_allclose(ledger.joint_max(), dense.joint_max(), rtol=0, atol=JOINT_TOL)
    # after joint_max() every group is tracked: groups_seen switches source, same answer
    np.testing.assert_array_equal(ledger.groups_seen(), dense.groups_seen())
    for player in range(dense.n):
        groups = dense.group_maxima(player)
        count = int(rng.integers(0, len(groups) + 2))
        worst = ledger.worst_profiles(player, count)
        assert len(worst) == min(count, len(groups))
        for profile, value in worst:
            key = list(profile)
            key[player] = 0
            t, h = groups[tuple(key)]
            assert profile[player] == t
            assert value == h
        got = sorted((abs(v) for _, v in worst), reverse=True)
        want = sorted((abs(h) for _, h in groups.values()), reverse=True)[:count]
        np.testing.assert_allclose(got, want, rtol=0, atol=JOINT_TOL)
        # one profile per group
        assert len({tuple(np.delete(p, player)) for p, _ in worst}) == len(worst)


# ----------------------------------------------------------------------------------------
# exactness against the dense reference
# ----------------------------------------------------------------------------------------


@given(markets())
def test_one_shot_matches_reference(market):
    theta, gamma, bids = market
    dense = ref.DenseLedger(theta, gamma).record(bids)
    detailed = BidLedger(theta, gamma=gamma)
    assert_matches_reference(detailed.record(bids, detail=True), dense, detailed.penalty)
    flags_only = BidLedger(theta, gamma=gamma)
    result = flags_only.record(bids)
    assert result.marginal is None and result.joint is None
    assert_matches_reference(result, dense, flags_only.penalty)
    assert flags_only.day == detailed.day == len(bids)


@given(markets(), st.data())
def test_chunks_and_modes_match_one_shot(market, data):
    """Days split at random into calls, each asking for detail or not, give the one-shot
    flags; the detail that is asked for matches the reference; accessors match at the end."""
    theta, gamma, bids = market
    dense_ledger = ref.DenseLedger(theta, gamma)
    dense = dense_ledger.record(bids)
    one_shot = BidLedger(theta, gamma=gamma).record(bids)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(bids)), max_size=6)))
    ledger = BidLedger(theta, gamma=gamma)
    records = []
    for start, stop in zip([0, *cuts], [*cuts, len(bids)], strict=True):
        detail = data.draw(st.booleans())
        record = ledger.record(bids[start:stop], detail=detail)
        assert record.flags.shape == (stop - start, len(theta))
        if detail:
            part = ref.DenseRecord(
                days=dense.days[start:stop],
                flags=dense.flags[start:stop],
                marginal=dense.marginal[start:stop],
                joint=dense.joint[start:stop],
            )
            assert_matches_reference(record, part, ledger.penalty)
        records.append(record)
    joined = concat(records)
    np.testing.assert_array_equal(joined.flags, one_shot.flags)
    np.testing.assert_array_equal(joined.days, one_shot.days)
    np.testing.assert_array_equal(joined.penalty, one_shot.penalty)
    np.testing.assert_array_equal(joined.window, one_shot.window)
    assert_accessors_match(ledger, dense_ledger, np.random.default_rng(len(bids)))


@given(
    st.integers(2, 4),
    st.integers(2, 4),
    st.sampled_from([4, 6, 8, 12]),
    st.integers(2, 40),
    st.data(),
)
def test_deterministic_cycle_matches_marginals_not_joints(n, k, denominator, repeats, data):
    """A cycle with the declared marginals: the marginal statistic is exactly 0 at the end of
    every cycle; the joint statistic (and the flags) still match the reference."""
    counts = np.array(
        [
            np.bincount(
                data.draw(
                    st.lists(st.integers(0, k - 1), min_size=denominator, max_size=denominator)
                ),
                minlength=k,
            )
            for _ in range(n)
        ]
    )
    shifts = data.draw(st.lists(st.integers(0, denominator - 1), min_size=n, max_size=n))
    theta, cycle = cycle_market(denominator, k, n, shifts, counts)
    bids = np.tile(cycle, (repeats, 1))
    ledger = BidLedger(theta)
    record = ledger.record(bids, detail=True)
    assert_matches_reference(record, ref.DenseLedger(theta).record(bids), ledger.penalty)
    ends = np.arange(denominator - 1, len(bids), denominator)
    assert np.all(record.marginal[ends] == 0.0)


@examples(4)
@given(markets(max_n=3, max_k=2, max_days=60), st.integers(33, 40), st.data())
def test_many_types_use_the_sparse_store(market, k, data):
    """K > 32 switches the core to a sparse per-group count store; concentrated supertypes
    (a few types carry the mass, most have probability 0 or tiny) make groups large enough to
    fire, and bids off the support exercise the unseen-type term."""
    small_theta, gamma, _ = market
    n = small_theta.shape[0]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    theta = np.zeros((n, k))
    for i in range(n):
        support = rng.choice(k, size=int(rng.integers(1, 4)), replace=False)
        theta[i, support] = rng.dirichlet(np.ones(len(support)))
        if data.draw(st.booleans()):
            theta[i] = 0.9 * theta[i] + 0.1 / k
    days = data.draw(st.integers(1, 250))
    kinds = data.draw(behaviours(theta))
    bids = make_bids(int(rng.integers(2**32)), theta, days, kinds)
    dense = ref.DenseLedger(theta, gamma)
    ledger = BidLedger(theta, gamma=gamma)
    half = days // 2
    first = ledger.record(bids[:half])
    second = ledger.record(bids[half:], detail=True)
    expected = dense.record(bids)
    np.testing.assert_array_equal(np.concatenate([first.flags, second.flags]), expected.flags)
    tail = ref.DenseRecord(
        expected.days[half:], expected.flags[half:], expected.marginal[half:], expected.joint[half:]
    )
    assert_matches_reference(second, tail, ledger.penalty)
    assert_accessors_match(ledger, dense, rng)


@examples(4)
@given(st.integers(6, 8), st.integers(2, 3), st.data())
def test_many_players_use_block_counts(n, k, data):
    """n >= 6: block counts bound M_i(d_-i) and most groups are never tracked in flags-only
    mode; skewed supertypes make some groups cross the threshold after a while."""
    assume(k**n <= 3**6)
    theta = np.array([data.draw(pmfs(k)) for _ in range(n)])
    skew = data.draw(st.floats(0.6, 0.95))
    theta = skew * np.eye(k)[np.argmax(theta, axis=1)] + (1 - skew) * theta
    days = data.draw(st.integers(200, 1200))
    bids = make_bids(
        data.draw(st.integers(0, 2**32 - 1)), theta, days, data.draw(behaviours(theta))
    )
    dense = ref.DenseLedger(theta)
    expected = dense.record(bids)
    ledger = BidLedger(theta)
    cut = data.draw(st.integers(0, days))
    flags = np.concatenate([ledger.record(bids[:cut]).flags, ledger.record(bids[cut:]).flags])
    np.testing.assert_array_equal(flags, expected.flags)
    detailed = BidLedger(theta).record(bids, detail=True)
    assert_matches_reference(detailed, expected, PowerPenalty())
    assert_accessors_match(ledger, dense, np.random.default_rng(days))


def gamma_for(day: int, target: float) -> float:
    """The gamma that puts r(day) of eq. (11) at ``target`` (up to rounding), NaN if none."""
    if day < 2 or target <= 0:
        return math.nan
    return (2 * day * target * target - math.log(2)) / math.log(day) - 1


def gammas_around(day: int, target: float) -> list[float]:
    """Adjacent floats g_lo < g_hi with r(day; g_lo) < target <= r(day; g_hi) (r grows with
    gamma), found by bisection from :func:`gamma_for`, with two more floats on each side."""
    guess = gamma_for(day, target)
    lo, hi = guess * (1 - 1e-6), guess * (1 + 1e-6)
    assert ref.window(day, lo) < target <= ref.window(day, hi)
    while math.nextafter(lo, math.inf) < hi:
        mid = lo + (hi - lo) / 2
        if mid in (lo, hi):
            break
        if ref.window(day, mid) < target:
            lo = mid
        else:
            hi = mid
    out = [lo, hi]
    for _ in range(2):
        out = [math.nextafter(out[0], -math.inf), *out, math.nextafter(out[-1], math.inf)]
    return out


@given(markets(max_days=120), st.data())
def test_flags_exact_at_the_threshold(market, data):
    """gamma is tuned so that r(l) lands on either side of a statistic the ledger reaches on
    day l (a marginal or a joint maximum), by one ulp of gamma: the flag is then decided inside
    the core's 1e-9 band, by its exact fallback, and must still equal the reference's, on
    that day and every other."""
    theta, _, bids = market
    dense = ref.DenseLedger(theta, 0.5).record(bids)
    # the flag's statistic: the larger of the two maxima (the joint one as often as not)
    statistic = np.maximum(dense.marginal, dense.joint)
    cells = [
        (int(row), int(i))
        for row, i in np.argwhere(statistic > 0)
        if gamma_for(int(dense.days[row]), float(statistic[row, i])) > 1e-3
    ]
    assume(cells)
    row, i = data.draw(st.sampled_from(cells))
    day, target = int(dense.days[row]), float(statistic[row, i])
    flagged = []
    for gamma in gammas_around(day, target):
        expected = ref.DenseLedger(theta, gamma).record(bids)
        ledger = BidLedger(theta, gamma=gamma)
        np.testing.assert_array_equal(ledger.record(bids).flags, expected.flags)
        flagged.append(bool(expected.flags[row, i]))
    # the two middle gammas straddle the statistic: r(l) < statistic (flagged), then
    # r(l) >= statistic (not flagged, unless equal: ">=" in eq. 13)
    assert flagged[:3] == [True, True, True]
    assert flagged[3:] == [ref.window(day, g) == target for g in gammas_around(day, target)[3:]]


# ----------------------------------------------------------------------------------------
# behaviour
# ----------------------------------------------------------------------------------------

THETA = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])


def test_window_equals_eq_11():
    """``stochmech.window`` (the core's r(l)) is eq. (11) evaluated with the same libm."""
    for gamma in (0.5, 0.01, 1.0, 2.75):
        for day in [1, 2, 3, 10, 999, 10**6, 2**40 + 3]:
            assert stochmech.window(day, gamma) == ref.window(day, gamma)
    assert stochmech.window(2) > stochmech.window(1)  # r is not monotone for small l


def test_days_continue_across_calls():
    ledger = BidLedger(THETA)
    assert ledger.day == 0 and math.isnan(ledger.window())
    first = ledger.record([[0, 1], [1, 2], [0, 2]])
    second = ledger.record(np.array([[1, 0], [0, 0]], dtype=np.int32))
    empty = ledger.record(np.empty((0, 2), dtype=np.int64), detail=True)
    third = ledger.record(np.array([[1, 1]], dtype=np.uint8))
    np.testing.assert_array_equal(first.days, [1, 2, 3])
    np.testing.assert_array_equal(second.days, [4, 5])
    assert empty.days.shape == (0,) and empty.flags.shape == (0, 2)
    assert empty.marginal.shape == (0, 2) and empty.joint.shape == (0, 2)
    np.testing.assert_array_equal(third.days, [6])
    assert ledger.day == 6
    assert ledger.window() == ref.window(6)
    np.testing.assert_allclose(second.window, [ref.window(4), ref.window(5)], rtol=1e-15)
    np.testing.assert_array_equal(ledger.marginal_counts, [[3, 3, 0], [2, 2, 2]])


def test_record_accepts_one_row():
    ledger = BidLedger(THETA)
    one = ledger.record([0, 2], detail=True)
    assert one.flags.shape == one.penalty.shape == one.marginal.shape == (1, 2)
    np.testing.assert_array_equal(one.days, [1])
    dense = ref.DenseLedger(THETA).record(np.array([[0, 2]]))
    assert_matches_reference(one, dense, ledger.penalty)


def test_default_penalty_is_l_to_the_1_5():
    """A player who always bids type 2, which it declared impossible, is flagged every day and
    pays J_p(l) = l**1.5 (exactly k**3 on the square days l = k**2)."""
    ledger = BidLedger(THETA)
    assert ledger.penalty == PowerPenalty(1.0, 1.5)
    days = 10_000
    bids = np.column_stack([np.full(days, 2), np.zeros(days, dtype=int)])
    result = ledger.record(bids)
    assert result.flags[:, 0].all()
    day = np.arange(1, days + 1, dtype=np.float64)
    np.testing.assert_allclose(result.penalty[:, 0], day**1.5, rtol=2e-16)
    squares = np.arange(1, 101)
    np.testing.assert_array_equal(result.penalty[squares**2 - 1, 0], squares.astype(float) ** 3)
    np.testing.assert_array_equal(result.penalty[~result.flags], 0.0)


def test_custom_penalty_schedules():
    bids = make_bids(3, THETA, 400, [("fixed", 1), ("truthful",)])
    expected = ref.DenseLedger(THETA).record(bids)
    assert expected.flags.any() and not expected.flags.all()
    calls = []

    def schedule(days):
        calls.append(days.copy())
        return 2.0 * days.astype(np.float64) ** 2

    for penalty in (PowerPenalty(scale=3.0, exponent=2.0), schedule):
        ledger = BidLedger(THETA, penalty=penalty)
        assert ledger.penalty is penalty
        result = ledger.record(bids[:150])
        result = concat([result, ledger.record(bids[150:])])
        if penalty is schedule:
            # vectorized: one call per batch, with the batch's int64 day numbers
            assert len(calls) == 2
            np.testing.assert_array_equal(calls[1], np.arange(151, 401))
            assert calls[1].dtype == np.int64
        assert_matches_reference(result, expected, penalty)


@pytest.mark.parametrize(
    ("kwargs", "bad"),
    [
        ({"scale": 0.0}, "0.0"),
        ({"scale": -2.0}, "-2.0"),
        ({"scale": math.nan}, "nan"),
        ({"scale": math.inf}, "inf"),
        ({"exponent": 1.0}, "1.0"),
        ({"exponent": 0.5}, "0.5"),
        ({"exponent": math.nan}, "nan"),
        ({"exponent": math.inf}, "inf"),
    ],
)
def test_power_penalty_validation(kwargs, bad):
    with pytest.raises(ValueError, match=bad):
        PowerPenalty(**kwargs)


def test_penalty_must_be_callable():
    with pytest.raises(ValueError, match=r"2\.5"):
        BidLedger(THETA, penalty=2.5)


def test_truthful_players_stop_being_flagged():
    """Lemma 1: truthful players are penalized only finitely often.

    Two truthful IID players over 20,000 days (fixed seed): no flag in the second half. Why
    this is robust rather than lucky: given the other player's bids, each count c = N_i(t) or
    J(d) is binomial around theta * M with M <= l, so Hoeffding's inequality gives
    P(|c - theta M| >= l r(l)) <= 2 exp(-2 l r(l)^2) = l^-(1+gamma) per cell. With K = 2 the two
    types of a player's marginal, and of each of its groups, are one event (the deviations are
    opposite), so a union bound over n (1 + K^(n-1)) events and the days 10,001..20,000 is
    asserted below to be under 4%: almost any seed passes. The typical statistic is far smaller
    still (r(l) is about 5 standard deviations of a count), which the detail run shows as a
    ratio of statistic to r(l) well under 1.
    """
    theta = np.array([[0.3, 0.7], [0.5, 0.5]])
    n, k, days = 2, 2, 20_000
    bids = make_bids(20240611, theta, days, [("truthful",), ("truthful",)])
    ledger = BidLedger(theta)
    result = ledger.record(bids[:10_000])
    late = ledger.record(bids[10_000:], detail=True)
    day = np.arange(10_001, days + 1, dtype=np.float64)
    bound = float(np.sum(n * (1 + k ** (n - 1)) * day**-1.5))
    assert bound < 0.04
    assert not late.flags.any()
    ratio = np.maximum(late.marginal, late.joint) / late.window[:, None]
    assert ratio.max() < 0.6
    assert result.flags.sum() < 10_000 * n  # and there were few early flags, if any


def test_deviating_players_keep_being_flagged():
    """A player bidding a fixed type, and one whose bid is a deterministic function of another
    player's (right marginals, wrong joints), are flagged on every day of the second half;
    truthful bystanders of the fixed bidder are not."""
    days = 20_000
    theta = np.array([[0.5, 0.5], [0.5, 0.5], [0.25, 0.75]])
    fixed = make_bids(7, theta, days, [("truthful",), ("truthful",), ("fixed", 0)])
    late = BidLedger(theta).record(fixed, detail=True)
    assert late.flags[days // 2 :, 2].all()
    assert (late.marginal[days // 2 :, 2] >= late.window[days // 2 :]).all()
    assert not late.flags[days // 2 :, :2].any()

    copy_theta = np.array([[0.5, 0.5], [0.5, 0.5]])
    copied = make_bids(8, copy_theta, days, [("truthful",), ("copy", 0, [1, 0])])
    result = BidLedger(copy_theta).record(copied, detail=True)
    second = slice(days // 2, None)
    assert result.flags[second, 1].all()
    # the marginal test has no power against it; the joint test catches it
    assert (result.marginal[second, 1] < result.window[second]).all()
    assert (result.joint[second, 1] >= result.window[second]).all()
    # and flags-only recording agrees
    np.testing.assert_array_equal(BidLedger(copy_theta).record(copied).flags, result.flags)


def test_any_integer_layout_of_bids():
    """Strided, Fortran-ordered, big-endian, small and unsigned integer arrays and nested lists
    record the same days; the caller's array is left as it was."""
    bids = make_bids(9, THETA, 200, [("truthful",), ("common",)])
    expected = ref.DenseLedger(THETA).record(bids)
    wide = np.zeros((200, 5), dtype=np.int64)
    wide[:, [1, 3]] = bids
    variants = [
        bids,
        np.asfortranarray(bids),
        wide[:, 1::2],
        np.repeat(bids, 2, axis=0)[::2],
        bids.astype(">i4"),
        bids.astype(np.uint8),
        bids.astype(np.int16),
        bids.tolist(),
    ]
    for variant in variants:
        before = np.array(variant, copy=True)
        ledger = BidLedger(THETA)
        assert_matches_reference(ledger.record(variant, detail=True), expected, ledger.penalty)
        np.testing.assert_array_equal(np.asarray(variant), before)


@pytest.mark.parametrize("complete", [False, True])
def test_accessors_before_and_after_recording(complete):
    ledger = BidLedger(THETA)
    dense = ref.DenseLedger(THETA)
    assert_accessors_match(ledger, dense, np.random.default_rng(0))
    np.testing.assert_array_equal(ledger.marginal_discrepancy, np.zeros((2, 3)))
    np.testing.assert_array_equal(ledger.joint_max(), [0.0, 0.0])
    np.testing.assert_array_equal(ledger.joint_discrepancy([1, 2]), [0.0, 0.0])
    assert ledger.worst_profiles(1) == []
    bids = make_bids(5, THETA, 300, [("common",), ("common",)])
    ledger = BidLedger(THETA)
    ledger.record(bids, detail=complete)
    dense.record(bids)
    assert_accessors_match(ledger, dense, np.random.default_rng(1))
    np.testing.assert_array_equal(ledger.supertypes, THETA)
    assert (ledger.n_players, ledger.n_types, ledger.gamma) == (2, 3, 1.0)
    assert ledger.nbytes > 0
    assert "day=300" in repr(ledger)


def test_accessor_arguments_are_validated():
    ledger = BidLedger(THETA)
    ledger.record([[0, 1]])
    with pytest.raises(ValueError, match="type 3 of player 1"):
        ledger.joint_discrepancy([0, 3])
    with pytest.raises(ValueError, match="-1"):
        ledger.joint_discrepancy([-1, 0])
    with pytest.raises(ValueError, match="one integer type per player"):
        ledger.joint_discrepancy([0, 1, 2])
    with pytest.raises(ValueError, match="one integer type per player"):
        ledger.joint_discrepancy([0.0, 1.0])
    with pytest.raises(ValueError, match="player 5"):
        ledger.worst_profiles(5)
    with pytest.raises(ValueError, match="player -1"):
        ledger.worst_profiles(-1)
    with pytest.raises(ValueError, match="-3"):
        ledger.worst_profiles(0, -3)


def test_copy_is_independent():
    ledger = BidLedger(THETA, penalty=PowerPenalty(2.0, 1.25))
    ledger.record([[0, 1], [1, 1]])
    twin = ledger.copy()
    for clone in (twin, copy.copy(ledger), copy.deepcopy(ledger)):
        assert clone.to_bytes() == ledger.to_bytes()
        assert clone.penalty == ledger.penalty
    twin.record([[0, 0]])
    assert (twin.day, ledger.day) == (3, 2)


# ----------------------------------------------------------------------------------------
# bad input: a ValueError naming the value, and the ledger unchanged
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("supertypes", "words"),
    [
        ([[0.5, 0.5 + 2e-9]], ["player 0", "1.000000002"]),
        ([[0.5, 0.5], [0.3, 0.6]], ["player 1", "0.8999999"]),
        ([[0.5, 0.5], [-0.1, 1.1]], ["player 1", "-0.1"]),
        ([[math.nan, 1.0]], ["player 0", "NaN"]),
        ([[0.5, 0.5], [0.0, math.inf]], ["player 1", "inf"]),
        ([0.5, 0.5], ["(2,)"]),
        ([[[0.5, 0.5]]], ["(1, 1, 2)"]),
        ([], ["(0,)"]),
        (np.zeros((0, 3)), ["(0, 3)"]),
        ([[]], ["(1, 0)"]),
        ([[0.5, "a"]], ["'a'"]),
    ],
)
def test_bad_supertypes(supertypes, words):
    with pytest.raises(ValueError) as err:
        BidLedger(supertypes)
    for word in words:
        assert word in str(err.value)


def test_supertypes_within_tolerance_are_accepted():
    theta = [[0.5, 0.5 + 9e-10], [1 - 9e-10, 0.0]]
    ledger = BidLedger(theta)
    np.testing.assert_array_equal(ledger.supertypes, theta)


@pytest.mark.parametrize(
    ("gamma", "word"),
    [(0.0, "got 0"), (-0.5, "-0.5"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")],
)
def test_bad_gamma(gamma, word):
    with pytest.raises(ValueError, match="gamma") as err:
        BidLedger(THETA, gamma=gamma)
    assert word in str(err.value)


@pytest.mark.parametrize(
    ("n", "k", "word"), [(65, 2, "65"), (2, 257, "257"), (100, 1, "100"), (1, 1000, "1000")]
)
def test_sizes_beyond_support(n, k, word, monkeypatch):
    """No fixed limit: these sizes work; one that cannot fit in memory is refused up front."""
    ledger = BidLedger(np.full((n, k), 1.0 / k))
    assert ledger.type_counts == (k,) * n
    ledger.record(np.zeros((3, n), dtype=np.int64))
    assert ledger.day == 3
    monkeypatch.setenv("STOCHMECH_MEMORY_LIMIT", str(n * k * 8))
    with pytest.raises(ValueError, match="memory") as err:
        BidLedger(np.full((n, k), 1.0 / k))
    assert "GB" in str(err.value)


def test_largest_supported_sizes():
    ledger = BidLedger(np.full((64, 256), 1.0 / 256))
    rng = np.random.default_rng(0)
    bids = rng.integers(0, 256, (50, 64))
    bids[:, 0] = 255
    result = ledger.record(bids)
    assert ledger.day == 50 and result.flags[:, 0].all()


def recorded_ledger(detail: bool = False) -> BidLedger:
    ledger = BidLedger(THETA)
    ledger.record(make_bids(1, THETA, 40, [("truthful",), ("off", [0.0, 0.0, 1.0])]), detail)
    return ledger


@pytest.mark.parametrize(
    ("bids", "words"),
    [
        ([[0, 1], [1, 2], [7, 1]], ["bid 7", "player 0", "day 43"]),
        ([[0, 1], [1, -1]], ["bid -1", "player 1", "day 42"]),
        ([[0, 3]], ["bid 3", "player 1", "day 41"]),
        (np.array([[0, 2**40]]), [str(2**40), "player 1", "day 41"]),
        (np.array([[0, 2**63 + 5]], dtype=np.uint64), [str(2**63 + 5), "player 1"]),
        (np.array([[0, 1], [0.5, 1]]), ["0.5", "player 0", "day 42"]),
        (np.array([[0, 1], [1, math.nan]]), ["nan", "player 1", "day 42"]),
        (np.array([[0, 1], [math.inf, 1]]), ["inf", "player 0", "day 42"]),
        (np.array([[0.0, 1.0]]), ["float64"]),
        (np.array([[True, False]]), ["bool"]),
        (np.array([["0", "1"]]), ["<U1"]),
        ([[0, 1, 2]], ["n = 2", "(1, 3)"]),
        ([[0]], ["n = 2", "(1, 1)"]),
        ([0, 1, 2], ["n = 2", "(3,)"]),
        (np.zeros((2, 2, 2), dtype=int), ["(2, 2, 2)"]),
        (np.int64(1), ["()"]),
        ([], ["(0,)"]),
    ],
)
@pytest.mark.parametrize("detail", [False, True])
def test_bad_bids(bids, words, detail):
    """Rejected whole: the message names the value (and player and day where there is one);
    the ledger's bytes, day and mode are unchanged, and it records on as if nothing happened."""
    ledger = recorded_ledger()
    before = ledger.to_bytes()
    with pytest.raises(ValueError) as err:
        ledger.record(bids, detail=detail)
    for word in words:
        assert word in str(err.value)
    with pytest.raises(ValueError):
        ledger.check(bids)
    assert ledger.to_bytes() == before
    assert ledger.day == 40
    reference = recorded_ledger()
    np.testing.assert_array_equal(
        ledger.record([[0, 2], [1, 1]]).flags, reference.record([[0, 2], [1, 1]]).flags
    )
    assert ledger.to_bytes() == reference.to_bytes()


def test_bad_bids_after_good_rows_leave_nothing_behind():
    """The offending day comes after many valid ones: none of them is recorded."""
    ledger = recorded_ledger(detail=True)
    before = ledger.to_bytes()
    bids = make_bids(2, THETA, 5000, [("truthful",), ("truthful",)])
    bids[4321, 1] = 3
    with pytest.raises(ValueError, match=r"bid 3 of player 1 on day 4362\b"):
        ledger.record(bids)
    assert ledger.to_bytes() == before
    ledger.check(bids[:4321])
    assert ledger.to_bytes() == before


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (lambda days: -1.0 * days, ["-41.0", "J_p(41)"]),
        (lambda days: np.where(days == 43, np.nan, 1.0), ["nan", "J_p(43)"]),
        (lambda days: np.where(days > 41, np.inf, 1.0), ["inf", "J_p(42)"]),
        (lambda days: np.ones(len(days) + 1), ["(4,)", "3 days"]),
        (lambda days: np.ones((len(days), 2)), ["(3, 2)"]),
        (lambda days: 1.0, ["()"]),
    ],
)
def test_bad_penalty_schedule(schedule, words):
    """The schedule goes bad after day 40; the batch that meets it is rejected whole."""

    def penalty(days):
        return days**1.5 if days[-1] <= 40 else schedule(days)

    ledger = BidLedger(THETA, penalty=penalty)
    ledger.record(make_bids(1, THETA, 40, [("truthful",), ("fixed", 1)]))
    before = ledger.to_bytes()
    with pytest.raises(ValueError) as err:
        ledger.record([[0, 1], [1, 1], [0, 0]], detail=True)
    for word in words:
        assert word in str(err.value)
    assert ledger.to_bytes() == before


# ----------------------------------------------------------------------------------------
# persistence
# ----------------------------------------------------------------------------------------

FILE_MAGIC = b"STOCHMECH-LEDGER\n"


def seal(body: bytes) -> bytes:
    """``body`` followed by its CRC-32 (both file layers end this way)."""
    return body + struct.pack("<I", zlib.crc32(body))


def file_bytes(header: bytes, state: bytes, version: int = 1) -> bytes:
    """A ledger file as ``BidLedger.to_bytes`` lays it out: magic, version, header length,
    JSON header, state length, core state, CRC-32."""
    return seal(
        FILE_MAGIC
        + struct.pack("<II", version, len(header))
        + header
        + struct.pack("<Q", len(state))
        + state
    )


def core_state(
    theta,
    day: int,
    entries: list[tuple[list[int], int]],
    *,
    gamma: float = 1.0,  # the library default (stochmech.DEFAULT_GAMMA)
    complete: int = 0,
    marginal=None,
    words: int = 1,
    version: int = 2,
    n: int | None = None,
    k: int | None = None,
) -> bytes:
    """A core state as ``_core.Ledger.to_bytes`` lays it out (see rust/core/src/ledger/
    persist.rs): magic, version, then n, key words and each K_i (version 2; version 1 had n, K
    and key words), gamma, day, tracking flag, supertypes, marginal counts, profile count,
    (key words, count) per profile, CRC-32. ``theta`` is (n, K): every player has K types."""
    theta = np.asarray(theta, dtype=np.float64)
    n = theta.shape[0] if n is None else n
    k = theta.shape[1] if k is None else k
    if marginal is None:
        marginal = np.zeros(theta.shape, dtype=np.uint64)
    if version == 1:
        body = b"SMLEDGER" + struct.pack("<IIII", version, n, k, words)
    else:
        body = b"SMLEDGER" + struct.pack("<III", version, n, words)
        body += struct.pack(f"<{n}I", *([k] * n)) if n < 10**4 else b""
    body += struct.pack("<dQB", gamma, day, complete)
    body += theta.astype("<f8").tobytes() + np.asarray(marginal, dtype="<u8").tobytes()
    body += struct.pack("<Q", len(entries))
    for key, count in entries:
        body += struct.pack(f"<{len(key)}QQ", *key, count)
    return seal(body)


def test_core_state_layout_is_understood():
    """The helper above reproduces the core's bytes (so crafted states test what they claim)."""
    ledger = BidLedger([[0.5, 0.5], [0.2, 0.8]])
    ledger.record([[0, 1], [1, 1], [0, 0]])
    # one bit per player, player 0 least significant: (0,1) -> 2, (1,1) -> 3, (0,0) -> 0
    expected = core_state(
        [[0.5, 0.5], [0.2, 0.8]], 3, [([0], 1), ([2], 1), ([3], 1)], marginal=[[2, 1], [1, 2]]
    )
    assert ledger._core.to_bytes() == expected
    assert _core.Ledger.from_bytes(expected).day == 3


def test_version_1_states_and_files_migrate():
    """States and files of format version 1 (one K for all players) load, behave as the
    ledger that wrote them, and save again as version 2."""
    theta = [[0.5, 0.5], [0.2, 0.8]]
    entries = [([0], 1), ([2], 1), ([3], 1)]
    v1 = core_state(theta, 3, entries, marginal=[[2, 1], [1, 2]], version=1)
    v2 = core_state(theta, 3, entries, marginal=[[2, 1], [1, 2]])
    assert _core.Ledger.from_bytes(v1).to_bytes() == v2
    header = json.dumps({"penalty": PowerPenalty().to_dict()}).encode()
    old = BidLedger.from_bytes(file_bytes(header, v1, version=1))
    fresh = BidLedger(theta)
    fresh.record([[0, 1], [1, 1], [0, 0]])
    assert old.to_bytes() == fresh.to_bytes()
    bids = make_bids(5, np.array(theta), 200, [("truthful",), ("copy", 0, [1, 0])])
    np.testing.assert_array_equal(old.record(bids).flags, fresh.record(bids).flags)
    # K = 1 had one bit per player in version 1 and has none now
    v1_single = core_state([[1.0], [1.0]], 4, [([0], 4)], marginal=[[4], [4]], version=1)
    assert _core.Ledger.from_bytes(v1_single).day == 4
    # version 1 never held more than 64 players or 256 types
    big = core_state(np.full((2, 300), 1 / 300), 0, [], version=1)
    with pytest.raises(ValueError, match="version 1 state"):
        _core.Ledger.from_bytes(big)


def sample_ledger(detail: bool = False, penalty=None, days: int = 300) -> BidLedger:
    theta = np.array([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]])
    kinds = [("truthful",), ("copy", 0, [2, 1, 0]), ("off", [0.6, 0.2, 0.2])]
    ledger = BidLedger(theta, gamma=0.7, penalty=penalty)
    ledger.record(make_bids(11, theta, days, kinds), detail=detail)
    return ledger


@pytest.mark.parametrize("detail", [False, True])
def test_pickle_round_trip(detail):
    ledger = sample_ledger(detail, penalty=PowerPenalty(2.0, 1.75))
    clone = pickle.loads(pickle.dumps(ledger))
    assert clone.to_bytes() == ledger.to_bytes()
    assert clone.penalty == PowerPenalty(2.0, 1.75)
    assert (clone.day, clone.gamma) == (ledger.day, ledger.gamma)
    np.testing.assert_array_equal(clone.supertypes, ledger.supertypes)
    more = make_bids(12, ledger.supertypes, 100, [("truthful",)] * 3)
    a, b = ledger.record(more, detail=True), clone.record(more, detail=True)
    for field in ("flags", "penalty", "marginal", "joint"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    # the core object pickles on its own as well
    core = pickle.loads(pickle.dumps(ledger._core))
    assert core.to_bytes() == ledger._core.to_bytes()


def test_save_load_round_trip(tmp_path):
    ledger = sample_ledger(penalty=PowerPenalty(1.5, 2.0))
    path = tmp_path / "ledger.bin"
    ledger.save(path)
    assert not (tmp_path / "ledger.bin.tmp").exists()
    loaded = BidLedger.load(str(path))
    assert loaded.to_bytes() == ledger.to_bytes() == path.read_bytes()
    assert loaded.penalty == PowerPenalty(1.5, 2.0)
    # an explicit penalty overrides the saved one
    assert BidLedger.load(path, penalty=PowerPenalty()).penalty == PowerPenalty()
    # saving again replaces the file
    ledger.record([[0, 0, 0]])
    ledger.save(path)
    assert BidLedger.load(path).day == 301


@examples(2)
@given(markets(max_days=200), st.data())
def test_saved_loaded_and_continued_is_bit_identical(tmp_path_factory, market, data):
    """A ledger saved on day s, loaded and continued gives the flags, penalties, marginal
    maxima and bytes of one that never stopped, whether either asks for detail (before or
    after the stop) or not. The joint maxima are held to 1e-15 here: their last bit depends on
    history (see test_detail_joint_maximum_is_history_independent)."""
    theta, gamma, bids = market
    stop = data.draw(st.integers(0, len(bids)))
    before, after = data.draw(st.booleans()), data.draw(st.booleans())
    path = tmp_path_factory.mktemp("ledger") / "ledger.bin"
    steady = BidLedger(theta, gamma=gamma)
    first = steady.record(bids[:stop], detail=before)
    second = steady.record(bids[stop:], detail=after)
    stopped = BidLedger(theta, gamma=gamma)
    again = stopped.record(bids[:stop], detail=before)
    stopped.save(path)
    resumed = BidLedger.load(path)
    assert resumed.to_bytes() == stopped.to_bytes()
    continued = resumed.record(bids[stop:], detail=after)
    for x, y in ((first, again), (second, continued)):
        for field in ("days", "flags", "penalty", "window", "marginal"):
            if getattr(x, field) is None:
                assert getattr(y, field) is None
            else:
                np.testing.assert_array_equal(getattr(x, field), getattr(y, field))
        if x.joint is None:
            assert y.joint is None
        else:
            np.testing.assert_allclose(x.joint, y.joint, rtol=0, atol=JOINT_TOL)
    assert resumed.to_bytes() == steady.to_bytes()
    np.testing.assert_allclose(resumed.joint_max(), steady.joint_max(), rtol=0, atol=JOINT_TOL)
    # joint_max() tracks every group from then on: both ledgers are in that mode now
    assert resumed.to_bytes() == steady.to_bytes()


# Two profile groups of player 1 tie on the core's scaled statistic max_t |c_t - theta_t M|
# (0.5 each) on day 5, but their exact eq. (8) values differ in the last bit:
# |2/5 - 0.75 (2/5)| = 0.1 and |1/5 - 0.75 (2/5)| = 0.10000000000000003. The core reports the
# exact value of whichever tied group is on top of its heap, which depends on the order in
# which the groups were first tracked: a ledger that never stopped reports 0.1, one that was
# saved and loaded (groups rebuilt in key order) reports 0.10000000000000003 (the true maximum,
# as in the dense reference).
TIE_THETA = np.array([[0.4, 0.6, 0.0], [0.25, 0.0, 0.75]])
TIE_BIDS = np.array([[1, 2], [1, 2], [2, 2], [2, 0], [0, 2]])


def test_detail_joint_maximum_is_history_independent():
    steady = BidLedger(TIE_THETA).record(TIE_BIDS, detail=True)
    stopped = BidLedger(TIE_THETA)
    stopped.record(TIE_BIDS[:4])
    resumed = BidLedger.from_bytes(stopped.to_bytes())
    continued = resumed.record(TIE_BIDS[4:], detail=True)
    dense = ref.DenseLedger(TIE_THETA).record(TIE_BIDS)
    assert dense.joint[4, 1] == 0.10000000000000003
    assert continued.joint[0, 1] == dense.joint[4, 1]  # holds
    assert steady.joint[4, 1] == dense.joint[4, 1]  # got 0.1
    np.testing.assert_array_equal(steady.joint[4:], continued.joint)


def test_truncated_files_are_rejected():
    for detail in (False, True):
        data = sample_ledger(detail).to_bytes()
        state = sample_ledger(detail)._core.to_bytes()
        for cut in range(len(data)):
            with pytest.raises(ValueError, match="ledger"):
                BidLedger.from_bytes(data[:cut])
        for cut in range(len(state)):
            with pytest.raises(ValueError, match="ledger state"):
                _core.Ledger.from_bytes(state[:cut])


def test_flipped_bytes_are_rejected():
    """Every byte of a file (and of a core state) changed in turn, by several patterns."""
    data = sample_ledger().to_bytes()
    state = sample_ledger()._core.to_bytes()
    for blob, load in ((data, BidLedger.from_bytes), (state, _core.Ledger.from_bytes)):
        for pos in range(len(blob)):
            for pattern in (0x01, 0x80, 0xFF, 0x5A):
                damaged = bytearray(blob)
                damaged[pos] ^= pattern
                with pytest.raises(ValueError):
                    load(bytes(damaged))


def test_wrong_magic_and_future_versions():
    ledger = sample_ledger()
    data, state = ledger.to_bytes(), ledger._core.to_bytes()
    with pytest.raises(ValueError, match="not a stochmech ledger"):
        BidLedger.from_bytes(b"X" + data[1:])
    with pytest.raises(ValueError, match="not a stochmech ledger"):
        BidLedger.from_bytes(state)  # a core state is not a file
    with pytest.raises(ValueError, match="not a stochmech ledger"):
        _core.Ledger.from_bytes(b"Z" + state[1:])
    with pytest.raises(ValueError, match="not a stochmech ledger"):
        _core.Ledger.from_bytes(data)
    # a well-formed file (valid checksums) from a future version
    header = json.dumps({"penalty": PowerPenalty().to_dict()}).encode()
    assert BidLedger.from_bytes(file_bytes(header, state))._core.to_bytes() == state
    assert BidLedger.from_bytes(file_bytes(header, state, version=2))._core.to_bytes() == state
    with pytest.raises(ValueError, match="version 3 is not supported"):
        BidLedger.from_bytes(file_bytes(header, state, version=3))
    future = seal(state[:8] + struct.pack("<I", 7) + state[12:-4])
    with pytest.raises(ValueError, match="version 7 is not supported"):
        _core.Ledger.from_bytes(future)
    with pytest.raises(ValueError, match="version 7 is not supported"):
        BidLedger.from_bytes(file_bytes(header, future))


def test_custom_penalty_must_be_given_again(tmp_path):
    def schedule(days):
        return 4.0 * days.astype(np.float64) ** 2

    ledger = sample_ledger(penalty=schedule)
    path = tmp_path / "custom.bin"
    ledger.save(path)
    with pytest.raises(ValueError, match=r"custom penalty schedule.*schedule"):
        BidLedger.load(path)
    loaded = BidLedger.load(path, penalty=schedule)
    assert loaded.penalty is schedule
    assert loaded.to_bytes() == ledger.to_bytes()
    # pickling keeps the schedule itself (when it pickles), bytes do not
    exp_ledger = sample_ledger(penalty=np.exp)
    assert pickle.loads(pickle.dumps(exp_ledger)).penalty is np.exp
    with pytest.raises(ValueError, match="custom penalty"):
        BidLedger.from_bytes(exp_ledger.to_bytes())


# ----------------------------------------------------------------------------------------
# no panic reaches Python: fuzzing the loaders
# ----------------------------------------------------------------------------------------


def _seed_ledgers() -> list[BidLedger]:
    """Valid ledgers of every key width and count store, in both tracking modes."""
    out = []
    for (n, k), detail in [((2, 3), False), ((3, 2), True), ((50, 4), False), ((2, 40), True)]:
        theta = np.full((n, k), 1.0 / k)
        ledger = BidLedger(theta, gamma=0.3)
        kinds = [("truthful",)] * (n - 1) + [("fixed", 1)]
        ledger.record(make_bids(n * k, theta, 30, kinds), detail=detail)
        out.append(ledger)
    return out


SEEDS = _seed_ledgers()


def load_or_reject(load, blob: bytes):
    """Loads ``blob``; a ``ValueError`` is the only acceptable failure (a PanicException is a
    BaseException, so it is caught here and turned into a test failure)."""
    try:
        return load(blob)
    except ValueError:
        return None
    except BaseException as err:  # the point of the test
        pytest.fail(f"{type(err).__module__}.{type(err).__name__} escaped: {err!r}")


def exercise(core) -> None:
    """A loaded core is canonical and usable: it saves to bytes that load to the same bytes,
    and recording a day either works or is refused with a ValueError."""
    state = core.to_bytes()
    assert _core.Ledger.from_bytes(state).to_bytes() == state
    _, counts = core.profile_counts()
    assert int(counts.sum()) == core.day
    per_player = np.split(core.marginal_counts(), np.cumsum(core.type_counts)[:-1])
    assert all(int(c.sum()) == core.day for c in per_player)
    core.groups_seen()
    core.joint_max()
    core.worst_profiles(0, 3)
    day = core.day
    bids = np.zeros((1, core.n_players), dtype=np.int64)
    try:
        core.record(bids, True)
    except ValueError:
        assert core.day == day
    else:
        assert core.day == day + 1


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=9)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 9)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("word"), st.integers(0, 10**6), st.integers(0, 2**64 - 1)),
)


def mutate(blob: bytes, mutations) -> bytes:
    out = bytearray(blob)
    for kind, where, what in mutations:
        pos = where % (len(out) + 1)
        if kind == "set" and pos < len(out):
            out[pos] = what
        elif kind == "insert":
            out[pos:pos] = what
        elif kind == "delete":
            del out[pos : pos + what]
        elif kind == "truncate":
            del out[pos:]
        elif kind == "word":
            out[pos : pos + 8] = struct.pack("<Q", what)
    return bytes(out)


@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_never_panic(blob, with_magic):
    if with_magic:
        core_blob = seal(b"SMLEDGER" + struct.pack("<I", 1 + len(blob) % 2) + blob)
        file_blob = seal(FILE_MAGIC + struct.pack("<I", 1) + blob)
    else:
        core_blob = file_blob = blob
    core = load_or_reject(_core.Ledger.from_bytes, core_blob)
    if core is not None:
        exercise(core)
    load_or_reject(BidLedger.from_bytes, file_blob)


@given(
    st.sampled_from(range(len(SEEDS))), st.lists(mutation, min_size=1, max_size=4), st.booleans()
)
def test_mutated_states_never_panic(which, mutations, reseal):
    """Mutations of valid core states, with the checksum recomputed (to reach the structural
    checks) or not (then the checksum must catch every one that changed the bytes)."""
    state = SEEDS[which]._core.to_bytes()
    damaged = mutate(state, mutations)
    if reseal and len(damaged) >= 4:
        damaged = seal(damaged[:-4])
    core = load_or_reject(_core.Ledger.from_bytes, damaged)
    if core is None:
        return
    if not reseal:
        assert damaged == state
    exercise(core)


@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(mutation, max_size=3),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=8,
    ),
    st.sampled_from(["header", "penalty", "fields"]),
)
def test_mutated_files_never_panic(which, mutations, value, where):
    """Files whose JSON header is anything JSON can hold (with valid checksums), and mutated
    files: a ValueError or a ledger, nothing else."""
    state = SEEDS[which]._core.to_bytes()
    if where == "header":
        header = value
    elif where == "penalty":
        header = {"penalty": value}
    else:
        header = {"penalty": {"kind": "power", "scale": value, "exponent": value}}
    blob = file_bytes(json.dumps(header).encode(), state)
    for candidate in (blob, mutate(blob, mutations), seal(mutate(blob, mutations)[:-4])):
        ledger = load_or_reject(BidLedger.from_bytes, candidate)
        if ledger is not None:
            exercise(ledger._core)
            assert isinstance(ledger.penalty, PowerPenalty)


def test_deeply_nested_header_is_a_value_error():
    state = SEEDS[0]._core.to_bytes()
    load_or_reject(BidLedger.from_bytes, file_bytes(b"[" * 100_000, state))
    load_or_reject(
        BidLedger.from_bytes,
        file_bytes(b'{"penalty": {"kind": "power", "scale": 1e999999}}', state),
    )


FAULTS = [
    "none",
    "none",
    "none",
    "n",
    "k",
    "words",
    "gamma",
    "theta",
    "complete",
    "digit",
    "high bit",
    "order",
    "duplicate",
    "zero count",
    "day",
    "marginal",
    "trailing",
    "short",
]


def stored_words(words: int) -> int:
    """u64 words each key takes in a core state: exactly the layout's count, the value of the
    state's key-width field."""
    return words


def pack(digits: list[int], bits: int, words: int) -> list[int]:
    """A profile's key as stored: ``bits`` bits per player, player 0 least significant,
    64 // bits players per word, padded to :func:`stored_words`."""
    key = [0] * stored_words(words)
    if bits == 0:
        return key
    for i, t in enumerate(digits):
        w, s = divmod(i, 64 // bits)
        key[w] |= t << (s * bits)
    return key


@st.composite
def crafted_states(draw):
    """(fault, state): a core state built field by field with a valid checksum, either right
    ("none") or with one field wrong."""
    fault = draw(st.sampled_from(FAULTS))
    n = draw(st.integers(1, 4) | st.sampled_from([20, 64]))
    k = draw(st.sampled_from([1, 2, 3, 5, 40]))
    bits = (k - 1).bit_length()
    words = -(-n // (64 // bits)) if bits else 1
    theta = np.array([draw(pmfs(k)) for _ in range(n)])
    gamma = draw(st.floats(1e-3, 5.0))
    digits = st.lists(st.integers(0, k - 1), min_size=n, max_size=n)
    # large counts, but a well-formed state stays below the ledger's 2^53-day limit
    counted = st.tuples(digits, st.integers(1, 50) | st.sampled_from([2**40, 2**50]))
    table = {tuple(pack(d, bits, words)): (d, c) for d, c in draw(st.lists(counted, max_size=5))}
    profiles = [(list(key), c) for key, (_, c) in sorted(table.items())]
    marginal = np.zeros((n, k), dtype=np.uint64)
    for d, c in table.values():
        marginal[np.arange(n), d] += np.uint64(c)
    day = sum(c for _, c in profiles)
    complete = draw(st.sampled_from([0, 1]))
    n_field, k_field, trailing = n, k, b""
    if fault == "n":
        n_field = draw(st.sampled_from([0, n + 1, 65, 2**32 - 1]))
    elif fault == "k":
        k_field = draw(st.sampled_from([0, k + 1, 257, 2**31]))
    elif fault == "words":
        words_field = draw(st.sampled_from([0, words + 1, 9]))
        width = stored_words(max(words_field, 1)) if words_field < 9 else 9
        profiles = [((key + [0] * width)[:width], c) for key, c in profiles]
        words = words_field
    elif fault == "gamma":
        gamma = draw(st.sampled_from([0.0, -1.0, math.nan, math.inf, -0.0]))
    elif fault == "theta":
        theta[draw(st.integers(0, n - 1)), draw(st.integers(0, k - 1))] += draw(
            st.sampled_from([-2.0, math.nan, math.inf, 1e-6])
        )
    elif fault == "complete":
        complete = draw(st.integers(2, 255))
    elif fault in ("digit", "high bit") and profiles:
        key = profiles[0][0]
        if fault == "digit" and 2**bits > k:
            key[0] |= k  # player 0 bids type K
        else:
            key[-1] |= 1 << 63  # a bit beyond the last player's digit
    elif fault == "order" and len(profiles) > 1:
        profiles.reverse()
    elif fault == "duplicate" and profiles:
        profiles.append(profiles[-1])
        day += profiles[-1][1]
        for d, c in [table[tuple(profiles[-1][0])]]:
            marginal[np.arange(n), d] += np.uint64(c)
    elif fault == "zero count" and profiles:
        profiles[0] = (profiles[0][0], 0)
    elif fault == "day":
        day += draw(st.sampled_from([1, -1, 2**60]))
    elif fault == "marginal":
        marginal[draw(st.integers(0, n - 1)), draw(st.integers(0, k - 1))] += np.uint64(1)
    elif fault == "trailing":
        trailing = draw(st.binary(min_size=1, max_size=9))
    state = core_state(
        theta,
        max(day, 0),
        profiles,
        gamma=gamma,
        complete=complete,
        marginal=marginal,
        words=words,
        n=n_field,
        k=k_field,
    )
    if fault == "short":
        state = seal(state[: draw(st.integers(8, len(state) - 5))])
    elif trailing:
        state = seal(state[:-4] + trailing)
    return fault, state


@given(crafted_states())
def test_crafted_states_never_panic(crafted):
    """Well-formed states load and save to the same bytes (nothing dropped or repaired); a
    state with one wrong field may only load if the fault left it well-formed."""
    fault, state = crafted
    core = load_or_reject(_core.Ledger.from_bytes, state)
    if fault == "none":
        assert core is not None
    if core is not None:
        assert core.to_bytes() == state
        exercise(core)


def test_states_beyond_the_day_limit_are_rejected():
    """States with a valid checksum but a day count the ledger can never reach (2^53 and more)
    are refused on loading; a ledger at the last day it supports refuses one more day."""
    theta = [[0.5, 0.5], [0.2, 0.8]]
    for day in (2**64 - 1, 2**53):
        state = core_state(theta, day, [([0], day)], marginal=[[day, 0], [day, 0]])
        with pytest.raises(ValueError, match="2\\^53"):
            _core.Ledger.from_bytes(state)
    day = 2**53 - 1
    core = _core.Ledger.from_bytes(
        core_state(theta, day, [([0], day)], marginal=[[day, 0], [day, 0]])
    )
    before = core.to_bytes()
    with pytest.raises(ValueError, match="2\\^53"):
        core.record(np.zeros((1, 2), dtype=np.int64), False)
    assert core.to_bytes() == before


# ----------------------------------------------------------------------------------------
# threads
# ----------------------------------------------------------------------------------------


def test_threads_sharing_a_ledger_get_their_own_days():
    """A batch is recorded with the GIL released, so another thread may call ``record`` on the
    same ledger meanwhile. Whatever order the two calls end up in, each result must describe
    the days its bids were recorded as: days, windows, penalties and flags of a replay in
    that order. The penalty schedule sleeps (releasing the GIL) between the batch's reading
    of the day count and its recording, which is where another thread gets in."""
    inside = threading.Event()

    def schedule(days):
        if days.shape[0] == 3:
            inside.set()
            time.sleep(0.3)
        return days.astype(np.float64) ** 1.5

    batch = np.array([[0, 2], [2, 2], [2, 2]])
    single = np.array([[1, 0]])
    ledger = BidLedger(THETA, penalty=schedule)
    results = {}
    worker = threading.Thread(target=lambda: results.update(batch=ledger.record(batch)))
    worker.start()
    assert inside.wait(5)
    results["single"] = ledger.record(single)
    worker.join()
    first, second = sorted(results, key=lambda name: results[name].days[0])
    assert sorted([*results["batch"].days, *results["single"].days]) == [1, 2, 3, 4]
    order = np.concatenate(
        [batch if first == "batch" else single, single if first == "batch" else batch]
    )
    replay = ref.DenseLedger(THETA).record(order)
    joined = concat([results[first], results[second]])
    np.testing.assert_array_equal(joined.days, [1, 2, 3, 4])
    assert_matches_reference(joined, replay, PowerPenalty())
    assert ledger.day == 4


def test_documented_examples():
    """The Examples sections of stochmech.ledger run and give the documented output."""
    result = doctest.testmod(stochmech.ledger, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------------------
# 64-bit counts
# ----------------------------------------------------------------------------------------


@given(st.data())
def test_counts_beyond_32_bits(data):
    """A ledger restored on day ~2^34 with profile counts beyond 32 bits, placed so that the
    statistics sit within a few r(l) of the threshold, records on exactly as the dense
    reference started from the same counts."""
    n, k = 2, data.draw(st.integers(2, 3))
    theta = np.array([data.draw(pmfs(k)) for _ in range(n)])
    theta = 0.5 * theta + 0.5 / k  # every profile has some mass
    day = 2**34 + data.draw(st.integers(0, 2**20))
    r = ref.window(day)
    # independent counts moved by up to 2 l r(l) per cell, then the total fixed on cell (0, 0)
    noise = np.array(data.draw(st.lists(st.floats(-2.0, 2.0), min_size=k * k, max_size=k * k)))
    counts = np.floor(np.outer(theta[0], theta[1]) * day + noise.reshape(k, k) * r * day)
    counts = np.maximum(counts, 1).astype(np.int64)
    counts[0, 0] += day - int(counts.sum())
    assume(counts.min() >= 1)
    bits = (k - 1).bit_length()
    entries = sorted(
        ([d0 | (d1 << bits)], int(counts[d0, d1])) for d0 in range(k) for d1 in range(k)
    )
    marginal = np.stack([counts.sum(axis=1), counts.sum(axis=0)]).astype(np.uint64)
    state = core_state(theta, day, entries, marginal=marginal)
    header = json.dumps({"penalty": PowerPenalty().to_dict()}).encode()
    ledger = BidLedger.from_bytes(file_bytes(header, state))
    dense = ref.DenseLedger(theta)
    dense.day = day
    dense.joint_counts[...] = counts
    for i in range(n):
        dense.count_rows[i][...] = marginal[i].astype(np.int64)
    np.testing.assert_array_equal(ledger.marginal_counts, dense.counts)
    bids = make_bids(data.draw(st.integers(0, 2**32 - 1)), theta, 50, data.draw(behaviours(theta)))
    expected = dense.record(bids)
    result = ledger.record(bids[:20])
    detailed = ledger.record(bids[20:], detail=True)
    np.testing.assert_array_equal(np.concatenate([result.flags, detailed.flags]), expected.flags)
    np.testing.assert_array_equal(detailed.days, np.arange(day + 21, day + 51))
    np.testing.assert_array_equal(detailed.marginal, expected.marginal[20:])
    np.testing.assert_allclose(detailed.joint, expected.joint[20:], rtol=0, atol=JOINT_TOL)


# ----------------------------------------------------------------------------------------
# per-player type spaces, any size
# ----------------------------------------------------------------------------------------


@st.composite
def ragged_markets(draw, max_n: int = 4, max_k: int = 4, max_days: int = 200):
    """(supertypes as a list of pmfs of lengths K_i >= 1, gamma, bids) with prod K_i small."""
    n = draw(st.integers(1, max_n))
    ks = [draw(st.integers(1, max_k)) for _ in range(n)]
    assume(math.prod(ks) <= 128)
    theta = [draw(pmfs(k)) for k in ks]
    gamma = draw(st.sampled_from([0.5, 1.0]) | st.floats(0.05, 2.0))
    days = draw(st.integers(1, max_days))
    kinds: list[tuple] = []
    for i, k in enumerate(ks):
        options = ["truthful", "truthful", "off", "fixed", "common"] + (["copy"] if i else [])
        kind = draw(st.sampled_from(options))
        if kind == "off":
            kinds.append(("off", draw(pmfs(k))))
        elif kind == "fixed":
            kinds.append(("fixed", draw(st.integers(0, k - 1))))
        elif kind == "copy":
            j = draw(st.integers(0, i - 1))
            image = draw(st.lists(st.integers(0, k - 1), min_size=ks[j], max_size=ks[j]))
            kinds.append(("copy", j, image))
        else:
            kinds.append((kind,))
    bids = make_bids(draw(st.integers(0, 2**32 - 1)), theta, days, kinds)
    return theta, gamma, bids


def ledger_with_layout(theta, gamma: float, wide: bool) -> BidLedger:
    """A ledger on the packed layout (the default for short profiles) or forced onto the wide
    layout that profiles beyond 512 key bits use."""
    if not wide:
        return BidLedger(theta, gamma=gamma)
    flat = np.concatenate([np.asarray(row, dtype=np.float64) for row in theta])
    core = _core.Ledger(flat, [len(row) for row in theta], gamma, wide=True)
    assert core.wide
    return BidLedger._from_core(core, None)


@pytest.mark.parametrize("wide", [False, True], ids=["packed", "wide"])
@given(ragged_markets(), st.data())
@examples(2)
def test_ragged_type_spaces_match_reference(wide, market, data):
    """Players with their own K_i (1 included): flags, maxima, penalties and every accessor
    equal the dense reference, on both layouts, in one call or in chunks with and without
    detail, and after a save/load round trip."""
    theta, gamma, bids = market
    dense_ledger = ref.DenseLedger(theta, gamma)
    dense = dense_ledger.record(bids)
    ledger = ledger_with_layout(theta, gamma, wide)
    cut = data.draw(st.integers(0, len(bids)))
    first = ledger.record(bids[:cut], detail=data.draw(st.booleans()))
    restored = BidLedger.from_bytes(ledger.to_bytes())
    assert restored.to_bytes() == ledger.to_bytes()
    second = ledger.record(bids[cut:], detail=True)
    again = restored.record(bids[cut:], detail=True)
    np.testing.assert_array_equal(again.flags, second.flags)
    np.testing.assert_array_equal(again.joint, second.joint)
    part = ref.DenseRecord(
        days=dense.days[cut:],
        flags=dense.flags[cut:],
        marginal=dense.marginal[cut:],
        joint=dense.joint[cut:],
    )
    assert_matches_reference(second, part, ledger.penalty)
    np.testing.assert_array_equal(first.flags, dense.flags[:cut])
    flags_only = ledger_with_layout(theta, gamma, wide).record(bids)
    assert_matches_reference(flags_only, dense, ledger.penalty)
    assert_accessors_match(ledger, dense_ledger, np.random.default_rng(len(bids)))


@pytest.mark.parametrize(
    ("supertypes", "words"),
    [
        ([[0.5, 0.5], [1.0], [0.2, 0.3, 0.4]], ["player 2", "0.9000000"]),
        ([[0.5, 0.5], []], ["player 1", "(0,)"]),
        ([[0.5, 0.5], [[1.0]]], ["player 1", "(1, 1)"]),
        ([[0.5, 0.5], [0.5, "x"]], ["player 1", "'x'"]),
        ([[1.0], [0.7, 0.3, math.nan]], ["player 1", "nan"]),
        ([[1.0], [1.5, -0.5, 0.0]], ["player 1", "-0.5"]),
        (5, ["()"]),
    ],
)
def test_bad_ragged_supertypes(supertypes, words):
    with pytest.raises(ValueError) as err:
        BidLedger(supertypes)
    for word in words:
        assert word.lower() in str(err.value).lower()


def test_bids_outside_a_players_own_range():
    """A bid is checked against its own player's K_i; the batch is refused whole."""
    ledger = BidLedger([[1.0], [0.5, 0.5], [0.2, 0.3, 0.5]])
    ledger.record([[0, 1, 2], [0, 0, 1]])
    before = ledger.to_bytes()
    for bids, words in [
        ([[0, 1, 2], [1, 0, 0]], ["bid 1", "player 0", "day 4", "[0, 0]"]),
        ([[0, 2, 0]], ["bid 2", "player 1", "day 3", "[0, 1]"]),
        ([[0, 0, 3]], ["bid 3", "player 2", "day 3", "[0, 2]"]),
        ([[0, 0, -1]], ["bid -1", "player 2"]),
    ]:
        with pytest.raises(ValueError) as err:
            ledger.record(bids, detail=True)
        for word in words:
            assert word in str(err.value)
        assert ledger.to_bytes() == before
    with pytest.raises(ValueError, match=r"player 2 is outside the type space of player 2, 0\.\.2"):
        ledger.joint_discrepancy(np.array([0, 1, 3]))
    assert ledger.type_counts == (1, 2, 3) and ledger.n_types == 3
    assert "n_types=1..3" in repr(ledger)


def test_single_type_players_are_never_flagged():
    ledger = BidLedger([[1.0], [0.5, 0.5], [1.0]])
    result = ledger.record(np.zeros((50, 3), dtype=np.int64), detail=True)
    assert not result.flags[:, [0, 2]].any()
    assert (result.marginal[:, [0, 2]] == 0).all() and (result.joint[:, [0, 2]] == 0).all()
    assert result.flags[-10:, 1].all()  # always bidding 0 against (0.5, 0.5)


def planted_market(n: int, k_active: int, k_idle: int, correlated: bool, days: int, seed: int):
    """n players; four active ones (players 3, 50, 120 and n - 1) with K = ``k_active`` bid
    truthfully from (0.5, 0.5, 0, ...) except that player 50 copies player 3 when
    ``correlated``; the others have K = ``k_idle`` types and a point-mass supertype on their
    last type, which they always bid. Returns the supertypes, the bids and the active players
    with their reduced supertypes (two types each)."""
    active = [3, 50, 120, n - 1]
    pmf = np.zeros(k_active)
    pmf[:2] = 0.5
    idle = np.zeros(k_idle)
    idle[-1] = 1.0
    theta = [pmf.copy() if i in active else idle.copy() for i in range(n)]
    rng = np.random.default_rng(seed)
    bids = np.tile(np.full(n, k_idle - 1, dtype=np.int64), (days, 1))
    for i in active:
        bids[:, i] = rng.integers(0, 2, days)
    if correlated:
        bids[:, 50] = bids[:, 3]
    return theta, bids, active


@pytest.mark.parametrize(
    ("n", "k_active", "k_idle"),
    [(200, 2, 1), (200, 65_536, 1), (200, 3, 8), (300, 16, 16)],
    ids=["n200-single-types", "n200-K65536", "n200-wide", "n300-wide-K16"],
)
@pytest.mark.parametrize("correlated", [True, False], ids=["correlated", "independent"])
def test_planted_large_markets(n, k_active, k_idle, correlated):
    """Large n with planted structure. Players with a point-mass supertype who always bid its
    type have f = h = 0 and leave the other players' groups as they are, so the market's
    statistics are exactly those of the four active players alone (types relabelled), which
    the dense reference computes. With one active player copying another the groups repeat
    and the joint test must fire for that pair (their marginals are right); without, nobody
    is flagged after the first days."""
    theta, bids, active = planted_market(n, k_active, k_idle, correlated, 4000, seed=n)
    ledger = BidLedger(theta)
    assert ledger.type_counts == tuple(len(row) for row in theta)
    result = ledger.record(bids[:3500])
    detailed = ledger.record(bids[3500:], detail=True)
    reduced = ref.DenseLedger(np.full((4, 2), 0.5))
    expected = reduced.record(bids[:, active])
    flags = np.concatenate([result.flags, detailed.flags])
    idle = np.setdiff1d(np.arange(n), active)
    assert not flags[:, idle].any()
    assert (detailed.marginal[:, idle] == 0).all() and (detailed.joint[:, idle] == 0).all()
    np.testing.assert_array_equal(flags[:, active], expected.flags)
    np.testing.assert_array_equal(detailed.marginal[:, active], expected.marginal[3500:])
    np.testing.assert_allclose(
        detailed.joint[:, active], expected.joint[3500:], rtol=0, atol=JOINT_TOL
    )
    if correlated:
        assert flags[-500:, [3, 50]].all()
        assert (detailed.joint[:, [3, 50]] >= detailed.window[:, None]).all()
        assert (detailed.marginal[:, [3, 50]] < detailed.window[:, None]).all()
        assert not flags[-500:, [120, n - 1]].any()
    else:
        assert not flags[-1000:].any()
    restored = BidLedger.from_bytes(ledger.to_bytes())
    tail = bids[:200]
    np.testing.assert_array_equal(restored.record(tail).flags, ledger.record(tail).flags)


def test_ten_thousand_players():
    """n = 10,000 players with two types each (wide keys): marginal flags and the joint
    maxima follow the definitions (every group is seen once, so |h| = 0.5 / l)."""
    n, days = 10_000, 60
    ledger = BidLedger(np.full((n, 2), 0.5))
    bids = np.random.default_rng(7).integers(0, 2, (days, n))
    result = ledger.record(bids, detail=True)
    counts = np.cumsum(bids, axis=0)
    day = np.arange(1, days + 1)[:, None].astype(float)
    marginal = np.maximum(np.abs((day - counts) / day - 0.5), np.abs(counts / day - 0.5))
    np.testing.assert_array_equal(result.marginal, marginal)
    np.testing.assert_array_equal(result.joint, np.broadcast_to(0.5 * (1.0 / day), (days, n)))
    np.testing.assert_array_equal(result.flags, marginal >= result.window[:, None])
    assert ledger.groups_seen().tolist() == [days] * n
    more = ledger.record(np.random.default_rng(8).integers(0, 2, (500, n)))
    assert more.flags.shape == (500, n) and ledger.day == days + 500


def test_memory_refusals_change_nothing(monkeypatch):
    """A batch or an exact-maxima request that cannot fit is refused before anything is
    allocated or recorded."""
    ledger = BidLedger(np.full((2000, 2), 0.5))
    ledger.record(np.zeros((10, 2000), dtype=np.int64))
    before = ledger.to_bytes()
    monkeypatch.setenv("STOCHMECH_MEMORY_LIMIT", str(10**8))
    with pytest.raises(ValueError, match="recording 100000 days needs about"):
        ledger.record(np.zeros((100_000, 2000), dtype=np.int64), detail=True)
    assert ledger.to_bytes() == before
    monkeypatch.setenv("STOCHMECH_MEMORY_LIMIT", str(10**4))
    ledger.record(np.ones((1, 2000), dtype=np.int64))  # small growth is not checked
    monkeypatch.delenv("STOCHMECH_MEMORY_LIMIT")
    huge = [np.full(2**16, 2.0**-16)] * 3
    small = BidLedger(huge)
    assert small.type_counts == (65_536,) * 3


# ----------------------------------------------------------------------------------------
# threads on one ledger
# ----------------------------------------------------------------------------------------


def test_many_threads_on_one_ledger(tmp_path):
    """Eight threads mix record (some batches invalid), reads, copies, saves and loads on ONE
    ledger. Nothing raises but the invalid batches (which record nothing); every result
    describes the days its bids were recorded as, and the final state is that of recording
    the valid batches one after the other in the order they got their days."""
    theta = [[0.5, 0.5], [0.2, 0.3, 0.5], [1.0]]
    ledger = BidLedger(theta)
    rng = np.random.default_rng(3)
    batches = [
        np.column_stack([rng.integers(0, 2, m), rng.integers(0, 3, m), np.zeros(m, dtype=int)])
        for m in rng.integers(1, 400, 48)
    ]
    bad = [3, 17, 30]
    for j in bad:
        batches[j] = batches[j].copy()
        batches[j][-1, 1] = 3
    results: dict[int, LedgerRecord] = {}
    errors: list[BaseException] = []
    refused: list[int] = []

    def worker(w: int) -> None:
        try:
            for j in range(w, len(batches), 8):
                try:
                    results[j] = ledger.record(batches[j], detail=j % 5 == 0)
                except ValueError:
                    refused.append(j)
                _ = ledger.day, repr(ledger), ledger.marginal_counts, ledger.nbytes
                copy.copy(ledger).to_bytes()
                path = tmp_path / f"ledger{w}.bin"
                ledger.save(path)
                BidLedger.load(path)
                ledger.groups_seen()
                if j % 7 == 0:
                    ledger.joint_max()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(refused) == bad
    order = sorted(results, key=lambda j: results[j].days[0])
    replay = BidLedger(theta)
    for j in order:
        expected = replay.record(batches[j])
        np.testing.assert_array_equal(results[j].days, expected.days)
        np.testing.assert_array_equal(results[j].flags, expected.flags)
    assert ledger.day == sum(len(batches[j]) for j in results)
    assert ledger.profile_counts()[1].sum() == replay.profile_counts()[1].sum()
    np.testing.assert_array_equal(ledger.profile_counts()[0], replay.profile_counts()[0])


def test_core_calls_from_threads_serialize():
    """The native ledger alone (no wrapper lock): concurrent record and reads never raise
    'Already borrowed' and every day is recorded once."""
    core = _core.Ledger(np.array([0.5, 0.5, 0.25, 0.75]), [2, 2], 0.5)
    bids = np.random.default_rng(1).integers(0, 2, (2000, 2)).astype(np.int64)
    errors: list[BaseException] = []

    def hammer(i: int) -> None:
        try:
            for _ in range(20):
                core.record(bids, i % 2 == 0)
                _ = core.day, core.to_bytes(), core.__copy__(), core.marginal_counts()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert core.day == 6 * 20 * 2000
