"""Plain reference implementations of a finite two-stage game and the mechanism's payments,
written straight from the paper's definitions with loops over every profile (first paper,
eqs. 1, 5, 14, 23 and the deviation payoff of docs/modelling.md, "The best stationary
deviation"). Slow and obvious on purpose.

Player i has its own K_i types: ``v`` is an (n, K, A, B) array or a list of per-player
(K_i, A, B) arrays, ``theta`` an (n, K) array or a list of per-player pmfs; ``v[i][t, a, b]``
and ``theta[i][t]`` read both.
"""

from __future__ import annotations

import itertools

import numpy as np


def prob(theta, players: list[int], profile: tuple[int, ...]) -> float:
    p = 1.0
    for i, t in zip(players, profile, strict=True):
        p *= theta[i][t]
    return p


def profiles(v, players: list[int]):
    """Every profile of the given players' own types."""
    return itertools.product(*(range(len(v[i])) for i in players))


def second_stage(v: np.ndarray, c: np.ndarray, players: list[int], profile, a: int) -> int:
    """argmax_b sum_{i in players} v_i(profile_i, a, b) - c(a, b), smallest b on ties."""
    best_b, best = 0, -np.inf
    for b in range(c.shape[1]):
        w = sum(v[i][t, a, b] for i, t in zip(players, profile, strict=True)) - c[a, b]
        if w > best:
            best_b, best = b, w
    return best_b


def expected_welfare(v, c, theta, players: list[int], a: int) -> float:
    total = 0.0
    for profile in profiles(v, players):
        b = second_stage(v, c, players, profile, a)
        w = sum(v[i][t, a, b] for i, t in zip(players, profile, strict=True)) - c[a, b]
        total += prob(theta, players, profile) * w
    return total


def first_stage(v, c, theta, players: list[int] | None = None) -> tuple[int, float]:
    """(g1*, W*) over the given players (all by default); smallest a on ties."""
    players = list(range(len(v))) if players is None else players
    values = [expected_welfare(v, c, theta, players, a) for a in range(c.shape[0])]
    a = int(np.argmax(values))
    return a, values[a]


def expected_valuation(v, c, theta, i: int) -> float:
    players = list(range(len(v)))
    a, _ = first_stage(v, c, theta)
    total = 0.0
    for profile in profiles(v, players):
        b = second_stage(v, c, players, profile, a)
        total += prob(theta, players, profile) * v[i][profile[i], a, b]
    return total


def first_stage_payment(v, c, theta, i: int) -> float:
    """eq. (5): W*(theta_-i) - E_{delta~theta}[sum_{j != i} v_j - c] at g1*(theta), g2*."""
    players = list(range(len(v)))
    others = [j for j in players if j != i]
    _, w_without = first_stage(v, c, theta, others)
    a, _ = first_stage(v, c, theta)
    expected_others = 0.0
    for profile in profiles(v, players):
        b = second_stage(v, c, players, profile, a)
        w = sum(v[j][profile[j], a, b] for j in others) - c[a, b]
        expected_others += prob(theta, players, profile) * w
    return w_without - expected_others


def deviation_payoff(v, c, theta, i: int) -> np.ndarray:
    """C(t, s) = E_{delta_-i ~ theta_-i}[v_i(t, o1, g2*(o1, (s, delta_-i)))]."""
    players = list(range(len(v)))
    others = [j for j in players if j != i]
    k = len(v[i])  # the player's own types
    a, _ = first_stage(v, c, theta)
    out = np.zeros((k, k))
    for rest in profiles(v, others):
        p = prob(theta, others, rest)
        for s in range(k):
            profile = list(rest)
            profile.insert(i, s)
            b = second_stage(v, c, players, tuple(profile), a)
            for t in range(k):
                out[t, s] += p * v[i][t, a, b]
    return out
