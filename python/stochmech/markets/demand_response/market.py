"""The demand-response market of the first paper (Section IV) as a two-stage stochastic game.

The model, the exact expectations without enumeration, the posted price and the beta-prime
reading of the paper's cost laws are described in docs/modelling.md ("The demand-response
market" and its subsections). In short: providers curtail x_i at cost delta_i/2 x_i^2, a reserve
generator covers the rest of the shortage d (eq. 41), and the optimal dispatch is
x_i = d v_i / S with v_i = 1/delta_i and S = sum_i v_i + 1/delta_s.

As a :class:`~stochmech.games.base.TwoStageGame`: the players are the providers, whose type
space is a finite set of cost parameters; O1 = {0}; the public state omega = (d, delta_s) is a
batch of shape (L, 2) (columns :data:`SHORTAGE` and :data:`RESERVE`); o2 is an (L, n + 1)
array (the curtailments, then the reserve output); a provider's valuation is minus its cost.
Expectations go through the Laplace quadrature of :mod:`stochmech.markets._inverse_sum`.

Examples
--------
>>> market = DemandResponseMarket([betaprime_supertype(1.0, 2.0, 8)] * 3, reserve=1.0)
>>> round(market.expected_social_cost(), 6)
0.075694
>>> market.expected_payments().round(6).tolist()
[0.058019, 0.058019, 0.058019]
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from stochmech._ragged import check_dense_size, check_type_counts, pad_pmfs
from stochmech._seeding import SeedLike, seed_sequence
from stochmech.games.base import TwoStageGame
from stochmech.markets._inverse_sum import (
    InverseSumMoments,
    LaplaceQuadrature,
    inverse_sum_moments,
    shifted_inverse,
)
from stochmech.supertype import Supertype, point_mass

__all__ = [
    "RESERVE",
    "SHORTAGE",
    "DemandResponseMarket",
    "LaplaceQuadrature",
    "MarketExpectations",
    "MonteCarloEstimate",
    "PostedPriceOptimum",
    "betaprime_parameters",
    "betaprime_supertype",
]

#: column of the shortage d in a batch of states
SHORTAGE = 0
#: column of the reserve cost parameter delta_s in a batch of states
RESERVE = 1

_CACHE_SIZE = 8


# ---------------------------------------------------------------------------------------------
# beta-prime supertypes
# ---------------------------------------------------------------------------------------------
def betaprime_parameters(mean: float, var: float) -> tuple[float, float]:
    """Shape parameters (alpha, beta) of the beta prime law with this mean and variance.

    beta = 2 + m (m + 1) / v and alpha = m (beta - 1); beta > 2 always, so the variance is
    finite, but moments of order beta and above are infinite.

    Examples
    --------
    >>> betaprime_parameters(1.0, 2.0)
    (2.0, 3.0)
    """
    mean = float(mean)
    var = float(var)
    if not (math.isfinite(mean) and mean > 0):
        raise ValueError(f"mean must be positive and finite, got {mean}")
    if not (math.isfinite(var) and var > 0):
        raise ValueError(f"var must be positive and finite, got {var}")
    beta = 2.0 + mean * (mean + 1.0) / var
    return mean * (beta - 1.0), beta


def betaprime_supertype(mean: float, var: float, levels: int) -> Supertype:
    """The beta prime law with this mean and variance, discretized onto ``levels`` types.

    The line is cut at the quantiles k/levels (k = 1..levels-1) into equal-probability bins and
    each bin is represented by its conditional mean, with probability 1/levels. The conditional
    means are exact: x f(x; alpha, beta) = m f(x; alpha + 1, beta - 1) for the beta prime
    density f, so the mean over a bin is levels * m * (G(b) - G(a)) with G the regularized
    incomplete beta function of the shifted law (evaluated on the side of 1/2 that avoids
    cancellation). The discrete mean therefore equals ``mean`` up to rounding.

    The discrete law keeps only part of the variance: Var(discrete) = var - E[Var(X | bin)],
    which grows with ``levels`` toward ``var``. The heavy right tail makes this slow: for
    mean 1 and variance 2 (beta prime (2, 3), density ~ x^-4) the missing part decays like
    levels^(-1/3):

    ======  ================  ==============
    levels  variance kept     fraction of 2
    ======  ================  ==============
    4       0.786             39.3 %
    8       1.042             52.1 %
    16      1.242             62.1 %
    64      1.524             76.2 %
    256     1.700             85.0 %
    1024    1.811             90.6 %
    ======  ================  ==============

    Parameters
    ----------
    mean, var : float
        Mean and variance of the continuous law (both positive).
    levels : int
        Number of types K >= 1.

    Returns
    -------
    Supertype
        Increasing positive values with probabilities 1/levels.

    Examples
    --------
    >>> theta = betaprime_supertype(1.0, 2.0, 16)
    >>> round(theta.mean(), 12), round(theta.var(), 3)
    (1.0, 1.242)
    >>> [round(betaprime_supertype(1.0, 2.0, k).var(), 3) for k in (4, 8, 64, 256, 1024)]
    [0.786, 1.042, 1.524, 1.7, 1.811]
    """
    alpha, beta = betaprime_parameters(mean, var)
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")
    k = int(levels)
    u = np.arange(k + 1) / k
    # Z = X / (1 + X) ~ Beta(alpha, beta) and W = 1 - Z ~ Beta(beta, alpha): compute each edge
    # on both sides so that differences are taken where they are accurate.
    z = special.betaincinv(alpha, beta, u)
    w = special.betaincinv(beta, alpha, 1.0 - u)
    g_low = special.betainc(alpha + 1.0, beta - 1.0, z)  # G(edge), accurate for z <= 1/2
    g_high = special.betainc(beta - 1.0, alpha + 1.0, w)  # 1 - G(edge), accurate for w <= 1/2
    mass = np.where(z[1:] <= 0.5, g_low[1:] - g_low[:-1], g_high[:-1] - g_high[1:])
    values = k * float(mean) * mass
    if not np.all(values > 0) or not np.all(np.diff(values) > 0):  # pragma: no cover
        raise ValueError(
            f"levels={k} is too fine for mean={mean}, var={var}: bins are not resolvable"
        )
    return Supertype(values, np.full(k, 1.0 / k))


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MarketExpectations:
    """Long-run averages of the market under truthful bids (exact expectations).

    Attributes
    ----------
    social_cost : float
        E[d^2 / (2 S)], the optimal expected social cost (= -W*(theta)).
    reserve_cost : float
        E[delta_s g_s^2 / 2] = E[d^2] E[v_s / S^2] / 2.
    reserve_output : float
        E[g_s] = E[d] E[v_s / S].
    curtailment : ndarray, shape (n,)
        E[x_i] = E[d] E[v_i / S].
    provider_cost : ndarray, shape (n,)
        E[delta_i x_i^2 / 2] = E[d^2] E[v_i / S^2] / 2 (= -nu_i(theta)).
    payment_received : ndarray, shape (n,)
        Long-run average payment each provider receives under the mechanism,
        E[d^2/(2 S_-i)] - E[d^2/(2 S)] + E[d^2/(2 delta_i S^2)] (= -p_i^F, eq. 5; the
        second-stage payment averages to zero under truth).
    utility : ndarray, shape (n,)
        payment_received - provider_cost = E[d^2/(2 S_-i)] - E[d^2/(2 S)] = W*(theta) -
        W*(theta_-i) >= 0 (individual rationality).
    quadrature_nodes : int
        Nodes of the quadrature that produced these numbers.
    """

    social_cost: float
    reserve_cost: float
    reserve_output: float
    curtailment: np.ndarray
    provider_cost: np.ndarray
    payment_received: np.ndarray
    utility: np.ndarray
    quadrature_nodes: int

    @property
    def planner_budget(self) -> float:
        """Net payments the planner receives per day on average (= -sum of payments received)."""
        return -float(self.payment_received.sum())


@dataclass(frozen=True)
class PostedPriceOptimum:
    """The best posted price and its expected social cost.

    Attributes
    ----------
    price : float
        Price per unit of curtailment that minimizes the expected social cost.
    social_cost : float
        Expected social cost at that price.
    optimal_social_cost : float
        Expected social cost of the optimal dispatch (the mechanism under truth).
    """

    price: float
    social_cost: float
    optimal_social_cost: float

    @property
    def gap(self) -> float:
        """Excess expected social cost of the best posted price over the mechanism (>= 0)."""
        return self.social_cost - self.optimal_social_cost


@dataclass(frozen=True)
class MonteCarloEstimate:
    """Sample means (with standard errors) of per-day quantities under truthful types.

    ``payment_received`` averages the per-day quantity d^2/2 (1/S_-i - 1/S + v_i/S^2), whose
    expectation is the long-run payment; it is a check of the expectations, not a simulation of
    the mechanism's realized payments.

    Attributes
    ----------
    days : int
        Number of simulated days.
    social_cost, social_cost_se : float
        Mean of d^2 / (2 S) and its standard error.
    payment_received, payment_received_se : ndarray, shape (n,)
        Mean of the per-day payment quantity and its standard error.
    curtailment, curtailment_se : ndarray, shape (n,)
        Mean of x_i = d v_i / S and its standard error.
    """

    days: int
    social_cost: float
    social_cost_se: float
    payment_received: np.ndarray
    payment_received_se: np.ndarray
    curtailment: np.ndarray
    curtailment_se: np.ndarray


class _Moments:
    """Running sums for means and standard errors (shifted by the first batch's mean)."""

    def __init__(self) -> None:
        self.count = 0
        self.shift: np.ndarray | None = None
        self.total: Any = 0.0
        self.total_sq: Any = 0.0

    def add(self, x: np.ndarray) -> None:
        if self.shift is None:
            self.shift = x.mean(axis=0)
        y = x - self.shift
        self.count += x.shape[0]
        self.total = self.total + y.sum(axis=0)
        self.total_sq = self.total_sq + (y * y).sum(axis=0)

    def mean_se(self) -> tuple[np.ndarray, np.ndarray]:
        assert self.shift is not None
        dev = self.total / self.count
        var = np.maximum(self.total_sq / self.count - dev**2, 0.0) * self.count / (self.count - 1)
        return self.shift + dev, np.sqrt(var / self.count)


# ---------------------------------------------------------------------------------------------
# the market
# ---------------------------------------------------------------------------------------------
def _as_supertype(x: Supertype | float, what: str) -> Supertype:
    if isinstance(x, Supertype):
        return x
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise ValueError(f"{what} must be a Supertype or a number, got {x!r}")
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"{what} = {value} is not finite")
    return point_mass(value)


#: cost parameters and shortages are kept within this magnitude range, so that the dispatch
#: and payments (products and ratios of a few of them) stay finite in float64
SCALE_LIMIT = 1e100


def _require_positive(theta: Supertype, what: str) -> None:
    bad = np.flatnonzero(theta.values <= 0)
    if bad.size:
        raise ValueError(
            f"{what} has non-positive cost parameter {theta.values[bad[0]]} (index {bad[0]});"
            " cost parameters must be positive"
        )
    bad = np.flatnonzero((theta.values < 1 / SCALE_LIMIT) | (theta.values > SCALE_LIMIT))
    if bad.size:
        raise ValueError(
            f"{what} has cost parameter {theta.values[bad[0]]} (index {bad[0]}) outside "
            f"[{1 / SCALE_LIMIT:g}, {SCALE_LIMIT:g}], where the market's figures stay finite"
        )


def _require_moderate(theta: Supertype, what: str) -> None:
    bad = np.flatnonzero(np.abs(theta.values) > SCALE_LIMIT)
    if bad.size:
        raise ValueError(
            f"{what} has value {theta.values[bad[0]]} (index {bad[0]}) beyond +-{SCALE_LIMIT:g}"
            ", where the market's figures stay finite"
        )


def _check_levels(x: Any, what: str) -> np.ndarray:
    tv = np.array(x, dtype=float)
    if tv.ndim != 1 or tv.size == 0:
        raise ValueError(f"{what} must be a non-empty 1-D array, got shape {tv.shape}")
    bad = np.flatnonzero(~np.isfinite(tv) | (tv <= 0))
    if bad.size:
        raise ValueError(f"{what}[{bad[0]}] = {tv[bad[0]]} is not a positive finite cost parameter")
    order = np.argsort(tv, kind="stable")
    dup = np.flatnonzero(np.diff(tv[order]) == 0)
    if dup.size:
        raise ValueError(f"{what} has the repeated value {tv[order][dup[0]]}")
    tv.setflags(write=False)
    return tv


def _provider_levels(
    provs: tuple[Supertype, ...], type_values: ArrayLike | Sequence[ArrayLike] | None
) -> tuple[np.ndarray, ...]:
    """Each provider's own type space: its cost levels, in increasing order by default."""
    if type_values is None:
        memo: dict[int, np.ndarray] = {}
        for p in provs:
            if id(p) not in memo:
                lv = np.sort(p.values)
                lv.setflags(write=False)
                memo[id(p)] = lv
        return tuple(memo[id(p)] for p in provs)
    if (isinstance(type_values, np.ndarray) and type_values.ndim == 1) or (
        isinstance(type_values, Sequence)
        and len(type_values) > 0
        and all(isinstance(x, (int, float, np.integer, np.floating)) for x in type_values)
    ):
        shared = _check_levels(type_values, "type_values")
        return tuple(shared for _ in provs)
    if isinstance(type_values, (str, bytes)) or not isinstance(type_values, (Sequence, np.ndarray)):
        raise ValueError(
            f"type_values must be an array or one array per provider, got {type_values!r:.80}"
        )
    if len(type_values) != len(provs):
        raise ValueError(
            f"type_values must hold one array of levels per provider ({len(provs)}), "
            f"got {len(type_values)}"
        )
    return tuple(_check_levels(x, f"type_values[{i}]") for i, x in enumerate(type_values))


class DemandResponseMarket(TwoStageGame):
    """The demand-response market (first paper, Section IV); see the module docstring.

    Parameters
    ----------
    providers : sequence of Supertype or float
        Provider i's supertype: the law of its cost parameter delta_i (positive values). A
        number is a point mass (a provider whose cost parameter is always that number).
    reserve : Supertype or float
        Law of the reserve generator's cost parameter delta_s (positive values).
    shortage : Supertype or float, default 1.0
        Law of the shortage d (finite values; d and delta_s are independent of each other and
        of the types).
    type_values : array_like or sequence of array_like, optional
        The providers' public type spaces (distinct positive cost parameters, ordered by
        cost). By default each provider's type space is its own levels: the values listed in
        its supertype, in increasing order (no grid shared with the other providers). A 1-D
        array gives every provider that same type space; a sequence of n arrays gives each
        provider its own. A provider's type space must contain every value to which it gives
        positive probability.
    quadrature : LaplaceQuadrature, optional
        Settings of the exact-expectation quadrature (defaults are accurate to about 1e-15).

    Raises
    ------
    ValueError
        On an empty provider list, a non-positive cost parameter, a non-finite shortage, or a
        type space that misses a provider's value; the message names the value.

    Examples
    --------
    >>> from stochmech.supertype import Supertype
    >>> m = DemandResponseMarket([Supertype([1.0, 2.0], [0.5, 0.5]), 4.0], reserve=1.0)
    >>> m.n_players, [lv.tolist() for lv in m.levels], m.type_counts.tolist()
    (2, [[1.0, 2.0], [4.0]], [2, 1])
    >>> o2 = m.second_stage(m.first_stage(m.supertype_bids()), np.array([[0, 0]]),
    ...                     np.array([[1.0, 1.0]]))
    >>> o2.round(4).tolist()  # x_1, x_2, g_s for delta = (1, 4), d = 1, delta_s = 1
    [[0.4444, 0.1111, 0.4444]]
    """

    def __init__(
        self,
        providers: Sequence[Supertype | float],
        reserve: Supertype | float,
        shortage: Supertype | float = 1.0,
        *,
        type_values: ArrayLike | None = None,
        quadrature: LaplaceQuadrature | None = None,
    ) -> None:
        if isinstance(providers, (Supertype, str, bytes)) or not isinstance(providers, Sequence):
            raise ValueError(
                f"providers must be a sequence of Supertypes, got {type(providers).__name__}"
            )
        if len(providers) == 0:
            raise ValueError("providers must list at least one provider, got 0")
        provs = tuple(_as_supertype(p, f"providers[{i}]") for i, p in enumerate(providers))
        checked: set[int] = set()  # a Supertype listed many times is checked once
        for i, p in enumerate(provs):
            if id(p) not in checked:
                _require_positive(p, f"providers[{i}]")
                checked.add(id(p))
        self.providers: tuple[Supertype, ...] = provs
        self.reserve: Supertype = _as_supertype(reserve, "reserve")
        _require_positive(self.reserve, "reserve")
        self.shortage: Supertype = _as_supertype(shortage, "shortage")
        _require_moderate(self.shortage, "shortage")
        self.quadrature: LaplaceQuadrature = quadrature or LaplaceQuadrature()
        if not isinstance(self.quadrature, LaplaceQuadrature):
            raise ValueError(f"quadrature must be a LaplaceQuadrature, got {quadrature!r}")

        levels = _provider_levels(provs, type_values)
        counts = check_type_counts(np.array([lv.size for lv in levels]))
        self.levels: tuple[np.ndarray, ...] = levels
        self.n_players = len(provs)
        self.n_types = int(counts.max())
        self._type_counts = counts
        self._player_values = levels
        shared = all(lv is levels[0] or np.array_equal(lv, levels[0]) for lv in levels)
        self.type_values = levels[0] if shared else None
        check_dense_size(self.n_players, self.n_types, "the providers' levels")
        # value of every (provider, type index); padding beyond K_i repeats the first level
        self._level_table = np.repeat(
            np.array([lv[0] for lv in levels])[:, None], self.n_types, axis=1
        )
        for i, lv in enumerate(levels):
            self._level_table[i, : lv.size] = lv
        self._level_table.setflags(write=False)

        # Compact per-provider supports (positive probability only), padded with probability 0.
        width = max(int(np.count_nonzero(p.probs > 0)) for p in provs)
        check_dense_size(self.n_players, width, "the providers' supports")
        self._values = np.ones((self.n_players, width))  # delta values
        self._probs = np.zeros((self.n_players, width))
        self._type_index = np.zeros((self.n_players, width), dtype=np.int64)
        rows: dict[tuple[int, int], int] = {}  # (supertype, levels) already laid out -> row
        for i, (p, lv) in enumerate(zip(provs, levels, strict=True)):
            seen = rows.get((id(p), id(lv)))
            if seen is not None:
                self._values[i] = self._values[seen]
                self._probs[i] = self._probs[seen]
                self._type_index[i] = self._type_index[seen]
                continue
            rows[(id(p), id(lv))] = i
            keep = p.probs > 0
            vals, prs = p.values[keep], p.probs[keep]
            order = np.argsort(lv, kind="stable")
            pos = np.minimum(np.searchsorted(lv[order], vals), lv.size - 1)
            found = lv[order][pos] == vals
            if not np.all(found):
                missing = vals[~found][0]
                raise ValueError(f"providers[{i}] value {missing} is not among its levels")
            self._values[i, : vals.size] = vals
            self._values[i, vals.size :] = vals[0]
            self._probs[i, : vals.size] = prs
            self._type_index[i, : vals.size] = order[pos]
        self._cache: OrderedDict[bytes, InverseSumMoments] = OrderedDict()

    def __repr__(self) -> str:
        counts = self.type_counts
        types = (
            f"n_types={self.n_types}"
            if not self.ragged
            else f"n_types={int(counts.min())}..{int(counts.max())}"
        )
        return (
            f"DemandResponseMarket(n_players={self.n_players}, {types}, "
            f"reserve={self.reserve!r}, shortage={self.shortage!r})"
        )

    # ----- truthful bids and derived markets -----
    def supertype_bids(self) -> np.ndarray:
        """The truthful supertype bids: an (n, K) array, row i a pmf over provider i's levels.

        K is the largest number of levels; row i is zero beyond provider i's own K_i.

        Examples
        --------
        >>> DemandResponseMarket([2.0, 4.0], reserve=1.0).supertype_bids().tolist()
        [[1.0], [1.0]]
        >>> DemandResponseMarket([2.0, 4.0], reserve=1.0, type_values=[2.0, 4.0]).supertype_bids()
        array([[1., 0.],
               [0., 1.]])
        """
        bids = np.zeros((self.n_players, self.n_types))
        for i in range(self.n_players):
            np.add.at(bids[i], self._type_index[i], self._probs[i])
        return bids

    def without(self, player: int) -> DemandResponseMarket:
        """The same market with ``player`` removed (same levels, reserve and shortage).

        Examples
        --------
        >>> DemandResponseMarket([2.0, 4.0], reserve=1.0).without(0).n_players
        1
        """
        i = self._check_player(player)
        if self.n_players == 1:
            raise ValueError("cannot remove the only provider of a market")
        rest = [p for j, p in enumerate(self.providers) if j != i]
        return DemandResponseMarket(
            rest,
            self.reserve,
            self.shortage,
            type_values=[lv for j, lv in enumerate(self.levels) if j != i],
            quadrature=self.quadrature,
        )

    # ----- validation -----
    def _check_player(self, player: int) -> int:
        if isinstance(player, bool) or not isinstance(player, (int, np.integer)):
            raise ValueError(f"player must be an integer, got {player!r}")
        if not 0 <= player < self.n_players:
            raise ValueError(f"player {player} is out of range for {self.n_players} players")
        return int(player)

    def _check_bids(self, supertypes: ArrayLike) -> np.ndarray:
        return pad_pmfs(supertypes, self.type_counts, "supertype bids")

    def _check_types(self, types: ArrayLike) -> np.ndarray:
        arr = np.asarray(types)
        if arr.ndim != 2 or arr.shape[1] != self.n_players:
            raise ValueError(f"types must have shape (L, {self.n_players}), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"types must be integer type indices, got dtype {arr.dtype}")
        counts = self.type_counts
        if arr.size and (arr.min() < 0 or np.any(arr.max(axis=0) >= counts)):
            bad = (arr < 0) | (arr >= counts[None, :])
            day, i = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError(
                f"type index types[{day}, {i}] = {arr[day, i]} is outside provider {i}'s "
                f"levels 0..{int(counts[i]) - 1}"
            )
        return arr

    def own_ladder(self, player: int) -> np.ndarray:
        """Indices of the levels provider ``player``'s own supertype lists, in increasing cost:
        the steps of an inflating liar (its next own level, whatever other levels its type
        space holds).

        Examples
        --------
        >>> law = Supertype([1.0, 3.0], [0.5, 0.5])
        >>> m = DemandResponseMarket([law], 1.0, type_values=[1, 2, 3])
        >>> m.own_ladder(0).tolist()
        [0, 2]
        """
        i = self._check_player(player)
        levels = self.levels[i]
        own = np.sort(self.providers[i].values)
        order = np.argsort(levels, kind="stable")
        return order[np.searchsorted(levels[order], own)]

    def level_values(self, types: np.ndarray) -> np.ndarray:
        """Cost parameters delta_i of a batch of type indices, (L, n) -> (L, n).

        Examples
        --------
        >>> m = DemandResponseMarket([2.0, 4.0], reserve=1.0)
        >>> m.level_values(np.array([[0, 0]])).tolist()
        [[2.0, 4.0]]
        """
        t = self._check_types(types)
        if self.type_values is not None:  # one type space shared by every provider
            return self.type_values[t]
        flat = self._level_table.ravel()
        return flat[t + np.arange(self.n_players) * self._level_table.shape[1]]

    def _check_states(self, states: Any, days: int) -> np.ndarray:
        if states is None:
            raise ValueError("this market has an exogenous state (d, delta_s): pass states")
        arr = np.asarray(states, dtype=float)
        if arr.shape != (days, 2):
            raise ValueError(f"states must have shape ({days}, 2), got {arr.shape}")
        bad: np.ndarray = np.argwhere(~np.isfinite(arr))
        if bad.size:
            day, c = bad[0]
            raise ValueError(f"states[{day}, {c}] = {arr[day, c]} is not finite")
        bad = np.flatnonzero(arr[:, RESERVE] <= 0)
        if bad.size:
            raise ValueError(
                f"reserve cost parameter states[{bad[0]}, {RESERVE}] = "
                f"{arr[bad[0], RESERVE]} is not positive"
            )
        return arr

    def _check_o2(self, o2: ArrayLike) -> np.ndarray:
        arr = np.asarray(o2, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != self.n_players + 1:
            raise ValueError(f"o2 must have shape (L, {self.n_players + 1}), got {arr.shape}")
        return arr

    # ----- TwoStageGame: decision rules and per-day quantities -----
    def first_stage(self, supertypes: np.ndarray) -> int:
        """g1*: there is no first-stage decision in this market, O1 = {0}; returns 0.

        Examples
        --------
        >>> m = DemandResponseMarket([2.0], reserve=1.0)
        >>> m.first_stage(m.supertype_bids())
        0
        """
        self._check_bids(supertypes)
        return 0

    def dispatch(self, deltas: ArrayLike, shortage: ArrayLike, reserve: ArrayLike) -> np.ndarray:
        """Optimal dispatch (eq. 41) for cost parameters given as numbers, batched over days.

        Parameters
        ----------
        deltas : array_like, shape (L, n)
            Providers' cost parameters (positive).
        shortage, reserve : array_like, shape (L,)
            Shortage d and reserve cost parameter delta_s (positive) of each day.

        Returns
        -------
        ndarray, shape (L, n + 1)
            x_i = d / (delta_i S) for each provider, then g_s = d / (delta_s S).

        Examples
        --------
        >>> m = DemandResponseMarket([1.0, 1.0], reserve=2.0)
        >>> m.dispatch([[1.0, 1.0]], [1.0], [2.0]).tolist()
        [[0.4, 0.4, 0.2]]
        """
        dl = np.asarray(deltas, dtype=float)
        d = np.asarray(shortage, dtype=float)
        ds = np.asarray(reserve, dtype=float)
        if dl.ndim != 2 or dl.shape[1] != self.n_players:
            raise ValueError(f"deltas must have shape (L, {self.n_players}), got {dl.shape}")
        if d.shape != (dl.shape[0],) or ds.shape != (dl.shape[0],):
            raise ValueError(
                f"shortage and reserve must have shape ({dl.shape[0]},), got {d.shape}, {ds.shape}"
            )
        bad: np.ndarray = np.argwhere(~(dl > 0) | ~np.isfinite(dl))
        if bad.size:
            day, i = bad[0]
            raise ValueError(f"deltas[{day}, {i}] = {dl[day, i]} is not a positive cost parameter")
        bad = np.flatnonzero(~(ds > 0) | ~np.isfinite(ds))
        if bad.size:
            raise ValueError(f"reserve[{bad[0]}] = {ds[bad[0]]} is not a positive cost parameter")
        v = 1.0 / dl
        vs = 1.0 / ds
        s = v.sum(axis=1) + vs
        share = np.concatenate([v, vs[:, None]], axis=1) / s[:, None]
        return d[:, None] * share

    def second_stage(self, o1: Any, types: np.ndarray, states: Any = None) -> np.ndarray:
        """g2*: the optimal dispatch of each day, an (L, n + 1) array (x_1..x_n, g_s).

        Examples
        --------
        >>> m = DemandResponseMarket([1.0, 1.0], reserve=2.0)
        >>> m.second_stage(0, np.array([[0, 0]]), np.array([[1.0, 2.0]])).tolist()
        [[0.4, 0.4, 0.2]]
        """
        t = self._check_types(types)
        st = self._check_states(states, t.shape[0])
        return self.dispatch(self.level_values(t), st[:, SHORTAGE], st[:, RESERVE])

    def valuations(
        self, types: np.ndarray, o1: Any, o2: np.ndarray, states: Any = None
    ) -> np.ndarray:
        """v_i = -delta_i x_i^2 / 2 with delta_i the value of ``types[l, i]``; shape (L, n).

        Examples
        --------
        >>> m = DemandResponseMarket([2.0], reserve=1.0)
        >>> m.valuations(np.array([[0]]), 0, np.array([[0.5, 0.5]])).tolist()
        [[-0.25]]
        """
        t = self._check_types(types)
        x = self._check_o2(o2)
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"o2 has {x.shape[0]} days but types has {t.shape[0]}")
        return -0.5 * self.level_values(t) * x[:, : self.n_players] ** 2

    def _day_terms(
        self,
        o1: Any,
        types: np.ndarray,
        bids: np.ndarray,
        states: Any,
        differ: Any = None,
        out: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The engine's batch (see :meth:`TwoStageGame._day_terms`): the dispatch of the bids,
        the valuations at the bids and at the true types, and the reserve's cost.

        The same operations, on the same numbers and in the same order, as
        :meth:`second_stage`, :meth:`valuations` and :meth:`cost`: 1/delta and -delta/2 of
        every (provider, level) are tabulated once (the divisions and products
        :meth:`dispatch` and :meth:`valuations` do on each day's looked-up delta), the rows
        are done in blocks that stay in cache, and the valuations at the true types are only
        computed for the providers in ``differ`` (for the others they are the valuations at
        the bids). ``out``: (days, n + 1), (days, n) and (days, n) float arrays for o2 and the
        two valuations; with None for o2, o2 is not kept (None is returned in its place).
        """
        n = self.n_players
        tables = getattr(self, "_terms_tables", None)
        if tables is None:
            flat = self._level_table.ravel()
            tables = (1.0 / flat, -0.5 * flat, np.arange(n, dtype=np.int64) * self.n_types)
            self._terms_tables = tables
        inverse, neg_half, offsets = tables
        days = bids.shape[0]
        d = states[:, SHORTAGE]
        delta_s = states[:, RESERVE]
        vs = 1.0 / delta_s
        same = types is bids or (differ is not None and len(differ) == 0)
        if out is None:
            out = (np.empty((days, n + 1)), np.empty((days, n)), np.empty((days, n)))
        o2, v_bid, v_true = out
        if same:
            v_true = v_bid
        reserve = np.empty(days)  # g_s of each day (o2's last column), for the cost
        columns = None if same or differ is None else np.asarray(differ, dtype=np.int64)
        block = max(1, (1 << 17) // n)
        index = np.empty((min(block, days), n), dtype=np.int64)
        v = np.empty((min(block, days), n))
        square = np.empty((min(block, days), n))
        rows = np.empty((min(block, days), n + 1)) if o2 is None else None
        for r0 in range(0, days, block):
            r1 = min(days, r0 + block)
            m = r1 - r0
            idx, vb, sq = index[:m], v[:m], square[:m]
            np.add(bids[r0:r1], offsets, out=idx)
            np.take(inverse, idx, out=vb, mode="wrap")
            # dispatch: x_i = d * (v_i / S), g_s = d * (v_s / S), S = sum_i v_i + v_s
            total = vb.sum(axis=1)
            total += vs[r0:r1]
            dispatch = o2[r0:r1] if rows is None else rows[:m]
            np.divide(vb, total[:, None], out=dispatch[:, :n])
            np.divide(vs[r0:r1], total, out=dispatch[:, n])
            np.multiply(dispatch, d[r0:r1, None], out=dispatch)
            reserve[r0:r1] = dispatch[:, n]
            # valuations: (-delta_i / 2) * x_i^2
            np.square(dispatch[:, :n], out=sq)
            np.take(neg_half, idx, out=vb, mode="wrap")
            np.multiply(vb, sq, out=v_bid[r0:r1])
            if same:
                continue
            if columns is None:
                np.add(types[r0:r1], offsets, out=idx)
                np.take(neg_half, idx, out=vb, mode="wrap")
                np.multiply(vb, sq, out=v_true[r0:r1])
            else:
                v_true[r0:r1] = v_bid[r0:r1]
                own = neg_half[types[r0:r1, columns] + offsets[columns]]
                v_true[r0:r1, columns] = own * sq[:, columns]
        cost = 0.5 * delta_s * reserve**2
        return o2, v_bid, v_true, cost

    def cost(self, o1: Any, o2: np.ndarray, states: Any = None) -> np.ndarray:
        """Planner's cost: the reserve's delta_s g_s^2 / 2 of each day; shape (L,).

        Examples
        --------
        >>> m = DemandResponseMarket([2.0], reserve=1.0)
        >>> m.cost(0, np.array([[0.5, 0.5]]), np.array([[1.0, 4.0]])).tolist()
        [0.5]
        """
        x = self._check_o2(o2)
        st = self._check_states(states, x.shape[0])
        return 0.5 * st[:, RESERVE] * x[:, self.n_players] ** 2

    def sample_states(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` IID states: an (L, 2) array of shortages d and reserve parameters delta_s.

        Examples
        --------
        >>> m = DemandResponseMarket([2.0], reserve=3.0, shortage=1.5)
        >>> m.sample_states(np.random.default_rng(0), 2).tolist()
        [[1.5, 3.0], [1.5, 3.0]]
        """
        out = np.empty((int(size), 2))
        out[:, SHORTAGE] = self.shortage.sample(rng, int(size))
        out[:, RESERVE] = self.reserve.sample(rng, int(size))
        return out

    def state_support(self) -> tuple[np.ndarray, np.ndarray]:
        """Every state (d, delta_s) with positive probability and its probability.

        Examples
        --------
        >>> from stochmech.supertype import Supertype
        >>> m = DemandResponseMarket([2.0], reserve=Supertype([1.0, 2.0], [0.5, 0.5]))
        >>> states, probs = m.state_support()
        >>> states.tolist(), probs.tolist()
        ([[1.0, 1.0], [1.0, 2.0]], [0.5, 0.5])
        """
        d = self.shortage.support
        pd = self.shortage.probs[self.shortage.probs > 0]
        s = self.reserve.support
        ps = self.reserve.probs[self.reserve.probs > 0]
        states = np.stack(np.meshgrid(d, s, indexing="ij"), axis=-1).reshape(-1, 2)
        return states, np.outer(pd, ps).ravel()

    def sample_types(self, rng: np.random.Generator, days: int) -> np.ndarray:
        """Truthful type draws: an (L, n) array of indices into each provider's own levels.

        Examples
        --------
        >>> m = DemandResponseMarket([2.0, 4.0], reserve=1.0, type_values=[2.0, 4.0])
        >>> m.sample_types(np.random.default_rng(0), 2).tolist()
        [[0, 1], [0, 1]]
        """
        idx = self._sample_compact(rng, int(days))
        return self._type_index[np.arange(self.n_players)[None, :], idx]

    def _sample_compact(self, rng: np.random.Generator, days: int) -> np.ndarray:
        """Column indices into the compact supports, shape (days, n)."""
        cum = np.cumsum(self._probs, axis=1)
        last = np.count_nonzero(self._probs > 0, axis=1) - 1
        u = rng.random((days, self.n_players))
        idx = (u[:, :, None] >= cum[None, :, :]).sum(axis=2)
        return np.minimum(idx, last[None, :])

    # ----- exact expectations -----
    def _moments_of(self, bids: np.ndarray) -> InverseSumMoments:
        """Quadrature moments for supertype bids over Delta (cached by content)."""
        key = bids.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        mask = bids > 0
        width = int(mask.sum(axis=1).max())
        order = np.argsort(~mask, axis=1, kind="stable")[:, :width]
        values = 1.0 / np.take_along_axis(self._level_table, order, axis=1)
        probs = np.take_along_axis(bids, order, axis=1)
        out = self._inverse_moments(values, probs)
        self._cache[key] = out
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return out

    def _inverse_moments(self, v: np.ndarray, p: np.ndarray) -> InverseSumMoments:
        vs = 1.0 / self.reserve.values
        return inverse_sum_moments(v, p, vs, self.reserve.probs, self.quadrature)

    def _truthful_moments(self) -> InverseSumMoments:
        key = b"truthful"
        if key not in self._cache:
            self._cache[key] = self._inverse_moments(1.0 / self._values, self._probs)
        return self._cache[key]

    def optimal_welfare(self, supertypes: np.ndarray) -> float:
        """W*(theta) = -E[d^2 / (2 S)] for supertype bids ``theta`` over Delta.

        Examples
        --------
        >>> m = DemandResponseMarket([1.0], reserve=1.0)
        >>> round(m.optimal_welfare(m.supertype_bids()), 12)
        -0.25
        """
        mom = self._moments_of(self._check_bids(supertypes))
        return -0.5 * self.shortage.moment(2) * mom.inv

    def optimal_welfare_without(self, supertypes: np.ndarray, player: int) -> float:
        """W*(theta_-i) = -E[d^2 / (2 S_-i)]: the market without ``player``.

        ``supertypes`` is the full (n, K) bid array; row ``player`` is ignored.

        Examples
        --------
        >>> m = DemandResponseMarket([1.0, 1.0], reserve=1.0)
        >>> round(m.optimal_welfare_without(m.supertype_bids(), 0), 12)
        -0.25
        """
        bids = self._check_bids(supertypes)
        i = self._check_player(player)
        mom = self._moments_of(bids)
        return -0.5 * self.shortage.moment(2) * float(mom.inv + mom.loo_gap[i])

    def expected_valuations(self, supertypes: np.ndarray) -> np.ndarray:
        """nu_i(theta) = -E[d^2 v_i / (2 S^2)], shape (n,).

        Examples
        --------
        >>> m = DemandResponseMarket([1.0], reserve=1.0)
        >>> m.expected_valuations(m.supertype_bids()).round(12).tolist()
        [-0.125]
        """
        mom = self._moments_of(self._check_bids(supertypes))
        return -0.5 * self.shortage.moment(2) * mom.share2

    def deviation_payoffs(self, supertype_bids: np.ndarray, player: int) -> np.ndarray:
        """C(t, s) = -(delta_t / 2) E[d^2] v_s^2 E[1 / (v_s + R_-i)^2], shape (K_i, K_i).

        R_-i = sum_{j != i} 1/delta_j + 1/delta_s with delta_j ~ bids_j; v_s = 1/delta_s is the
        bid type's inverse cost: the allocation follows the bid s, the cost the true type t;
        t and s range over provider i's own levels. The table is dense, K_i x K_i (8 K_i^2
        bytes).

        Examples
        --------
        >>> m = DemandResponseMarket([1.0], reserve=1.0, type_values=[1.0, 2.0])
        >>> m.deviation_payoffs(np.array([[1.0, 0.0]]), 0).round(4).tolist()
        [[-0.125, -0.0556], [-0.25, -0.1111]]
        """
        bids = self._check_bids(supertype_bids)
        i = self._check_player(player)
        rest = np.delete(bids, i, axis=0)
        if rest.shape[0]:
            mask = rest > 0
            width = int(mask.sum(axis=1).max())
            order = np.argsort(~mask, axis=1, kind="stable")[:, :width]
            v = 1.0 / np.take_along_axis(np.delete(self._level_table, i, axis=0), order, axis=1)
            p = np.take_along_axis(rest, order, axis=1)
        else:
            v = np.ones((0, 1))
            p = np.zeros((0, 1))
        own_levels = self.levels[i]
        a = 1.0 / own_levels
        m2 = shifted_inverse(
            v, p, 1.0 / self.reserve.values, self.reserve.probs, a, 2, self.quadrature
        )
        own = self.shortage.moment(2) * a**2 * m2  # E[x_i^2] when bidding s
        return -0.5 * own_levels[:, None] * own[None, :]

    # ----- the market designer's quantities (truthful bids) -----
    def expectations(self) -> MarketExpectations:
        """Every long-run average of the market under truthful bids (exact).

        Examples
        --------
        >>> e = DemandResponseMarket([1.0, 1.0], reserve=1.0).expectations()
        >>> round(e.social_cost, 12), e.payment_received.round(12).tolist()
        (0.166666666667, [0.138888888889, 0.138888888889])
        """
        mom = self._truthful_moments()
        d2 = self.shortage.moment(2)
        d1 = self.shortage.mean()
        provider_cost = 0.5 * d2 * mom.share2
        utility = 0.5 * d2 * mom.loo_gap
        curtailment = d1 * mom.share
        payment = utility + provider_cost
        for a in (provider_cost, utility, curtailment, payment):
            a.setflags(write=False)
        return MarketExpectations(
            social_cost=0.5 * d2 * mom.inv,
            reserve_cost=0.5 * d2 * mom.base_share2,
            reserve_output=d1 * mom.base_share,
            curtailment=curtailment,
            provider_cost=provider_cost,
            payment_received=payment,
            utility=utility,
            quadrature_nodes=mom.nodes,
        )

    def expected_social_cost(self) -> float:
        """Optimal expected social cost E[d^2 / (2 S)] under truthful bids (= -W*(theta)).

        Examples
        --------
        >>> round(DemandResponseMarket([1.0], reserve=1.0).expected_social_cost(), 12)
        0.25
        """
        return self.expectations().social_cost

    def expected_payments(self) -> np.ndarray:
        """Long-run average payment each provider RECEIVES under truth, shape (n,).

        E[d^2/(2 S_-i)] - E[d^2/(2 S)] + E[d^2/(2 delta_i S^2)] = -p_i^F (eq. 5).

        Examples
        --------
        >>> DemandResponseMarket([1.0], reserve=1.0).expected_payments().round(12).tolist()
        [0.375]
        """
        return self.expectations().payment_received

    def expected_curtailment(self) -> np.ndarray:
        """E[x_i] = E[d] E[v_i / S] for each provider under truth, shape (n,).

        Examples
        --------
        >>> DemandResponseMarket([1.0, 1.0], reserve=2.0).expected_curtailment().round(12).tolist()
        [0.4, 0.4]
        """
        return self.expectations().curtailment

    # ----- posted price -----
    def _posted_price_moments(self) -> tuple[float, float, float, float, float]:
        inv = 1.0 / self._values  # compact supports; padding has probability 0
        means = (self._probs * inv).sum(axis=1)
        variances = (self._probs * (inv - means[:, None]) ** 2).sum(axis=1)
        e_t = float(means.sum())
        var_t = float(variances.sum())
        return (
            e_t,
            var_t + e_t**2,
            self.reserve.mean(),
            self.shortage.mean(),
            self.shortage.moment(2),
        )

    def posted_price_social_cost(self, price: ArrayLike) -> np.ndarray | float:
        """Expected social cost of a posted price (exact), vectorized over prices.

        At price p provider i curtails x_i = p / delta_i (its best response), the reserve covers
        g_s = d - p T with T = sum_i 1/delta_i (negative g_s is surplus, priced by the same
        quadratic), and the social cost is sum_i p^2 / (2 delta_i) + delta_s g_s^2 / 2. Its
        expectation is the quadratic p^2 E[T]/2 + E[delta_s] (E[d^2] - 2 p E[d] E[T] +
        p^2 E[T^2]) / 2, by independence of d, delta_s and the types.

        Parameters
        ----------
        price : float or array_like
            Finite prices (any shape).

        Returns
        -------
        float or ndarray
            Same shape as ``price`` (a float for a scalar).

        Examples
        --------
        >>> m = DemandResponseMarket([1.0], reserve=1.0)
        >>> m.posted_price_social_cost([0.0, 0.5, 1.0]).tolist()
        [0.5, 0.25, 0.5]
        """
        p = np.asarray(price, dtype=float)
        bad = np.flatnonzero(~np.isfinite(p.ravel()))
        if bad.size:
            raise ValueError(f"price {p.ravel()[bad[0]]} is not finite")
        e_t, e_t2, e_ds, e_d, e_d2 = self._posted_price_moments()
        cost = 0.5 * p**2 * e_t + 0.5 * e_ds * (e_d2 - 2.0 * p * e_d * e_t + p**2 * e_t2)
        return float(cost) if cost.ndim == 0 else cost

    def best_posted_price(self) -> PostedPriceOptimum:
        """The price that minimizes the expected posted-price social cost, and that cost.

        The expected cost is an exact quadratic in the price (see
        :meth:`posted_price_social_cost`), so the minimizer is closed form:
        p* = E[delta_s] E[d] E[T] / (E[T] + E[delta_s] E[T^2]).

        Examples
        --------
        >>> opt = DemandResponseMarket([1.0], reserve=1.0).best_posted_price()
        >>> opt.price, opt.social_cost, round(opt.gap, 12)
        (0.5, 0.25, 0.0)
        """
        e_t, e_t2, e_ds, e_d, _ = self._posted_price_moments()
        price = e_ds * e_d * e_t / (e_t + e_ds * e_t2)
        cost = float(self.posted_price_social_cost(price))
        return PostedPriceOptimum(price, cost, self.expected_social_cost())

    # ----- the posted-price scheme of the simulation engine (stochmech.PostedPrice) -----
    def posted_price(self, supertype_bids: ArrayLike) -> float:
        """The price the operator discovers from declared supertypes: the best posted price of
        the market in which the declarations are the true laws.

        Examples
        --------
        >>> m = DemandResponseMarket([1.0, 1.0], reserve=1.0)
        >>> m.posted_price(m.supertype_bids()) == m.best_posted_price().price
        True
        """
        bids = self._check_bids(supertype_bids)
        levels = self.levels
        declared = DemandResponseMarket(
            [Supertype(lv, row[: lv.size]) for lv, row in zip(levels, bids, strict=True)],
            self.reserve,
            self.shortage,
            type_values=list(levels),
            quadrature=self.quadrature,
        )
        return declared.best_posted_price().price

    def price_response(
        self, price: float, types: ArrayLike, states: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every provider's best response to a posted price at its TRUE cost, batched over days.

        Provider i curtails x_i = p / delta_i and receives p x_i; the reserve covers
        g_s = d - sum_i x_i (negative: surplus). Returns ``(o2, received)``: the (L, n + 1)
        outcome (x_1..x_n, g_s) and the (L, n) payments received.

        Examples
        --------
        >>> m = DemandResponseMarket([2.0], reserve=1.0)
        >>> o2, got = m.price_response(1.0, np.array([[0]]), np.array([[1.0, 1.0]]))
        >>> o2.tolist(), got.tolist()
        ([[0.5, 0.5]], [[0.5]])
        """
        p = float(price)
        if not math.isfinite(p):
            raise ValueError(f"price must be finite, got {price!r}")
        t = self._check_types(types)
        st = self._check_states(states, t.shape[0])
        inv = 1.0 / self.level_values(t)
        x = p * inv
        g = st[:, SHORTAGE] - p * inv.sum(axis=1)
        return np.concatenate([x, g[:, None]], axis=1), p * x

    def price_utility(self, price: float, player: int, true_supertype: ArrayLike) -> float:
        """Exact long-run utility of a provider at a posted price: p^2 E[1/delta_i] / 2.

        Examples
        --------
        >>> DemandResponseMarket([2.0], reserve=1.0).price_utility(1.0, 0, [1.0])
        0.25
        """
        i = self._check_player(player)
        own = self.levels[i]  # every provider's utility depends on its own law only
        theta = np.asarray(true_supertype, dtype=float)
        if theta.ndim == 1 and theta.size > own.size and not np.any(theta[own.size :]):
            theta = theta[: own.size]  # a row padded beyond the provider's own levels
        if theta.shape != (own.size,):
            raise ValueError(
                f"true_supertype must be a pmf over provider {i}'s {own.size} levels, "
                f"got shape {theta.shape}"
            )
        inv_mean = float((theta / own).sum())
        return 0.5 * float(price) ** 2 * inv_mean

    # ----- Monte Carlo check -----
    def monte_carlo(self, days: int, seed: SeedLike | None = None) -> MonteCarloEstimate:
        """Sample means, with standard errors, of the truthful per-day quantities.

        Draws ``days`` IID days (types from the providers' supertypes, d and delta_s from their
        laws) and averages the social cost d^2/(2S), the per-day payment quantity
        d^2/2 (1/S_-i - 1/S + v_i/S^2) and the curtailment d v_i/S. An independent check of
        :meth:`expectations`.

        Examples
        --------
        >>> est = DemandResponseMarket([1.0], reserve=1.0).monte_carlo(10, seed=0)
        >>> est.social_cost, est.social_cost_se
        (0.25, 0.0)
        """
        if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 2:
            raise ValueError(f"days must be an integer >= 2, got {days!r}")
        rng = np.random.default_rng(None if seed is None else seed_sequence(seed))
        n = self.n_players
        chunk = max(1, (1 << 21) // (n * self._probs.shape[1]))
        cost_m, pay_m, cur_m = _Moments(), _Moments(), _Moments()
        done = 0
        while done < days:
            size = min(chunk, days - done)
            idx = self._sample_compact(rng, size)
            v = 1.0 / np.take_along_axis(self._values, idx.T, axis=1).T
            st = self.sample_states(rng, size)
            d = st[:, SHORTAGE]
            vs = 1.0 / st[:, RESERVE]
            s = v.sum(axis=1) + vs
            s_minus = s[:, None] - v
            half_d2 = 0.5 * d**2
            cost_m.add(half_d2 / s)
            pay_m.add(half_d2[:, None] * (v / (s_minus * s[:, None]) + v / s[:, None] ** 2))
            cur_m.add(d[:, None] * v / s[:, None])
            done += size
        c, c_se = cost_m.mean_se()
        p, p_se = pay_m.mean_se()
        x, x_se = cur_m.mean_se()
        return MonteCarloEstimate(int(days), float(c), float(c_se), p, p_se, x, x_se)
