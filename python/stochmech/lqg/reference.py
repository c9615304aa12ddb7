"""Plain reference implementations written straight from the paper's definitions.

Nothing here is fast and nothing here reuses the Riccati path: every plan is the solution of one
dense KKT system of the problem as stated (the layer problem INCLUDING the cross terms of
``L_s``), and every payment is a literal loop over the formula for ``p_i(s)``. The tests compare
the fast implementations against these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stochmech.lqg.agents import LQGAgents

__all__ = [
    "DensePlan",
    "dense_balanced_lq_plan",
    "reference_centralized_run",
    "reference_layered_run",
]


@dataclass(frozen=True)
class DensePlan:
    """A noise-free balanced plan from one dense KKT solve.

    Attributes
    ----------
    states, controls : ndarray, shape (L, n)
        ``X(k)`` (``X(0) = x0``) and ``U(k)`` for ``k = 0..L-1``.
    objective : float
        The maximized objective, cross terms included.
    multipliers : ndarray, shape (L,)
        Lagrange multipliers of the balance constraints.
    """

    states: np.ndarray
    controls: np.ndarray
    objective: float
    multipliers: np.ndarray


def dense_balanced_lq_plan(
    a: np.ndarray,
    b: np.ndarray,
    q: np.ndarray,
    r: np.ndarray,
    x0: np.ndarray,
    cross_x: np.ndarray | None = None,
    cross_u: np.ndarray | None = None,
) -> DensePlan:
    """Maximize ``sum_k X'QX + U'RU + 2 Cx(k)'Q X(k) + 2 Cu(k)'R U(k)`` s.t. ``1'U(k) = 0``.

    ``X(k+1) = A_k X(k) + B_k U(k)``, ``X(0) = x0``. ``a, b, q, r`` have shape (L, n) (time
    varying diagonals), ``cross_x, cross_u`` shape (L, n) (zero if omitted). Solved as one dense
    KKT system in the L*n controls; the states are eliminated explicitly.

    Examples
    --------
    >>> import numpy as np
    >>> one = np.ones((2, 2))
    >>> plan = dense_balanced_lq_plan(one, one, -one, -one, np.array([1.0, -1.0]))
    >>> bool(np.allclose(plan.controls.sum(axis=1), 0.0))
    True
    """
    a, b, q, r = (np.asarray(v, dtype=np.float64) for v in (a, b, q, r))
    length, n = a.shape
    x0 = np.asarray(x0, dtype=np.float64)
    cx = np.zeros((length, n)) if cross_x is None else np.asarray(cross_x, dtype=np.float64)
    cu = np.zeros((length, n)) if cross_u is None else np.asarray(cross_u, dtype=np.float64)
    nu = length * n
    # X(k) = gx[k] * x0 + sum_{j<k} gu[k, j] * u(j), elementwise per agent.
    gx = np.zeros((length, n))
    gu = np.zeros((length, length, n))
    gx[0] = 1.0
    for k in range(1, length):
        gx[k] = a[k - 1] * gx[k - 1]
        for j in range(k - 1):
            gu[k, j] = a[k - 1] * gu[k - 1, j]
        gu[k, k - 1] = b[k - 1]
    # Dense matrices over the stacked index (k, i) -> k * n + i.
    big_gu = np.zeros((nu, nu))
    for k in range(length):
        for j in range(length):
            big_gu[k * n : (k + 1) * n, j * n : (j + 1) * n] = np.diag(gu[k, j])
    free = (gx * x0).reshape(nu)
    qd, rd = q.reshape(nu), r.reshape(nu)
    hess = big_gu.T @ (qd[:, None] * big_gu) + np.diag(rd)
    lin = big_gu.T @ (qd * (free + cx.reshape(nu))) + rd * cu.reshape(nu)
    balance = np.zeros((length, nu))
    for k in range(length):
        balance[k, k * n : (k + 1) * n] = 1.0
    kkt = np.block([[2.0 * hess, balance.T], [balance, np.zeros((length, length))]])
    rhs = np.concatenate([-2.0 * lin, np.zeros(length)])
    sol = np.linalg.solve(kkt, rhs)
    u = sol[:nu]
    x = free + big_gu @ u
    cross = 2.0 * (cx.reshape(nu) * qd) @ x + 2.0 * (cu.reshape(nu) * rd) @ u
    objective = x @ (qd * x) + u @ (rd * u) + cross
    return DensePlan(
        states=x.reshape(length, n),
        controls=u.reshape(length, n),
        objective=float(objective),
        multipliers=sol[nu:],
    )


def _tile(
    agents: LQGAgents, length: int, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sel = slice(None) if keep is None else keep
    a, b, q, r = (np.tile(v[sel], (length, 1)) for v in (agents.a, agents.b, agents.q, agents.r))
    return a, b, q, r


@dataclass(frozen=True)
class ReferenceRun:
    """Result of :func:`reference_layered_run` (same meaning as :class:`LayeredRun` fields)."""

    states: np.ndarray
    controls: np.ndarray
    payments: np.ndarray
    pivots: np.ndarray
    layer_states: np.ndarray
    layer_controls: np.ndarray
    valuations: np.ndarray
    utilities: np.ndarray


def reference_layered_run(
    agents: LQGAgents,
    layer_inputs: np.ndarray,
    bids: np.ndarray | None = None,
    pivot: str = "clarke",
) -> ReferenceRun:
    """The layered mechanism computed literally: one dense KKT solve of ``max L_s`` per layer.

    The layer problem includes the cross terms with the earlier layers' planned trajectories;
    the payment is the literal sum over ``j != i`` and ``t >= s``; the Clarke pivot is the
    optimal value of the others' dense problem from ``X_hat_-i(s, s)`` without cross terms.
    ``layer_states[s, t]`` and ``layer_controls[s, t]`` are ``X_hat(s, t)`` and ``U(s, t)`` (zero
    for ``t < s``).
    """
    xi = np.asarray(layer_inputs, dtype=np.float64)
    horizon, n = xi.shape
    bids = xi if bids is None else np.asarray(bids, dtype=np.float64)
    lay_x = np.zeros((horizon, horizon, n))
    lay_u = np.zeros((horizon, horizon, n))
    payments = np.zeros((horizon, n))
    pivots = np.zeros((horizon, n))
    for s in range(horizon):
        length = horizon - s
        cross_x = lay_x[:s, s:].sum(axis=0)
        cross_u = lay_u[:s, s:].sum(axis=0)
        plan = dense_balanced_lq_plan(*_tile(agents, length), bids[s], cross_x, cross_u)
        lay_x[s, s:] = plan.states
        lay_u[s, s:] = plan.controls
        for i in range(n):
            h = 0.0
            if pivot == "clarke" and n > 1:
                keep = np.arange(n) != i
                sub = dense_balanced_lq_plan(*_tile(agents, length, keep), bids[s, keep])
                h = sub.objective
            pivots[s, i] = h
            others = 0.0
            for j in range(n):
                if j == i:
                    continue
                qj, rj = agents.q[j], agents.r[j]
                for t in range(s, horizon):
                    xj, uj = lay_x[s, t, j], lay_u[s, t, j]
                    others += qj * xj**2 + rj * uj**2
                    others += 2 * qj * cross_x[t - s, j] * xj + 2 * rj * cross_u[t - s, j] * uj
            payments[s, i] = h - others
    controls = lay_u.sum(axis=0)
    states = np.zeros((horizon, n))
    states[0] = xi[0]
    for t in range(1, horizon):
        states[t] = agents.a * states[t - 1] + agents.b * controls[t - 1] + xi[t]
    valuations = (agents.q * states**2 + agents.r * controls**2).sum(axis=0)
    return ReferenceRun(
        states=states,
        controls=controls,
        payments=payments,
        pivots=pivots,
        layer_states=lay_x,
        layer_controls=lay_u,
        valuations=valuations,
        utilities=valuations - payments.sum(axis=0),
    )


def reference_centralized_run(
    agents: LQGAgents, layer_inputs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-loop optimal control of the constrained LQG problem, by re-planning.

    For LQ problems with additive white noise the optimal closed-loop action at ``t`` is the first
    action of the optimal noise-free plan from the current true state (certainty equivalence,
    from dynamic programming). Each plan is one dense KKT solve. Returns (states, controls).
    """
    xi = np.asarray(layer_inputs, dtype=np.float64)
    horizon, n = xi.shape
    states = np.zeros((horizon, n))
    controls = np.zeros((horizon, n))
    for t in range(horizon):
        if t == 0:
            states[t] = xi[0]
        else:
            states[t] = agents.a * states[t - 1] + agents.b * controls[t - 1] + xi[t]
        plan = dense_balanced_lq_plan(*_tile(agents, horizon - t), states[t])
        controls[t] = plan.controls[0]
    return states, controls
