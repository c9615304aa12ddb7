"""The audit itself: a catalog of deviations played against the truth with common random
numbers, beside the exact bounds, in a report that reads as text or JSON.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stochmech._display import html_table, pandas, short_repr
from stochmech._ragged import pad_pmfs
from stochmech._seeding import SeedLike, describe_seed, normalize_seed, seed_record
from stochmech._window import window
from stochmech.audit.adversaries import WindowExploit, comonotone_collusion, yesterdays_type
from stochmech.audit.bounds import (
    CorrelatedDeviation,
    LieSearch,
    StationaryDeviation,
    best_correlated_deviation,
    best_stationary_deviation,
    best_supertype_lie,
    mechanism_for,
    player_index,
    stationary_gain,
    stationary_kernel,
    window_deviation_bound,
)
from stochmech.audit.checks import (
    BudgetCheck,
    CatchTimes,
    EfficiencyCheck,
    ParticipationCheck,
    batch_means,
    catch_times,
    efficiency,
    individual_rationality,
    planner_budget,
)
from stochmech.games.base import TwoStageGame
from stochmech.markets._sweeps import ExecutorLike, run_tasks
from stochmech.mechanism import DNBEMechanism, check_supertypes
from stochmech.simulation import SimulationResult, simulate
from stochmech.strategies import (
    FixedBid,
    HistoryDependent,
    PlayerContext,
    StationaryMisreport,
    Strategy,
    SupertypeLie,
    Truthful,
    shift_kernel,
)

__all__ = [
    "AuditReport",
    "Deviation",
    "DeviationResult",
    "audit",
    "default_deviations",
]


@dataclass(frozen=True)
class Deviation:
    """A deviation to audit: the deviator's strategy and, for collusion, the others'.

    Attributes
    ----------
    name : str
    strategy : Strategy
        The audited player's strategy.
    others : mapping of int to Strategy
        Strategies of other players that take part (helpers, colluders); the truthful
        baseline plays against the same ones. Players not listed keep the audit's ``others``.
    kind : str
        "stationary", "bankrupting", "finite-horizon", "history-dependent" or "collusion".
    exact_gain : float, optional
        The deviation's exact long-run gain, when known beforehand (e.g. from an LP).
    """

    name: str
    strategy: Strategy
    others: Mapping[int, Strategy] = field(default_factory=dict)
    kind: str = "stationary"
    exact_gain: float | None = None


@dataclass(frozen=True)
class DeviationResult:
    """One row of the audit.

    Attributes
    ----------
    name, kind, strategy : str
    declared : (K,)
        The deviator's declared supertype.
    exact_gain : float or None
        Exact long-run gain over the truth (stationary deviations; ``-inf``: bankrupting).
    lp_bound : float or None
        Certified LP bound on the long-run gain of every non-bankrupting deviation with this
        declaration (the correlated LP when others collude), <= 0 by Theorem 1.
    days : int
    simulated_gain, stderr : float
        Average daily utility difference (deviation - truth) under common random numbers, and
        its standard error: the larger of the batch-means error (which allows for dependence
        between days) and the IID one (which does not suffer from the few batches).
    catch : CatchTimes
    allowance : float or None
        The finite-horizon bound at this row's horizon L: the most a deviation whose bid
        frequencies stay within r(L) of its declaration can gain per day in expectation
        (:func:`~stochmech.audit.window_deviation_bound`; the realized type frequencies add
        noise of order L^-1/2); None without penalties.
    checkpoints : (C,) int or None
        Log-spaced days at which the paths below are taken (for plots).
    gain_path : (C,) float or None
        Running average of the daily utility difference at the checkpoints.
    penalty_path : (C,) int or None
        The deviator's cumulative penalty days at the checkpoints.
    significant : bool
        The simulated gain exceeds ``z`` standard errors (and the tolerance).
    gains : bool
        Significant and beyond the allowance (by ``z`` standard errors): a failure. A
        significant gain within the allowance is the finite-horizon effect of the window,
        which Theorem 1 lets vanish only as r(l) -> 0.
    """

    name: str
    kind: str
    strategy: str
    declared: np.ndarray
    exact_gain: float | None
    lp_bound: float | None
    days: int
    simulated_gain: float
    stderr: float
    catch: CatchTimes
    allowance: float | None
    significant: bool
    gains: bool
    checkpoints: np.ndarray | None = None
    gain_path: np.ndarray | None = None
    penalty_path: np.ndarray | None = None

    @property
    def verdict(self) -> str:
        if self.gains:
            return "GAINS"
        if self.significant:
            return "gains within the window allowance (finite horizon)"
        c = self.catch
        if c.flagged_every_day_from:
            return f"caught: penalized every day from day {c.flagged_every_day_from}"
        if c.flagged_fraction_from:
            return (
                f"caught: penalized on {c.fraction:.0%} of days from day {c.flagged_fraction_from}"
            )
        return "no gain"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "strategy": self.strategy,
            "declared": self.declared.tolist(),
            "exact_gain": _num(self.exact_gain),
            "lp_bound": _num(self.lp_bound),
            "days": self.days,
            "simulated_gain": self.simulated_gain,
            "stderr": self.stderr,
            "allowance": self.allowance,
            "significant": self.significant,
            "gains": self.gains,
            "verdict": self.verdict,
            "catch": self.catch.to_dict(),
        }

    def __repr__(self) -> str:
        exact = "n/a" if self.exact_gain is None else f"{self.exact_gain:.4g}"
        return short_repr(
            f"DeviationResult: {self.name} ({self.kind}, {self.days:,} days)",
            [
                ("simulated gain", f"{self.simulated_gain:.4g} ± {self.stderr:.2g} (1 s.e.)"),
                ("exact gain", exact),
                ("verdict", self.verdict),
            ],
        )

    def _repr_html_(self) -> str:
        return html_table(
            f"DeviationResult: {self.name}",
            [(k, v) for k, v in _row_fields(self).items() if k != "name"],
        )

    def to_pandas(self) -> Any:
        """The running average gain and cumulative penalty days at the checkpoint days
        (index ``day``), as a pandas DataFrame (optional extra ``stochmech[pandas]``)."""
        pd = pandas()
        if self.checkpoints is None:
            raise ValueError(f"row {self.name!r} has no paths")
        return pd.DataFrame(
            {"gain": self.gain_path, "penalty_days": self.penalty_path},
            index=pd.Index(self.checkpoints, name="day"),
        )


def _row_fields(r: DeviationResult) -> dict[str, Any]:
    """The scalar fields of an audit row (one DataFrame row)."""
    return {
        "name": r.name,
        "kind": r.kind,
        "strategy": r.strategy,
        "days": r.days,
        "simulated_gain": r.simulated_gain,
        "stderr": r.stderr,
        "exact_gain": r.exact_gain,
        "lp_bound": r.lp_bound,
        "allowance": r.allowance,
        "significant": r.significant,
        "gains": r.gains,
        "verdict": r.verdict,
        "flagged_every_day_from": r.catch.flagged_every_day_from,
    }


def _num(x: float | None) -> float | str | None:
    """JSON has no infinities: -inf is written as the string "-inf"."""
    if x is None or math.isfinite(x):
        return x
    return "-inf" if x < 0 else "inf"


def _declared_profile(
    game: TwoStageGame, theta: np.ndarray, strategies: Sequence[Strategy]
) -> np.ndarray:
    out = []
    for j, s in enumerate(strategies):
        ctx = _context(game, theta, j)
        c = copy.deepcopy(s)
        c.prepare(ctx)
        out.append(c.supertype_bid(ctx))
    return pad_pmfs(out, game.type_counts, "supertype bids of the strategies")


def _context(game: TwoStageGame, theta: np.ndarray, j: int) -> PlayerContext:
    k = int(game.type_counts[j])
    return PlayerContext(
        player=j, supertype=theta[j, :k].copy(), n_types=k, type_values=game.values_of(j)
    )


def default_deviations(
    game: TwoStageGame,
    true_supertypes: Any,
    player: int = 0,
    *,
    mechanism: DNBEMechanism | None = None,
    others: Mapping[int, Strategy] | None = None,
    search: LieSearch | None = None,
    horizon: int | None = None,
    history: bool = True,
    collusion: bool = True,
    max_profiles: int = 256,
) -> list[Deviation]:
    """The audit's standard catalog of deviations for ``player``.

    Stationary: the best lie of the LP search (other than the truth), declarations mixed half
    way toward the lowest and the highest type with quantile-coupled bids, shifts by one type
    that declare the law they induce. Bankrupting: a shift that declares the truth, a fixed
    bid. Finite horizon (with penalties on and a ``horizon``): the stationary kernel of
    :func:`~stochmech.audit.window_deviation_bound` at half of r(horizon), which shifts its bid
    frequencies inside the window until the horizon (bankrupting in the long run).
    History-dependent: bidding yesterday's type, and (with penalties on) the window exploit,
    another finite-horizon deviation.
    Collusion: the others reveal their bids through a shared day signal and the player
    best-responds (the correlated LP), and a comonotone pair with the next player, which only
    the joint test can catch, and only in small markets (see
    :func:`~stochmech.audit.coverage_warning` and :func:`~stochmech.audit.joint_test_power`).

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> rng = np.random.default_rng(0)
    >>> game = FiniteGame(rng.normal(size=(2, 2, 2, 2)), rng.normal(size=(2, 2)))
    >>> theta = np.array([[0.4, 0.6], [0.5, 0.5]])
    >>> [d.kind for d in default_deviations(game, theta, 0)][:3]
    ['stationary', 'stationary', 'stationary']
    """
    mech = mechanism_for(game, mechanism)
    theta = check_supertypes(game, true_supertypes)
    i = player_index(game, player)
    others = dict(others or {})
    k = int(game.type_counts[i])  # the player's own types
    theta_i = theta[i, :k]
    base = [others.get(j, Truthful()) if j != i else Truthful() for j in range(game.n_players)]
    declared = _declared_profile(game, theta, base)
    if search is None:
        search = best_supertype_lie(game, i, theta[i], declared, mechanism=mech)
    out: list[Deviation] = []
    best = search.best_lie()
    if best:
        lie = search.results[best]
        out.append(
            Deviation(
                f"best LP lie: declare {_fmt_pmf(lie.declared)}", lie.strategy(), {}, "stationary"
            )
        )
    for t in sorted({0, k - 1}):
        target = 0.5 * theta_i + 0.5 * np.eye(k)[t]
        if np.abs(target - theta_i).max() > 1e-12:
            out.append(
                Deviation(f"declare half way to type {t}, quantile bids", SupertypeLie(target), {})
            )
    if k > 1:
        for steps in (1, -1):
            out.append(
                Deviation(
                    f"shift {steps:+d} type, declare the induced law",
                    StationaryMisreport(shift_kernel(k, steps), "induced"),
                )
            )
        out.append(
            Deviation(
                "shift +1 type, declare the truth",
                StationaryMisreport(shift_kernel(k, 1), "truthful"),
                kind="bankrupting",
            )
        )
        out.append(Deviation(f"always bid type {k - 1}", FixedBid(k - 1), kind="bankrupting"))
    if horizon is not None and mech.penalize:
        radius = 0.5 * window(int(horizon), mech.gamma)
        target = window_deviation_bound(game, i, theta[i], declared, radius, mechanism=mech)
        if target.gain > 1e-12:
            out.append(
                Deviation(
                    f"horizon-targeted shift within 0.5 r({int(horizon)})",
                    StationaryMisreport(target.kernel, supertype_bid=theta_i.copy()),
                    kind="finite-horizon",
                )
            )
    if history:
        out.append(
            Deviation(
                "bid yesterday's type",
                HistoryDependent(yesterdays_type, name="bids yesterday's type"),
                kind="history-dependent",
            )
        )
        if mech.penalize:
            payoffs = np.asarray(game.deviation_payoffs(declared, i), dtype=float)
            out.append(
                Deviation(
                    "window exploit: history-dependent lies within 0.9 r(l)",
                    WindowExploit(payoffs - np.diag(payoffs)[None, :], gamma=mech.gamma),
                    kind="finite-horizon",
                )
            )
    if collusion and game.n_players > 1:
        count = math.prod(int((declared[j] > 0).sum()) for j in range(game.n_players) if j != i)
        if count <= max_profiles:
            corr = best_correlated_deviation(game, i, theta[i], declared, mechanism=mech)
            plan = corr.strategies(salt=1 + i)
            out.append(
                Deviation(
                    "others reveal their bids by a day signal; best reply (LP)",
                    plan[i],
                    {j: s for j, s in plan.items() if j != i},
                    "collusion",
                    exact_gain=corr.gain,
                )
            )
        partner = (i + 1) % game.n_players
        own_partner = declared[partner, : int(game.type_counts[partner])]
        pair = comonotone_collusion(i, partner, theta_i, own_partner, salt=101 + i)
        out.append(
            Deviation(
                f"comonotone bids with player {partner} by a day signal",
                pair[i],
                {partner: pair[partner]},
                "collusion",
            )
        )
    return out


def _fmt_pmf(p: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.3g}" for x in p) + "]"


@dataclass(frozen=True)
class AuditReport:
    """Everything the audit found; ``str(report)`` is a readable report, ``to_dict()`` JSON.

    Attributes
    ----------
    game : str
    mechanism : dict
        gamma, penalty, first_stage_payment, penalize.
    player : int
        The audited player.
    true_supertypes, declared : (n, K)
        True supertypes, and the declarations the audited player faces (its own row: truth).
    days, history_days, seed, batches : int
    z : float
        Standard errors a simulated gain must exceed to count.
    tolerance : float
    search : LieSearch
        The LP over the grid of declarations (``search.epsilon`` is the certified LP epsilon).
    correlated : CorrelatedDeviation or None
        The LP when the others reveal their bids (None: too many profiles).
    window : StationaryDeviation or None
        The finite-horizon bound at radius r(days) (None without penalties).
    truthful_utility : float
        The audited player's long-run utility under truth, W*(theta_i, theta_hat_-i) -
        W*(theta_hat_-i) (with the first-stage payment).
    participation, efficiency_check, budget : checks under all-truthful play
    rows : tuple of DeviationResult
    """

    game: str
    mechanism: dict[str, Any]
    player: int
    true_supertypes: np.ndarray
    declared: np.ndarray
    days: int
    history_days: int
    seed: int | np.random.SeedSequence
    batches: int
    z: float
    tolerance: float
    search: LieSearch
    correlated: CorrelatedDeviation | None
    window: StationaryDeviation | None
    truthful_utility: float
    participation: ParticipationCheck
    efficiency_check: EfficiencyCheck
    budget: BudgetCheck
    rows: tuple[DeviationResult, ...]

    # ----- verdicts -----
    @property
    def epsilon_lp(self) -> float:
        """Largest certified long-run gain found by the LPs (<= 0 by Theorem 1)."""
        eps = self.search.epsilon
        if self.correlated is not None:
            eps = max(eps, self.correlated.gain_upper)
        return float(eps)

    @property
    def epsilon_simulated(self) -> float:
        """Largest simulated gain among the deviations (its standard error is in the row)."""
        return max((r.simulated_gain for r in self.rows), default=-math.inf)

    @property
    def long_run_ok(self) -> bool:
        """The LP bounds (Theorem 1 in the long run) are within the tolerance."""
        rows_ok = all(r.exact_gain is None or r.exact_gain <= self.tolerance for r in self.rows)
        return bool(self.epsilon_lp <= self.tolerance and rows_ok)

    @property
    def finite_horizon_ok(self) -> bool:
        """No simulated deviation gained beyond the finite-horizon window allowance."""
        return not any(r.gains for r in self.rows)

    @property
    def window_gains(self) -> list[DeviationResult]:
        """Deviations that gained at this horizon, but within the window allowance."""
        return [r for r in self.rows if r.significant and not r.gains]

    @property
    def passed(self) -> bool:
        return self.long_run_ok and self.finite_horizon_ok

    @property
    def failures(self) -> list[str]:
        """Why the audit failed, one sentence per finding (empty when it passed)."""
        out = []
        if self.search.epsilon > self.tolerance:
            b = self.search.best
            out.append(
                f"a stationary lie gains {b.gain:.6g} per day in the long run: declare "
                f"{_fmt_pmf(b.declared)} and bid by kernel {np.round(b.kernel, 3).tolist()}"
            )
        if self.correlated is not None and self.correlated.gain_upper > self.tolerance:
            out.append(
                f"with the others revealing their bids, a reply gains {self.correlated.gain:.6g} "
                "per day in the long run"
            )
        for r in self.rows:
            if r.exact_gain is not None and r.exact_gain > self.tolerance:
                out.append(f"'{r.name}' gains {r.exact_gain:.6g} per day in the long run (exact)")
            if r.gains:
                beyond = "" if r.allowance is None else f" (allowance {r.allowance:.3g})"
                out.append(
                    f"'{r.name}' gained {r.simulated_gain:.6g} ± {r.stderr:.2g} per day over "
                    f"{r.days} days{beyond}"
                )
        return out

    # ----- output -----
    def to_dict(self) -> dict[str, Any]:
        return {
            "game": self.game,
            "mechanism": self.mechanism,
            "player": self.player,
            "true_supertypes": self.true_supertypes.tolist(),
            "declared": self.declared.tolist(),
            "days": self.days,
            "history_days": self.history_days,
            "seed": seed_record(self.seed),
            "batches": self.batches,
            "z": self.z,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "long_run_ok": self.long_run_ok,
            "finite_horizon_ok": self.finite_horizon_ok,
            "window_gains": [r.name for r in self.window_gains],
            "failures": self.failures,
            "epsilon_lp": self.epsilon_lp,
            "epsilon_simulated": _num(self.epsilon_simulated),
            "truthful_utility": self.truthful_utility,
            "lp_search": {
                "declarations": len(self.search.declarations),
                "epsilon": self.search.epsilon,
                "best": self.search.best.to_dict(),
            },
            "correlated": None if self.correlated is None else self.correlated.to_dict(),
            "window_bound": None
            if self.window is None
            else {
                "radius": window(self.days, self.mechanism["gamma"]),
                **self.window.to_dict(),
            },
            "participation": self.participation.to_dict(),
            "efficiency": self.efficiency_check.to_dict(),
            "budget": self.budget.to_dict(),
            "deviations": [r.to_dict() for r in self.rows],
        }

    def _title(self) -> str:
        return (
            f"AuditReport: player {self.player}, {'PASS' if self.passed else 'FAIL'} "
            f"({len(self.rows)} deviations, {self.days:,} days, seed {describe_seed(self.seed)})"
        )

    def _lines(self) -> list[tuple[str, Any]]:
        best = max(self.rows, key=lambda r: r.simulated_gain, default=None)
        lines: list[tuple[str, Any]] = [
            ("epsilon (LP)", f"{self.epsilon_lp:.4g}"),
            ("truthful utility", f"{self.truthful_utility:.5g}"),
        ]
        if best is not None:
            lines.append(
                (
                    "best simulated gain",
                    f"{best.simulated_gain:.4g} ± {best.stderr:.2g} ({best.name})",
                )
            )
        lines.append(("failures", "; ".join(self.failures) if self.failures else "none"))
        return lines

    def __repr__(self) -> str:
        return short_repr(self._title(), self._lines())

    def _repr_html_(self) -> str:
        fields = [_row_fields(r) for r in self.rows]
        cols = list(fields[0]) if fields else []
        return html_table(
            self._title(), self._lines(), cols, [list(f.values()) for f in fields], max_rows=40
        )

    def to_pandas(self) -> Any:
        """One row per simulated deviation (name, kind, strategy, days, simulated gain and
        its standard error, exact gain, LP bound, allowance, verdict, ...), as a pandas
        DataFrame (optional extra ``stochmech[pandas]``).

        Examples
        --------
        >>> from stochmech.games.finite import FiniteGame
        >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
        >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
        >>> report = audit(game, [[.5, .5], [.5, .5]], days=600, history_days=300, resolution=2)
        >>> df = report.to_pandas()
        >>> len(df) == len(report.rows), "simulated_gain" in df.columns
        (True, True)
        """
        pd = pandas()
        return pd.DataFrame([_row_fields(r) for r in self.rows])

    def __str__(self) -> str:
        m = self.mechanism
        lines = [
            f"Incentive audit of player {self.player} in {self.game}",
            f"mechanism: gamma = {m['gamma']}, penalty = {m['penalty']}, first-stage payment "
            f"{'on' if m['first_stage_payment'] else 'OFF'}, penalties "
            f"{'on' if m['penalize'] else 'OFF'}",
            f"simulation: {self.days} days ({self.history_days} for history-dependent "
            f"strategies), seed {describe_seed(self.seed)}, common random numbers, "
            f"{self.batches} batches, "
            f"a gain counts above {self.z:g} standard errors",
            f"true supertype of player {self.player}: "
            + _fmt_pmf(self.true_supertypes[self.player]),
            "",
            "Verdict: " + ("PASS" if self.passed else "FAIL"),
            f"  long run (Theorem 1, LPs):  epsilon = {self.epsilon_lp:+.3e}  "
            + ("ok" if self.long_run_ok else "VIOLATED"),
            f"  at {self.days} days (simulated): largest gain = {self.epsilon_simulated:+.3e}  "
            + ("ok" if self.finite_horizon_ok else "a deviation GAINS"),
        ]
        lines += [f"  - {f}" for f in self.failures]
        for r in self.window_gains:
            lines.append(
                f"  note: '{r.name}' gained {r.simulated_gain:.3e} ± {r.stderr:.1e} per day over "
                f"{r.days} days, within the window allowance {r.allowance:.3e}: a finite-horizon "
                "effect that vanishes as r(l) -> 0"
            )
        b = self.search.best
        lines += [
            "",
            "Best stationary deviation (transport LP, certified by its dual):",
            f"  over {len(self.search.declarations)} declarations: best gain {b.gain:+.3e} "
            f"(bound {b.gain_upper:+.3e}) declaring {_fmt_pmf(b.declared)}",
            f"  truthful long-run utility W*(theta_i, theta_hat_-i) - W*(theta_hat_-i) = "
            f"{self.truthful_utility:.6g}",
        ]
        if self.correlated is not None:
            c = self.correlated
            lines.append(
                f"  others revealing their bids ({len(c.weights)} profiles): best gain "
                f"{c.gain:+.3e} (bound {c.gain_upper:+.3e})"
            )
        if self.window is not None:
            radius = window(self.days, m["gamma"])
            lines.append(
                f"  finite horizon: bids within r({self.days}) = {radius:.4g} of the declaration "
                f"can gain up to {self.window.gain_upper:+.3e} per day"
            )
        lines += ["", "Deviations (gain = deviation - truth, per day):"]
        header = (
            f"  {'deviation':<58} {'exact':>10} {'LP bound':>10} {'simulated':>22}  "
            f"{'pen. days':>9} {'ahead until':>11}  verdict"
        )
        lines.append(header)
        for r in self.rows:
            sim = f"{r.simulated_gain:+.3e} ± {r.stderr:.1e}"
            lines.append(
                f"  {r.name[:58]:<58} {_fmt_gain(r.exact_gain):>10} {_fmt_gain(r.lp_bound):>10} "
                f"{sim:>22}  {r.catch.penalty_days:>9} {_fmt_day(r.catch):>11}  {r.verdict}"
            )
        p = self.participation
        lines += ["", "Individual rationality (eq. 16 at theta; all truthful):"]
        for j in range(len(p.margins)):
            line = (
                f"  player {j}: W*(theta) - W*(theta_-{j}) = {p.margins[j]:+.6g} "
                f"({'holds' if p.holds[j] else 'FAILS'}); expected utility "
                f"{p.expected_utility[j]:.6g}"
            )
            if (
                p.simulated_utility is not None
                and p.stderr is not None
                and p.penalty_days is not None
                and p.last_penalty_day is not None
            ):
                line += (
                    f", simulated {p.simulated_utility[j]:.6g} ± {p.stderr[j]:.1e}; "
                    f"{p.penalty_days[j]} penalty days, last on day {p.last_penalty_day[j]}"
                )
            lines.append(line)
        e = self.efficiency_check
        eff = f"  W*(theta) = {e.optimal_welfare:.6g}"
        if e.average_welfare is not None:
            eff += f"; simulated average welfare {e.average_welfare:.6g} ± {e.stderr:.1e}"
        lines += ["", "Efficiency:", eff]
        if e.enumerated_welfare is not None:
            lines.append(
                f"  first-stage outcome {e.first_stage}; enumeration "
                f"{np.round(e.enumerated_welfare, 6).tolist()} -> "
                + ("optimal" if e.first_stage_ok else "NOT OPTIMAL")
            )
        bud = self.budget
        line = f"  expected {bud.expected:+.6g} per day (sum of first-stage payments)"
        if bud.simulated is not None:
            line += f"; simulated {bud.simulated:+.6g} ± {bud.stderr:.1e}"
        lines += ["", "Planner's budget (net payments received):", line]
        return "\n".join(lines)


def _fmt_gain(x: float | None) -> str:
    if x is None:
        return "-"
    if not math.isfinite(x):
        return "bankrupt" if x < 0 else "+inf"
    return f"{x:+.3e}"


def _fmt_day(c: CatchTimes) -> str:
    if c.ahead_at_horizon:
        return "horizon"
    return str(c.last_ahead_day) if c.last_ahead_day else "never"


def _simulate_task(
    game: TwoStageGame,
    theta: np.ndarray,
    profile: list[Strategy],
    horizon: int,
    seed: int | np.random.SeedSequence,
    mechanism: DNBEMechanism,
    progress: bool | None,
) -> SimulationResult:
    """One simulation of the audit (module level, so that it travels to worker processes)."""
    return simulate(
        game, theta, profile, horizon, seed, mechanism=mechanism, progress=progress, daily=True
    )


def _others_key(others: Mapping[int, Strategy]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted((j, id(s)) for j, s in others.items()))


def audit(
    game: TwoStageGame,
    true_supertypes: Any,
    player: int = 0,
    *,
    mechanism: DNBEMechanism | None = None,
    others: Mapping[int, Strategy] | None = None,
    deviations: Sequence[Deviation] | None = None,
    days: int = 50_000,
    history_days: int | None = None,
    seed: SeedLike = 0,
    batches: int = 20,
    z: float = 3.0,
    tolerance: float = 1e-9,
    resolution: int | None = None,
    progress: bool | None = None,
    executor: ExecutorLike = None,
    workers: int | None = None,
) -> AuditReport:
    """Audits the incentives of ``player``: LP bounds, simulated deviations, IR, efficiency.

    Parameters
    ----------
    game : TwoStageGame
    true_supertypes : array_like, shape (n, K)
    player : int
        The audited player.
    mechanism : DNBEMechanism, optional
        Default the full mechanism; pass one with ``penalize=False`` or
        ``first_stage_payment=False`` to see the audit fail.
    others : mapping of int to Strategy, optional
        The other players' strategies (default truthful).
    deviations : sequence of Deviation, optional
        Default :func:`default_deviations`.
    days : int
        Horizon of the simulations of stationary deviations.
    history_days : int, optional
        Horizon for deviations that involve history-dependent strategies (played day by day in
        Python); default ``min(days, 20_000)``.
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Every deviation is played with this seed against a truthful run with the same seed (a
        ``Generator`` is consumed once, so all runs still share their random numbers).
    batches : int
        Batches for the batch-means standard errors.
    z : float
        A simulated gain counts when it exceeds ``z`` standard errors and ``tolerance``.
    tolerance : float
        Slack for the LP bounds and exact gains.
    resolution : int, optional
        Resolution of the grid of declarations for the LP search.
    progress : bool, optional
        With a serial executor, passed to :func:`~stochmech.simulation.simulate`; otherwise a
        progress bar counts the finished simulations (default: on a terminal).
    executor : Executor, dask Client, "process", "serial" or None
        Where the simulations (the truthful run, each baseline, each deviation) run; default
        one after the other in this process. Any ``concurrent.futures.Executor``, a
        ``distributed.Client`` or any object whose ``submit`` returns futures works (see
        :func:`stochmech.markets._sweeps.run_tasks`); the report is identical whatever the
        executor.
    workers : int, optional
        Size of the local pool with ``executor="process"``.

    Returns
    -------
    AuditReport

    Examples
    --------
    >>> from stochmech.games.finite import FiniteGame
    >>> v = np.zeros((2, 2, 2, 2)); v[:, :, 1, 1] = [[0.0, 2.0], [0.0, 2.0]]
    >>> game = FiniteGame(v, [[0.0, 9.0], [1.0, 1.0]])
    >>> theta = [[0.5, 0.5], [0.5, 0.5]]
    >>> report = audit(game, theta, days=4000, history_days=1000, resolution=4)
    >>> report.long_run_ok, report.epsilon_lp <= 1e-9
    (True, True)
    >>> broken = audit(game, theta, mechanism=DNBEMechanism(game, penalize=False), days=4000,
    ...                history_days=1000, resolution=4)
    >>> broken.passed, round(broken.epsilon_lp, 6)
    (False, 1.5)
    """
    mech = mechanism_for(game, mechanism)
    theta = check_supertypes(game, true_supertypes)
    i = player_index(game, player)
    seed = normalize_seed(seed)
    days = int(days)
    if days < 2:
        raise ValueError(f"days must be >= 2, got {days}")
    hdays = min(days, 20_000) if history_days is None else int(history_days)
    if hdays < 2:
        raise ValueError(f"history_days must be >= 2, got {history_days!r}")
    if not (math.isfinite(float(z)) and float(z) > 0):
        raise ValueError(f"z must be a positive number, got {z!r}")
    others = dict(others or {})
    for j, s in others.items():
        player_index(game, j)
        if j == i:
            raise ValueError(f"others must not include the audited player {i}")
        if not isinstance(s, Strategy):
            raise ValueError(f"others[{j}] is not a Strategy: {s!r}")
    base = [others.get(j, Truthful()) if j != i else Truthful() for j in range(game.n_players)]
    declared = _declared_profile(game, theta, base)

    search = best_supertype_lie(game, i, theta[i], declared, resolution=resolution, mechanism=mech)
    try:
        correlated: CorrelatedDeviation | None = best_correlated_deviation(
            game, i, theta[i], declared, mechanism=mech
        )
    except ValueError:
        correlated = None
    window_dev = (
        window_deviation_bound(
            game, i, theta[i], declared, window(days, mech.gamma), mechanism=mech
        )
        if mech.penalize
        else None
    )
    if deviations is None:
        slow = any(s.history_dependent for s in others.values())
        deviations = default_deviations(
            game,
            theta,
            i,
            mechanism=mech,
            others=others,
            search=search,
            horizon=hdays if slow else days,
        )

    # every simulation first (the all-truthful run for individual rationality, efficiency
    # and budget; one truthful baseline per horizon and set of others; one run per deviation),
    # as independent tasks that may run anywhere, then the rows from their results
    deviations = list(deviations)
    for dev in deviations:
        if not isinstance(dev, Deviation):
            raise ValueError(f"deviations must be Deviation objects, got {dev!r}")
    serial = executor is None or executor == "serial"
    sim_progress = progress if serial else False
    jobs: list[tuple[list[Strategy], int]] = [([Truthful() for _ in range(game.n_players)], days)]
    baseline_job: dict[tuple[Any, ...], int] = {}
    plan = []
    for dev in deviations:
        profile_others = {**others, **dict(dev.others)}
        baseline_profile = [
            profile_others.get(j, Truthful()) if j != i else Truthful()
            for j in range(game.n_players)
        ]
        deviation_profile = list(baseline_profile)
        deviation_profile[i] = dev.strategy
        slow = any(s.history_dependent for s in deviation_profile)
        horizon = hdays if slow else days
        key = (horizon, _others_key(profile_others))
        if key not in baseline_job:
            baseline_job[key] = len(jobs)
            jobs.append((baseline_profile, horizon))
        plan.append((dev, deviation_profile, horizon, baseline_job[key], len(jobs)))
        jobs.append((deviation_profile, horizon))
    results = run_tasks(
        _simulate_task,
        [(game, theta, profile, horizon, seed, mech, sim_progress) for profile, horizon in jobs],
        executor,
        workers=workers,
        progress=None if serial else progress,
        desc=f"audit of player {i}",
    )
    truthful_all = results[0]
    allowances: dict[int, float] = {}

    rows = []
    for dev, deviation_profile, horizon, truth_at, played_at in plan:
        truth = results[truth_at]
        played = results[played_at]
        played_utility, played_flags = _daily_series(played)
        truth_utility, _ = _daily_series(truth)
        diff = played_utility[:, i] - truth_utility[:, i]
        gain, se = batch_means(diff, batches)
        # batch means with few batches can underestimate: never report less than the IID error
        se = max(float(se), float(diff.std(ddof=1)) / math.sqrt(diff.size))
        row_declared = _declared_profile(game, theta, deviation_profile)
        exact = dev.exact_gain
        sk = stationary_kernel(dev.strategy, _context(game, theta, i))
        if exact is None and sk is not None and not dev.others:
            exact = stationary_gain(game, i, theta[i], row_declared, sk[1], mechanism=mech)
        if dev.others:
            try:
                bound = best_correlated_deviation(
                    game, i, theta[i], row_declared, mechanism=mech
                ).gain_upper
            except ValueError:
                bound = None
        else:
            bound = best_stationary_deviation(
                game, i, theta[i], row_declared, mechanism=mech
            ).gain_upper
        gain, se = float(gain), float(se)
        allowance = None
        if mech.penalize:
            if horizon not in allowances:
                allowances[horizon] = window_deviation_bound(
                    game, i, theta[i], declared, window(horizon, mech.gamma), mechanism=mech
                ).gain_upper
            allowance = max(allowances[horizon], 0.0)
        significant = gain > z * se + tolerance
        points = np.unique(np.geomspace(1, horizon, num=200).round().astype(np.int64))
        beyond = allowance is None or gain > allowance + z * se + tolerance
        rows.append(
            DeviationResult(
                name=dev.name,
                kind=dev.kind,
                strategy=played.strategies[i],
                declared=row_declared[i],
                exact_gain=exact,
                lp_bound=bound,
                days=horizon,
                simulated_gain=gain,
                stderr=se,
                catch=catch_times(played_flags[:, i], diff),
                allowance=allowance,
                significant=bool(significant),
                gains=bool(significant and beyond),
                checkpoints=points,
                gain_path=np.cumsum(diff)[points - 1] / points,
                penalty_path=np.cumsum(played_flags[:, i])[points - 1],
            )
        )

    mech_info = {
        "gamma": mech.gamma,
        "penalty": repr(mech.penalty),
        "first_stage_payment": mech.first_stage_payment,
        "penalize": mech.penalize,
    }
    truthful_utility = search.results[0].truthful_utility
    return AuditReport(
        game=repr(game),
        mechanism=mech_info,
        player=i,
        true_supertypes=theta,
        declared=declared,
        days=days,
        history_days=hdays,
        seed=seed,
        batches=int(batches),
        z=float(z),
        tolerance=float(tolerance),
        search=search,
        correlated=correlated,
        window=window_dev,
        truthful_utility=truthful_utility,
        participation=individual_rationality(
            game, theta, truthful_all, mechanism=mech, batches=batches
        ),
        efficiency_check=efficiency(game, theta, truthful_all, batches=batches),
        budget=planner_budget(game, theta, truthful_all, mechanism=mech, batches=batches),
        rows=tuple(rows),
    )


def _daily_series(result: SimulationResult) -> tuple[np.ndarray, np.ndarray]:
    """The daily utilities and penalty events of a run made with ``daily=True``."""
    if result.daily_utility is None or result.daily_flags is None:
        raise ValueError("the audit needs a simulation run with daily=True")
    return result.daily_utility, result.daily_flags
