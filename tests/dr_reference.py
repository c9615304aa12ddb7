"""Plain reference for the demand-response market, straight from the definitions.

Every profile of Delta^n and every state is enumerated; the dispatch solves problem (41) through
its KKT linear system (not the closed form); W*(theta_-i) enumerates the market without player
i; payments come from the generic VCG formula p_i^F = W*(theta_-i) - (W*(theta) - nu_i). Only
for small markets.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np

from stochmech.supertype import Supertype


def solve_dispatch(deltas: Sequence[float], d: float, delta_s: float) -> np.ndarray:
    """Minimize sum_i delta_i x_i^2 / 2 + delta_s g^2 / 2 s.t. sum_i x_i + g = d (KKT system)."""
    h = np.diag([*deltas, delta_s])
    m = h.shape[0]
    kkt = np.zeros((m + 1, m + 1))
    kkt[:m, :m] = h
    kkt[:m, m] = 1.0
    kkt[m, :m] = 1.0
    rhs = np.zeros(m + 1)
    rhs[m] = d
    return np.linalg.solve(kkt, rhs)[:m]  # x_1..x_n, g


def _support(theta: Supertype) -> list[tuple[float, float]]:
    return [(float(v), float(p)) for v, p in zip(theta.values, theta.probs, strict=True) if p > 0]


def profiles(
    providers: Sequence[Supertype], reserve: Supertype, shortage: Supertype
) -> Iterator[tuple[float, tuple[float, ...], float, float]]:
    """Yield (probability, deltas, d, delta_s) over every profile and state."""
    supports = [_support(p) for p in providers]
    for combo in itertools.product(*supports, _support(shortage), _support(reserve)):
        *types, (d, pd), (ds, ps) = combo
        prob = pd * ps
        for _, p in types:
            prob *= p
        yield prob, tuple(v for v, _ in types), d, ds


def social_cost(providers, reserve, shortage) -> float:
    """E[min cost of (41)]."""
    total = 0.0
    for prob, deltas, d, ds in profiles(providers, reserve, shortage):
        z = solve_dispatch(deltas, d, ds)
        total += prob * (0.5 * np.dot([*deltas, ds], z**2))
    return total


def provider_costs(providers, reserve, shortage) -> np.ndarray:
    """E[delta_i x_i^2 / 2] for each provider (= -nu_i)."""
    out = np.zeros(len(providers))
    for prob, deltas, d, ds in profiles(providers, reserve, shortage):
        z = solve_dispatch(deltas, d, ds)
        out += prob * 0.5 * np.array(deltas) * z[:-1] ** 2
    return out


def curtailments(providers, reserve, shortage) -> np.ndarray:
    out = np.zeros(len(providers))
    for prob, deltas, d, ds in profiles(providers, reserve, shortage):
        out += prob * solve_dispatch(deltas, d, ds)[:-1]
    return out


def welfare_without(providers, reserve, shortage, i: int) -> float:
    """W*(theta_-i): the market without provider i (reserve only if none is left)."""
    rest = [p for j, p in enumerate(providers) if j != i]
    return -social_cost(rest, reserve, shortage)


def payments_received(providers, reserve, shortage) -> np.ndarray:
    """-p_i^F with p_i^F = W*(theta_-i) - (W*(theta) - nu_i) (eq. 5)."""
    w = -social_cost(providers, reserve, shortage)
    nu = -provider_costs(providers, reserve, shortage)
    return np.array(
        [-(welfare_without(providers, reserve, shortage, i) - (w - nu[i])) for i in range(len(nu))]
    )


def posted_price_cost(providers, reserve, shortage, price: float) -> float:
    """Expected social cost when each provider curtails argmin_x delta x^2/2 - price x."""
    total = 0.0
    for prob, deltas, d, ds in profiles(providers, reserve, shortage):
        x = [price / delta for delta in deltas]
        g = d - sum(x)
        providers_cost = sum(0.5 * de * xi**2 for de, xi in zip(deltas, x, strict=True))
        total += prob * (providers_cost + 0.5 * ds * g**2)
    return total


def deviation_payoffs(
    levels: Sequence[np.ndarray],
    bids: Sequence[np.ndarray],
    player: int,
    reserve: Supertype,
    shortage: Supertype,
) -> np.ndarray:
    """C(t, s): player's true type t, type bid s, others' types drawn from their bids.

    ``levels[j]`` is provider j's own type space (its cost levels), ``bids[j]`` a pmf over it
    (entries beyond its own levels, if padded, must be zero and are ignored); t and s range
    over the player's own levels.
    """
    own = np.asarray(levels[player], dtype=float)
    k = own.size
    others = [
        Supertype(levels[j], np.asarray(bids[j])[: len(levels[j])])
        for j in range(len(levels))
        if j != player
    ]
    out = np.zeros((k, k))
    for prob, deltas, d, ds in profiles(others, reserve, shortage):
        for s in range(k):
            profile = list(deltas)
            profile.insert(player, float(own[s]))
            x = solve_dispatch(profile, d, ds)[player]
            out[:, s] += prob * (-0.5 * own * x**2)
    return out
