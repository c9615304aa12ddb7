"""The incentive audit of the DNBE mechanism: exact bounds beside simulated deviations.

Theorem 1 of the first paper claims that truthful bidding is a Dominant Strategy
Non-Bankrupting Equilibrium, that truthful players get a non-negative utility when eq. (16)
holds, and that truthful play is efficient. This module checks those claims on a given game
instead of assuming them.

Exact bounds (linear programs)
------------------------------
A player i with true supertype theta_i who declares theta_hat_i and then bids by a stationary
kernel P(s | t) earns, in the long run, a payoff that depends on the kernel only through the
coupling pi(t, s) = theta_i(t) P(s | t) of its true type t and its bid s. Under the full
mechanism a kernel whose bids do not follow the declaration is flagged on every day from some
day on (bankrupting), so the coupling's column marginal is theta_hat_i, and the best the player
can do is the transport LP of docs/modelling.md ("The best stationary deviation"; proof of
Theorem 1, eqs. 22-27):

    rho* = max_pi  sum_{t,s} pi(t, s) C(t, s),   C = game.deviation_payoffs(theta_hat, i),

with gain over the truth ``rho* + W*(theta_hat) - nu_i(theta_hat) - W*(theta_i, theta_hat_-i)``,
which Theorem 1 says is <= 0 (:func:`best_stationary_deviation`). Others who correlate their
bids with a public signal can let player i know their bids before it bids; the best it can do
then is a transport LP per profile of the others' bids (:func:`best_correlated_deviation`), and
the proof's argument bounds that too. Each LP is solved by HiGHS and its value is certified by
an exactly feasible dual solution: ``gain_upper`` is a rigorous upper bound (up to floating
point in the payoff tables), ``gain`` the value of the returned coupling.

The mechanism's switches (``first_stage_payment=False``, ``penalize=False``) change these
formulas: without penalties the bids need not follow the declaration (no column constraint),
and without the first-stage payment the player keeps its own expected valuation only. On such
broken mechanisms the bounds turn positive: the audit can fail, and says so.

Simulated deviations
--------------------
:func:`audit` plays every deviation of a catalog against the truthful baseline with the same
seed (common random numbers: the same true types, states and other players' randomness), and
reports the simulated gain with a batch-means standard error, how many days the penalty needed
to catch the deviation, and, beside it, the exact long-run gain of the deviation when it is
stationary and the LP bound for its declaration. It also checks individual rationality
(eq. 16), efficiency, and the planner's budget.

Examples
--------
>>> import numpy as np
>>> from stochmech.games.finite import FiniteGame
>>> rng = np.random.default_rng(3)
>>> game = FiniteGame(rng.normal(size=(2, 2, 2, 2)), rng.normal(size=(2, 2)))
>>> bids = np.array([[0.6, 0.4], [0.3, 0.7]])
>>> dev = best_stationary_deviation(game, 0, [0.5, 0.5], bids)
>>> bool(dev.gain_upper <= 1e-9)
True
"""

from stochmech.audit.adversaries import (
    DaySignal,
    WindowExploit,
    comonotone_collusion,
    quantile_coupling,
    yesterdays_type,
)
from stochmech.audit.bounds import (
    CorrelatedDeviation,
    LieSearch,
    StationaryDeviation,
    best_correlated_deviation,
    best_stationary_deviation,
    best_supertype_lie,
    profile_payoffs,
    simplex_grid,
    stationary_gain,
    stationary_kernel,
    window_deviation_bound,
)
from stochmech.audit.calibrate import (
    Calibration,
    calibrate,
    detection_day,
    lie_size,
    plot_calibration,
    truthful_utility_scale,
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
from stochmech.audit.coalitions import (
    CoalitionAudit,
    JointTestPower,
    coalition_audit,
    coalition_gain_exact,
    coverage_warning,
    joint_drift,
    joint_test_power,
    ring_drift,
)
from stochmech.audit.risk import (
    TruthfulRisk,
    flag_probabilities,
    joint_excess_by_day,
    joint_fire_bound,
    truthful_risk,
)
from stochmech.audit.run import (
    AuditReport,
    Deviation,
    DeviationResult,
    audit,
    default_deviations,
)

__all__ = [
    "AuditReport",
    "BudgetCheck",
    "Calibration",
    "CatchTimes",
    "CoalitionAudit",
    "CorrelatedDeviation",
    "DaySignal",
    "Deviation",
    "DeviationResult",
    "EfficiencyCheck",
    "JointTestPower",
    "LieSearch",
    "ParticipationCheck",
    "StationaryDeviation",
    "TruthfulRisk",
    "WindowExploit",
    "audit",
    "batch_means",
    "best_correlated_deviation",
    "best_stationary_deviation",
    "best_supertype_lie",
    "calibrate",
    "catch_times",
    "coalition_audit",
    "coalition_gain_exact",
    "comonotone_collusion",
    "coverage_warning",
    "default_deviations",
    "detection_day",
    "efficiency",
    "flag_probabilities",
    "individual_rationality",
    "joint_drift",
    "joint_excess_by_day",
    "joint_fire_bound",
    "joint_test_power",
    "lie_size",
    "planner_budget",
    "plot_calibration",
    "profile_payoffs",
    "quantile_coupling",
    "ring_drift",
    "simplex_grid",
    "stationary_gain",
    "stationary_kernel",
    "truthful_risk",
    "truthful_utility_scale",
    "window_deviation_bound",
    "yesterdays_type",
]
