"""Plain reference of the simulation engine's day loop, from its documented definitions.

The streams are spawned from the seed (types, states, one per player); each batch of days draws
the uniforms of the type stream row after row and maps player i's uniform u to
min(#{k : F_i(k) <= u}, K_i - 1), with F_i player i's CDF (exactly 1 from its last type on), by
one binary search per player; the states come from the game, the bids from each strategy's
stationary policy; the DNBE market settles the batch through its public, checking ``settle``;
the per-player totals are added one day at a time. Only stationary strategies.
"""

from __future__ import annotations

import copy

import numpy as np

from stochmech._ragged import player_contexts
from stochmech._seeding import normalize_seed, spawn
from stochmech._state import checkpoint_grid
from stochmech.mechanism import DNBEMechanism, check_supertypes


def simulate_reference(
    game, theta, strategies, days: int, seed: int, chunk: int, **mechanism
) -> dict:
    """The sums, paths and last penalty days of ``days`` days played ``chunk`` days at a time."""
    theta = check_supertypes(game, theta)
    n = theta.shape[0]
    counts = game.type_counts
    streams = spawn(normalize_seed(seed), 2 + n)
    type_rng = np.random.default_rng(streams[0])
    state_rng = np.random.default_rng(streams[1])
    player_rngs = [np.random.default_rng(s) for s in streams[2:]]
    strategies = [copy.deepcopy(s) for s in strategies]
    contexts = player_contexts(game, theta)
    for s, ctx in zip(strategies, contexts, strict=True):
        s.prepare(ctx)
    bids = check_supertypes(
        game, [s.supertype_bid(ctx) for s, ctx in zip(strategies, contexts, strict=True)]
    )
    market = DNBEMechanism(game, **mechanism).open(bids)
    cdf = np.cumsum(theta, axis=1)
    for i in range(n):
        cdf[i, int(counts[i]) - 1 :] = 1.0

    sums = {name: np.zeros(n) for name in ("utility", "valuation", "payment", "penalty")}
    welfare = budget = 0.0
    penalty_days = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    grid = set(int(p) for p in checkpoint_grid(days))
    paths: dict[str, list] = {"day": [], "utility": [], "welfare": [], "budget": []}
    day = 0
    while day < days:
        size = min(chunk - day % chunk, days - day)
        u = type_rng.random((size, n))
        types = np.empty((size, n), dtype=np.int64)
        for i in range(n):
            types[:, i] = np.minimum(
                np.searchsorted(cdf[i], u[:, i], side="right"), int(counts[i]) - 1
            )
        states = game.sample_states(state_rng, size)
        day_bids = np.empty_like(types)
        for i, s in enumerate(strategies):
            day_bids[:, i] = s.type_bids(types[:, i], player_rngs[i])
        settled = market.settle(types, day_bids, states)
        day_welfare = settled.valuation.sum(axis=1) - settled.cost
        day_budget = settled.payment.sum(axis=1)
        for row in range(size):
            day += 1
            v, paid = settled.valuation[row], settled.payment[row]
            sums["utility"] += v - paid
            sums["valuation"] += v
            sums["payment"] += paid
            sums["penalty"] += settled.penalty[row]
            welfare += day_welfare[row]
            budget += day_budget[row]
            penalty_days += settled.flags[row]
            last[settled.flags[row]] = day
            if day in grid:
                paths["day"].append(day)
                paths["utility"].append(sums["utility"] / day)
                paths["welfare"].append(welfare / day)
                paths["budget"].append(budget / day)
    return {
        "average_utility": sums["utility"] / days,
        "average_valuation": sums["valuation"] / days,
        "average_payment": sums["payment"] / days,
        "average_penalty": sums["penalty"] / days,
        "average_welfare": welfare / days,
        "budget": budget / days,
        "penalty_days": penalty_days,
        "last_penalty_day": last,
        "checkpoints": np.array(paths["day"]),
        "utility_path": np.array(paths["utility"]),
        "welfare_path": np.array(paths["welfare"]),
        "budget_path": np.array(paths["budget"]),
        "ledger": market.ledger.to_bytes(),
    }


def running_reference(
    previous: np.ndarray, values: np.ndarray, rows: list[int]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Running totals added one day at a time: the totals after each day in ``rows`` and
    after the last day (what the engine's blocked sums must equal bit for bit)."""
    acc, at = previous.copy(), []
    for day, row in enumerate(values):
        acc += row
        if day in rows:
            at.append(acc.copy())
    return at, acc
