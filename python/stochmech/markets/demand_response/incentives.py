"""Incentives in the demand-response market, side by side: the mechanism and two natural schemes.

One provider lies, the others are truthful; how much does the liar gain under the DNBE
mechanism, a posted price discovered from the declarations, and pay as bid? What each scheme
does with a declaration and a daily report, and how the exact long-run values are computed, is
described in docs/modelling.md ("Incentives: the mechanism, a posted price and pay as bid").
The comparison reports each lie's exact long-run gain and its simulated gain with common random
numbers (the truth and every lie of a replication see the same days).

Examples
--------
>>> cmp = compare_incentives(n_providers=3, levels=3, days=2000, replications=2,
...                          lies=[Lie.inflate(1)], executor=None)
>>> [(r.scheme, r.lie) for r in cmp.rows]  # doctest: +NORMALIZE_WHITESPACE
[('mechanism', 'inflate +1 level'), ('posted price', 'inflate +1 level'),
 ('pay as bid', 'inflate +1 level')]
>>> [r.exact_gain > 0 for r in cmp.rows]
[False, True, True]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stochmech._seeding import SeedLike, describe_seed, normalize_seed, seed_record
from stochmech._validate import integer
from stochmech._validate import player as check_player
from stochmech.audit import stationary_kernel
from stochmech.markets._sweeps import ExecutorLike, mean_and_se, replication_seeds, run_tasks
from stochmech.markets.demand_response.market import DemandResponseMarket, betaprime_supertype
from stochmech.mechanism import DNBEMechanism
from stochmech.schemes import PayAsBid, PaymentScheme, PostedPrice
from stochmech.simulation import Simulation
from stochmech.strategies import (
    PlayerContext,
    Strategy,
    Truthful,
)
from stochmech.supertype import Supertype, point_mass

__all__ = [
    "SCHEMES",
    "IncentiveComparison",
    "IncentiveRow",
    "Lie",
    "LiePlan",
    "compare_incentives",
    "default_lies",
    "discovered_price",
    "incentive_market",
    "schemes_for",
]

#: the payment schemes compared, in table order
SCHEMES = ("mechanism", "posted price", "pay as bid")


def schemes_for(market: DemandResponseMarket) -> dict[str, PaymentScheme]:
    """The compared schemes, in :data:`SCHEMES` order: the DNBE mechanism, the posted price the
    operator discovers from the declarations, and pay as bid."""
    return {
        "mechanism": DNBEMechanism(market),
        "posted price": PostedPrice(),
        "pay as bid": PayAsBid(),
    }


# ---------------------------------------------------------------------------------------------
# lies
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiePlan:
    """A lie made concrete for one provider of one market.

    Attributes
    ----------
    declared : ndarray, shape (K,)
        The supertype declared on day 1, as a pmf over the market's types.
    kernel : ndarray, shape (K, K)
        The law of the day's report given the day's true type (row t: the report's pmf).
    coupling : ndarray, shape (K, K)
        Joint law pi(t, s) = theta(t) kernel(t, s) of the true type t and the report s.
    strategy : Strategy
        The strategy that plays it in :func:`stochmech.simulate`.
    """

    declared: np.ndarray
    kernel: np.ndarray
    coupling: np.ndarray
    strategy: Strategy

    @property
    def reports_follow_declaration(self) -> bool:
        """Whether the reports' law equals the declared law (the ledger's frequency test)."""
        return bool(np.allclose(self.coupling.sum(axis=0), self.declared, rtol=0, atol=1e-12))


@dataclass(frozen=True)
class Lie:
    """A provider's deviation: the supertype it declares and how it reports every day.

    Build one with :meth:`inflate` or :meth:`claim`.

    Attributes
    ----------
    name : str
        Short label for tables.
    kind : {"inflate", "claim"}
    steps : int
        For "inflate": report the type ``steps`` levels above the true one (types are ordered
        by cost, the top level is kept).
    declare : {"induced", "truthful"}
        For "inflate": declare the law the reports follow ("induced", which keeps the ledger's
        frequency test quiet) or the true law ("truthful").
    claimed : Supertype or None
        For "claim": the declared law (its values must be types of the market); the reports
        follow it through the monotone coupling with the true type.
    """

    name: str
    kind: str
    steps: int = 0
    declare: str = "induced"
    claimed: Supertype | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("inflate", "claim"):
            raise ValueError(f"kind must be 'inflate' or 'claim', got {self.kind!r}")
        if self.declare not in ("induced", "truthful"):
            raise ValueError(f"declare must be 'induced' or 'truthful', got {self.declare!r}")
        if self.kind == "claim" and not isinstance(self.claimed, Supertype):
            raise ValueError(f"a claim needs the claimed Supertype, got {self.claimed!r}")

    @classmethod
    def inflate(cls, steps: int, declare: str = "induced", name: str | None = None) -> Lie:
        """Reports its cost ``steps`` levels higher every day.

        Examples
        --------
        >>> Lie.inflate(2).name, Lie.inflate(1, declare="truthful").name
        ('inflate +2 levels', 'inflate +1 level, declares true law')
        """
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
            raise ValueError(f"steps must be an integer, got {steps!r}")
        if name is None:
            name = f"inflate {int(steps):+d} level{'s' if abs(int(steps)) != 1 else ''}"
            if declare == "truthful":
                name += ", declares true law"
        return cls(name=name, kind="inflate", steps=int(steps), declare=declare)

    @classmethod
    def claim(cls, claimed: Supertype, name: str) -> Lie:
        """Declares ``claimed`` and reports the type at its true quantile under that law.

        Examples
        --------
        >>> Lie.claim(point_mass(2.0), "always 2").kind
        'claim'
        """
        return cls(name=name, kind="claim", claimed=claimed)

    def describe(self) -> str:
        """A sentence saying exactly what the liar does."""
        if self.kind == "inflate":
            law = (
                "declares the law its reports then follow"
                if self.declare == "induced"
                else "declares its true law"
            )
            return (
                f"reports the cost level {self.steps:+d} from its true one every day (capped at "
                f"the top level) and {law}"
            )
        assert self.claimed is not None
        return (
            f"declares the law with mean {self.claimed.mean():.4g} and variance "
            f"{self.claimed.var():.4g} on {int(np.count_nonzero(self.claimed.probs))} levels "
            "and reports the type at its true quantile under that law every day"
        )

    def spec(self) -> dict[str, Any]:
        """The lie as a strategy spec of the one registry
        (:data:`stochmech.scenario.STRATEGY_KINDS`, the format of scenario files).

        Examples
        --------
        >>> Lie.inflate(2).spec()
        {'kind': 'inflate', 'steps': 2, 'declare': 'induced'}
        """
        if self.kind == "inflate":
            kind = "inflate" if self.steps >= 1 else "shift"
            return {"kind": kind, "steps": self.steps, "declare": self.declare}
        assert self.claimed is not None
        law = {"values": self.claimed.values.tolist(), "probs": self.claimed.probs.tolist()}
        return {"kind": "supertype-lie", "bid": law, "coupling": "quantile"}

    def strategy(self, market: DemandResponseMarket, player: int) -> Strategy:
        """The strategy that plays this lie for ``player`` of ``market``."""
        from stochmech.scenario import strategy_from_spec

        try:
            return strategy_from_spec(self.spec(), market, player)[0]
        except ValueError as err:
            raise ValueError(f"lie {self.name!r}: {err}") from None

    def plan(self, market: DemandResponseMarket, player: int) -> LiePlan:
        """The declaration, the report kernel, the joint law of (type, report) and the strategy
        for ``player``, read off the strategy (:func:`stochmech.audit.stationary_kernel`)."""
        player = check_player(player, market.n_players)
        k = int(market.type_counts[player])
        theta = market.supertype_bids()[player, :k]
        strategy = self.strategy(market, player)
        context = PlayerContext(
            player=player, supertype=theta, n_types=k, type_values=market.levels[player]
        )
        found = stationary_kernel(strategy, context)
        assert found is not None  # both kinds are stationary
        declared, kernel = found
        return LiePlan(
            declared=declared,
            kernel=kernel,
            coupling=theta[:, None] * kernel,
            strategy=strategy,
        )


def own_ladder(market: DemandResponseMarket, player: int) -> np.ndarray:
    """Indices of the levels provider ``player``'s own supertype lists, in increasing cost.

    An inflating liar steps along these: one step up from 0.311 is the provider's next own
    level, whatever other levels its type space holds.

    Examples
    --------
    >>> from stochmech.supertype import Supertype
    >>> m = DemandResponseMarket([Supertype([1.0, 3.0], [0.5, 0.5])], 1.0, type_values=[1, 2, 3])
    >>> own_ladder(m, 0).tolist()
    [0, 2]
    """
    return market.own_ladder(player)


def incentive_market(
    n_providers: int = 10,
    levels: int = 8,
    *,
    mean: float = 1.0,
    var: float = 2.0,
    shortage: float = 1.0,
    claimed_mean: float = 2.0,
) -> DemandResponseMarket:
    """The market of the default comparison.

    ``n_providers`` providers with beta-prime(mean, var) costs discretized to ``levels`` types,
    the reserve's cost parameter with the same law, shortage ``shortage``; each provider's type
    space also holds the levels of the beta prime law with mean ``claimed_mean`` (same
    variance), so that it can claim that law (see :func:`default_lies`). An inflating liar still
    steps along its own levels (:func:`own_ladder`).

    Examples
    --------
    >>> m = incentive_market(4, 3)
    >>> m.n_players, m.n_types
    (4, 6)
    """
    theta = betaprime_supertype(mean, var, levels)
    claim = betaprime_supertype(claimed_mean, var, levels)
    values = np.union1d(theta.values, claim.values)
    return DemandResponseMarket([theta] * int(n_providers), theta, shortage, type_values=values)


def default_lies(
    market: DemandResponseMarket, player: int = 0, claimed: Supertype | None = None
) -> list[Lie]:
    """The lies of the default comparison for ``player`` of ``market``.

    Inflating by one and two levels (declaring the law the reports follow), inflating by one
    level while declaring the true law, claiming the law ``claimed`` (when given; its values
    must be types of the market, as :func:`incentive_market` arranges for the beta prime law
    with twice the mean) and claiming the provider's highest cost level every day.

    Examples
    --------
    >>> [lie.name for lie in default_lies(incentive_market(3, 3))]  # doctest: +NORMALIZE_WHITESPACE
    ['inflate +1 level', 'inflate +2 levels', 'inflate +1 level, declares true law',
     'claims top cost always']
    """
    lies = [Lie.inflate(1), Lie.inflate(2), Lie.inflate(1, declare="truthful")]
    if claimed is not None:
        lies.append(Lie.claim(claimed, f"claims mean {claimed.mean():.3g}"))
    support = np.flatnonzero(market.supertype_bids()[player] > 0)
    top = float(market.levels[player][support].max())
    lies.append(Lie.claim(point_mass(top), "claims top cost always"))
    return lies


def discovered_price(market: DemandResponseMarket, declared: np.ndarray) -> float:
    """The posted price the operator discovers from the declared supertypes.

    It is the best posted price of the market in which the declarations are the true laws
    (:meth:`DemandResponseMarket.posted_price`).

    Examples
    --------
    >>> m = DemandResponseMarket([1.0, 1.0], reserve=1.0)
    >>> discovered_price(m, m.supertype_bids()) == m.best_posted_price().price
    True
    """
    return market.posted_price(declared)


def _exact_utilities(
    market: DemandResponseMarket, plan: LiePlan | None, player: int
) -> dict[str, float]:
    """Long-run average utility of ``player`` under each scheme (others truthful), exactly:
    each scheme's ``long_run_utility`` for the lie's declaration and report kernel."""
    theta = market.supertype_bids()
    k = int(market.type_counts[player])  # the provider's own levels
    bids = theta.copy()
    kernel = np.eye(k)
    if plan is not None:
        bids[player] = 0.0
        bids[player, :k] = plan.declared
        kernel = plan.kernel
    return {
        name: scheme.long_run_utility(market, theta[player, :k], bids, player, kernel)  # type: ignore[attr-defined]
        for name, scheme in schemes_for(market).items()
    }


# ---------------------------------------------------------------------------------------------
# the comparison
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IncentiveRow:
    """One scheme and one lie: the liar's utility and gain over the truth (per day).

    Attributes
    ----------
    scheme, lie, description : str
    exact_utility, exact_gain : float
        Long-run values (minus infinity when the mechanism's ledger catches the lie).
    simulated_utility, simulated_utility_se : float
        Mean over replications of the liar's average utility, and its standard error.
    simulated_gain, simulated_gain_se : float
        Mean over replications of (utility lying - utility truthful, same seed) over the
        finite horizon, penalties included, and its standard error.
    penalty_difference : float
        Mean over replications of (average penalty paid lying - average penalty paid truthful).
        The mechanism flags every provider on its first days, when the window r(l) is wide
        (a truthful provider with K types is flagged on day 1 unless one type has probability
        at least 1 - r(1) = 0.41): a transient of order 1/days that a lie may avoid or incur.
        Zero for the other schemes.
    gain_without_penalties, gain_without_penalties_se : float
        ``simulated_gain + penalty_difference``: the gain had the mechanism charged no
        penalties. For lies the ledger does not catch this is what the exact long-run gain
        predicts; for a caught lie it shows what the penalties prevent.
    penalty_days : float
        Mean number of days on which the liar was penalized (the mechanism only; 0 otherwise).
    truthful_utility : float
        The exact long-run utility of the truth under this scheme.
    """

    scheme: str
    lie: str
    description: str
    exact_utility: float
    exact_gain: float
    simulated_utility: float
    simulated_utility_se: float
    simulated_gain: float
    simulated_gain_se: float
    penalty_difference: float
    gain_without_penalties: float
    gain_without_penalties_se: float
    penalty_days: float
    truthful_utility: float

    @property
    def verdict(self) -> str:
        """'pays', 'loses' or 'neutral', from the exact gain (tolerance 1e-12 relative)."""
        if self.exact_gain == -math.inf:
            return "loses"
        scale = 1e-12 * max(abs(self.truthful_utility), abs(self.exact_utility), 1e-300)
        if self.exact_gain > scale:
            return "pays"
        if self.exact_gain < -scale:
            return "loses"
        return "neutral"

    @property
    def z(self) -> float:
        """(gain without penalties - exact gain) / its standard error; NaN when the exact gain is
        infinite or the standard error is zero."""
        if not math.isfinite(self.exact_gain) or self.gain_without_penalties_se <= 0:
            return math.nan
        return (self.gain_without_penalties - self.exact_gain) / self.gain_without_penalties_se

    def agrees(self, z: float = 4.0) -> bool:
        """Whether simulation and exact value agree: within ``z`` standard errors, or to 1e-12
        when the standard error is zero; a caught lie agrees when it was penalized on most
        days and lost."""
        if self.exact_gain == -math.inf:
            return self.simulated_gain < 0
        if self.gain_without_penalties_se > 0:
            return abs(self.z) <= z
        scale = 1e-12 * max(abs(self.truthful_utility), abs(self.exact_utility), 1e-300)
        return abs(self.gain_without_penalties - self.exact_gain) <= scale

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (infinite exact values become None, with ``caught_by_ledger``)."""

        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "scheme": self.scheme,
            "lie": self.lie,
            "description": self.description,
            "exact_utility": num(self.exact_utility),
            "exact_gain": num(self.exact_gain),
            "caught_by_ledger": self.exact_gain == -math.inf,
            "truthful_utility": self.truthful_utility,
            "simulated_utility": self.simulated_utility,
            "simulated_utility_se": self.simulated_utility_se,
            "simulated_gain": self.simulated_gain,
            "simulated_gain_se": self.simulated_gain_se,
            "penalty_difference": self.penalty_difference,
            "gain_without_penalties": self.gain_without_penalties,
            "gain_without_penalties_se": self.gain_without_penalties_se,
            "penalty_days": self.penalty_days,
            "verdict": self.verdict,
            "simulation_agrees": self.agrees(),
        }


@dataclass(frozen=True)
class IncentiveComparison:
    """What :func:`compare_incentives` returns.

    Attributes
    ----------
    rows : tuple of IncentiveRow
        Lie by lie, scheme by scheme (in :data:`SCHEMES` order).
    truthful_exact, truthful_simulated, truthful_simulated_se : dict
        The deviator's utility under each scheme when it tells the truth.
    player, n_providers, n_types, days, replications, seed : int
    posted_price : float
        The price discovered from truthful declarations (the best posted price).
    setup : str
        The market, in words.
    """

    rows: tuple[IncentiveRow, ...]
    truthful_exact: dict[str, float]
    truthful_simulated: dict[str, float]
    truthful_simulated_se: dict[str, float]
    player: int
    n_providers: int
    n_types: int
    days: int
    replications: int
    seed: int | np.random.SeedSequence
    posted_price: float
    setup: str

    def lying_pays(self, scheme: str) -> bool:
        """Whether some lie has a positive exact gain under ``scheme``."""
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        return any(r.verdict == "pays" for r in self.rows if r.scheme == scheme)

    def table(self) -> str:
        """The comparison as an aligned text table."""
        lines = [
            f"Provider {self.player}'s utility per day, the others truthful; {self.setup}.",
            f"{self.replications} replications x {self.days} days, "
            f"seed {describe_seed(self.seed)}, common "
            "random numbers. gain = utility lying - utility truthful on the same days;",
            "w/o pen. = the gain without the mechanism's penalties (for lies the ledger does not"
            " catch they are a transient of the first days); exact = the long-run value.",
            "truthful utility (exact): "
            + ", ".join(f"{s} {self.truthful_exact[s]:.6g}" for s in SCHEMES)
            + f"; posted price {self.posted_price:.6g}",
            "",
            f"{'lie':<36} {'scheme':<12} {'exact gain':>13} {'sim. gain':>12} "
            f"{'w/o pen.':>12} {'s.e.':>9} {'pen. days':>9}  verdict",
        ]
        last = None
        for r in self.rows:
            exact = "-inf caught" if r.exact_gain == -math.inf else f"{r.exact_gain:+.4e}"
            lie = r.lie if r.lie != last else ""
            last = r.lie
            lines.append(
                f"{lie:<36} {r.scheme:<12} {exact:>13} {r.simulated_gain:>+12.4e} "
                f"{r.gain_without_penalties:>+12.4e} {r.gain_without_penalties_se:>9.2e} "
                f"{r.penalty_days:>9.1f}"
                f"  {r.verdict}{'' if r.agrees() else ' (SIMULATION DISAGREES)'}"
            )
        lines.append("")
        for s in SCHEMES:
            agree = "agrees" if self.consistent(s) else "DISAGREES"
            pays = "PAYS" if self.lying_pays(s) else "never pays"
            lines.append(f"{s:<12}: lying {pays} (exact); the simulation {agree}")
        return "\n".join(lines)

    def consistent(self, scheme: str, z: float = 4.0) -> bool:
        """Whether every row of ``scheme`` agrees with its exact value (see
        :meth:`IncentiveRow.agrees`)."""
        return all(r.agrees(z) for r in self.rows if r.scheme == scheme)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "setup": self.setup,
            "player": self.player,
            "n_providers": self.n_providers,
            "n_types": self.n_types,
            "days": self.days,
            "replications": self.replications,
            "seed": seed_record(self.seed),
            "posted_price_truthful": self.posted_price,
            "truthful_exact": self.truthful_exact,
            "truthful_simulated": self.truthful_simulated,
            "truthful_simulated_se": self.truthful_simulated_se,
            "lying_pays": {s: self.lying_pays(s) for s in SCHEMES},
            "rows": [r.to_dict() for r in self.rows],
        }


def _replication(
    market: DemandResponseMarket,
    strategies: list[Strategy],
    player: int,
    days: int,
    seed: int,
) -> np.ndarray:
    """One replication of one strategy profile under the three schemes, on the same days.

    Returns ``player``'s [mechanism utility, posted-price utility, pay-as-bid utility,
    mechanism average penalty, mechanism penalty days].
    """
    theta = market.supertype_bids()
    runs = {
        name: Simulation(market, theta, strategies, seed, mechanism=scheme).run(days).result()
        for name, scheme in schemes_for(market).items()
    }
    mech = runs["mechanism"]
    return np.array(
        [
            *(runs[name].average_utility[player] for name in SCHEMES),
            mech.average_penalty[player],
            float(mech.penalty_days[player]),
        ]
    )


def _describe_market(market: DemandResponseMarket) -> str:
    theta = market.providers[0]
    same = all(p == theta for p in market.providers)
    law = (
        f"costs on {len(theta)} levels (mean {theta.mean():.4g}, variance {theta.var():.4g})"
        if same
        else "heterogeneous costs"
    )
    return (
        f"{market.n_players} providers with {law}, reserve mean {market.reserve.mean():.4g}, "
        f"shortage mean {market.shortage.mean():.4g}, {market.n_types} types"
    )


def compare_incentives(
    market: DemandResponseMarket | None = None,
    lies: Sequence[Lie] | None = None,
    *,
    player: int = 0,
    n_providers: int = 10,
    levels: int = 8,
    days: int = 20_000,
    replications: int = 8,
    seed: SeedLike = 0,
    executor: ExecutorLike = "process",
    workers: int | None = None,
    progress: bool | None = False,
) -> IncentiveComparison:
    """The liar's utility under the mechanism, the posted price and pay as bid, side by side.

    Parameters
    ----------
    market : DemandResponseMarket, optional
        Default :func:`incentive_market` with ``n_providers`` and ``levels``.
    lies : sequence of Lie, optional
        Default :func:`default_lies`.
    player : int
        The deviating provider (the others are truthful).
    days, replications, seed : int
        Each replication runs the truth and every lie for ``days`` days with the same seed.
    progress : bool, optional
        A progress bar of finished replications (None: on a terminal).
    executor, workers
        Where the replications run (see :func:`stochmech.markets._sweeps.run_tasks`):
        a local process pool by default, ``None`` for serial, any Executor or a Dask
        ``distributed.Client``.

    Returns
    -------
    IncentiveComparison
    """
    claimed = None
    if market is None:
        market = incentive_market(n_providers, levels)
        claimed = betaprime_supertype(2.0, 2.0, levels)
    if not isinstance(market, DemandResponseMarket):
        raise ValueError(f"market must be a DemandResponseMarket, got {type(market).__name__}")
    player = check_player(player, market.n_players)
    days = integer(days, "days", minimum=2)
    lies = list(default_lies(market, player, claimed) if lies is None else lies)
    plans = [lie.plan(market, player) for lie in lies]
    n = market.n_players

    profiles: list[list[Strategy]] = [[Truthful() for _ in range(n)]]
    for plan in plans:
        prof: list[Strategy] = [Truthful() for _ in range(n)]
        prof[player] = plan.strategy
        profiles.append(prof)
    seed = normalize_seed(seed)
    seeds = replication_seeds(seed, replications)
    tasks = [(market, prof, player, days, s) for s in seeds for prof in profiles]
    out = np.array(
        run_tasks(
            _replication, tasks, executor, workers=workers, progress=progress, desc="incentives"
        )
    )
    out = out.reshape(len(seeds), len(profiles), 5)

    truth_exact = _exact_utilities(market, None, player)
    truth_mean, truth_se = mean_and_se(out[:, 0, :3])
    rows = []
    for j, (lie, plan) in enumerate(zip(lies, plans, strict=True), start=1):
        exact = _exact_utilities(market, plan, player)
        u_mean, u_se = mean_and_se(out[:, j, :3])
        diff = out[:, j, :3] - out[:, 0, :3]
        pen = np.zeros_like(diff)
        pen[:, 0] = out[:, j, 3] - out[:, 0, 3]
        g_mean, g_se = mean_and_se(diff)
        lr_mean, lr_se = mean_and_se(diff + pen)
        for k, scheme in enumerate(SCHEMES):
            rows.append(
                IncentiveRow(
                    scheme=scheme,
                    lie=lie.name,
                    description=lie.describe(),
                    exact_utility=exact[scheme],
                    exact_gain=exact[scheme] - truth_exact[scheme],
                    simulated_utility=float(u_mean[k]),
                    simulated_utility_se=float(u_se[k]),
                    simulated_gain=float(g_mean[k]),
                    simulated_gain_se=float(g_se[k]),
                    penalty_difference=float(pen[:, k].mean()),
                    gain_without_penalties=float(lr_mean[k]),
                    gain_without_penalties_se=float(lr_se[k]),
                    penalty_days=float(out[:, j, 4].mean()) if k == 0 else 0.0,
                    truthful_utility=truth_exact[scheme],
                )
            )
    return IncentiveComparison(
        rows=tuple(rows),
        truthful_exact=truth_exact,
        truthful_simulated={s: float(truth_mean[k]) for k, s in enumerate(SCHEMES)},
        truthful_simulated_se={s: float(truth_se[k]) for k, s in enumerate(SCHEMES)},
        player=player,
        n_providers=n,
        n_types=market.n_types,
        days=days,
        replications=len(seeds),
        seed=seed,
        posted_price=discovered_price(market, market.supertype_bids()),
        setup=_describe_market(market),
    )
