"""Plain references for the audit, straight from the definitions (small games only).

* every quantity of a finite game (g1*, g2*, W*, W*(theta_-i), nu_i, C(t, s)) by explicit loops
  over profiles and outcomes, without the library's vectorized enumeration;
* the transport LP by enumerating the vertices of the coupling polytope (every basis of
  K + K - 1 cells), and the free-column problem by enumerating all K^K deterministic kernels;
* a hypothesis strategy for small random games, with ties and zero probabilities.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import strategies as st

from stochmech import FiniteGame


# ----- finite games by loops ---------------------------------------------------------------
def first_near_max(values) -> int:
    """The smallest index whose value is within a relative 1e-12 of the maximum (a tie)."""
    top = max(values)
    return next(k for k, w in enumerate(values) if w >= top - 1e-12 * max(1.0, abs(top)))


def g2(game: FiniteGame, a: int, profile: tuple[int, ...], players: list[int]) -> int:
    """argmax_b sum_{j in players} v_j(profile_j, a, b) - c(a, b), smallest b on ties."""
    v, c = game.valuation_table, game.cost_table
    return first_near_max(
        [
            sum(v[j, profile[col], a, b] for col, j in enumerate(players)) - c[a, b]
            for b in range(game.n_second)
        ]
    )


def profiles(theta: np.ndarray):
    """(profile, probability) over the product law of the rows of theta."""
    m, k = theta.shape
    for prof in itertools.product(range(k), repeat=m):
        p = math.prod(theta[j, prof[j]] for j in range(m))
        if p > 0:
            yield prof, p


def welfare_by_outcome(game: FiniteGame, theta: np.ndarray, players: list[int]) -> np.ndarray:
    v, c = game.valuation_table, game.cost_table
    out = np.zeros(game.n_first)
    for a in range(game.n_first):
        for prof, p in profiles(theta[players]):
            b = g2(game, a, prof, players)
            out[a] += p * (sum(v[j, prof[col], a, b] for col, j in enumerate(players)) - c[a, b])
    return out


def first_stage(game: FiniteGame, theta: np.ndarray) -> int:
    return first_near_max(list(welfare_by_outcome(game, theta, list(range(game.n_players)))))


def optimal_welfare(game: FiniteGame, theta: np.ndarray, players: list[int] | None = None) -> float:
    players = list(range(game.n_players)) if players is None else players
    return float(welfare_by_outcome(game, theta, players).max())


def expected_valuation(game: FiniteGame, theta: np.ndarray, i: int) -> float:
    a = first_stage(game, theta)
    everyone = list(range(game.n_players))
    return sum(
        p * game.valuation_table[i, prof[i], a, g2(game, a, prof, everyone)]
        for prof, p in profiles(theta)
    )


def deviation_payoffs(game: FiniteGame, bids: np.ndarray, i: int) -> np.ndarray:
    """C(t, s) = E_{d_-i ~ bids_-i} v_i(t, a, g2(a, (s, d_-i))), a = g1*(bids)."""
    a = first_stage(game, bids)
    k = game.n_types
    everyone = list(range(game.n_players))
    others = [j for j in everyone if j != i]
    table = np.zeros((k, k))
    for prof, p in profiles(bids[others]):
        for s in range(k):
            full = [0] * game.n_players
            for col, j in enumerate(others):
                full[j] = prof[col]
            full[i] = s
            b = g2(game, a, tuple(full), everyone)
            table[:, s] += p * game.valuation_table[i, :, a, b]
    return table


def stationary_gain_bound(game: FiniteGame, i: int, theta_i: np.ndarray, bids: np.ndarray) -> float:
    """rho* + W*(bids) - nu_i(bids) - W*(theta_i, bids_-i), with rho* by vertex enumeration."""
    truthful = bids.copy()
    truthful[i] = theta_i
    rho = transport_by_vertices(deviation_payoffs(game, bids, i), theta_i, bids[i])
    return (
        rho
        + optimal_welfare(game, bids)
        - expected_valuation(game, bids, i)
        - optimal_welfare(game, truthful)
    )


# ----- the transport problem by brute force ------------------------------------------------
def transport_by_vertices(payoff: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    """max sum pi * payoff over couplings, by trying every basis of k1 + k2 - 1 cells."""
    k1, k2 = payoff.shape
    a = np.zeros((k1 + k2, k1 * k2))
    for t in range(k1):
        for s in range(k2):
            a[t, t * k2 + s] = 1.0
            a[k1 + s, t * k2 + s] = 1.0
    b = np.concatenate([rows, cols])
    best = -math.inf
    for cells in itertools.combinations(range(k1 * k2), k1 + k2 - 1):
        sub = a[:, cells]
        x, *_ = np.linalg.lstsq(sub, b, rcond=None)
        if np.abs(sub @ x - b).max() > 1e-10 or x.min() < -1e-12:
            continue
        best = max(best, float(payoff.ravel()[list(cells)] @ x))
    return best


def free_columns_by_kernels(payoff: np.ndarray, rows: np.ndarray) -> float:
    """max over all K^K deterministic kernels t -> s of sum_t rows[t] payoff[t, s(t)]."""
    k1, k2 = payoff.shape
    return max(
        sum(rows[t] * payoff[t, s[t]] for t in range(k1))
        for s in itertools.product(range(k2), repeat=k1)
    )


# ----- hypothesis strategies ---------------------------------------------------------------
@st.composite
def small_games(draw, max_players: int = 3, max_types: int = 3) -> FiniteGame:
    """Random FiniteGames with n in 2..3, K in 2..3, A, B in 1..3; half of them on a coarse
    grid of values, which makes ties in g1* and g2* common."""
    n = draw(st.integers(2, max_players))
    k = draw(st.integers(2, max_types))
    a = draw(st.integers(1, 3))
    b = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, k, a, b))
    c = rng.normal(size=(a, b))
    if draw(st.booleans()):
        v, c = np.round(2 * v) / 2, np.round(2 * c) / 2
    return FiniteGame(v, c)


def pmfs(k: int):
    """pmfs over k types with small integer weights: zeros and exact ties are common."""
    return (
        st.lists(st.integers(0, 6), min_size=k, max_size=k)
        .filter(lambda w: sum(w) > 0)
        .map(lambda w: np.array(w, dtype=float) / sum(w))
    )


def random_game(seed: int, n: int = 3, k: int = 3, a: int = 2, b: int = 3):
    """A random game and random true supertypes from a seed (for the simulation tests)."""
    rng = np.random.default_rng(seed)
    game = FiniteGame(rng.normal(size=(n, k, a, b)), rng.normal(size=(a, b)))
    return game, rng.dirichlet(np.ones(k), size=n)
