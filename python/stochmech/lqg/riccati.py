"""Riccati recursion of the balance-constrained LQ problem.

See docs/modelling.md ("Strategic LQG: the layered VCG mechanism").

The problem, for ``n`` scalar agents over times ``t = 0..T-1`` (maximization, no terminal term)::

    max  sum_t  X(t)' Q_t X(t) + U(t)' R_t U(t)
    s.t. X(t+1) = A_t X(t) + B_t U(t) [+ noise],   1' U(t) = 0,

with diagonal ``A_t, B_t, Q_t <= 0, R_t < 0``. Restricting ``U`` to ``null(1')`` turns the
problem into a plain Riccati recursion; instead of an explicit basis ``P`` of ``null(1')`` we use
the equivalent constrained inverse ``G = P (P' M P)^-1 P' = M^-1 - M^-1 1 1' M^-1 / (1' M^-1 1)``
with ``M = R_t + B_t S_{t+1} B_t`` (negative definite), so one ``n x n`` solve per step. The
recursion is::

    S_T = 0,   K_t = -G (B_t S_{t+1} A_t),   S_t = Q_t + A_t S_{t+1} A_t + (A_t S_{t+1} B_t) K_t,

the optimal closed-loop control is ``U(t) = K_t X(t)`` (``1' K_t = 0``) and the optimal
noise-free welfare from ``x`` at time ``t`` is ``x' S_t x``. Everything is vectorized over
leading "batch" axes, which is how the N problems "without agent i" are solved at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ConstrainedLQSolution",
    "constrained_riccati",
    "dual_sweep",
    "riccati_sweep",
    "solve_constrained_lq",
]


def constrained_riccati(
    a: np.ndarray,
    b: np.ndarray,
    q: np.ndarray,
    r: np.ndarray,
    *,
    keep_gains: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Backward Riccati recursion of the balance-constrained LQ problem.

    Parameters
    ----------
    a, b, q, r : ndarray, shape (T, ..., n)
        Diagonals of ``A_t, B_t, Q_t, R_t`` for every time ``t`` (and every batch member);
        ``r < 0`` and ``q <= 0`` are assumed (validated by the callers).
    keep_gains : bool
        Whether to return the gains ``K_t`` (skip them to save memory when only values matter).

    Returns
    -------
    value : ndarray, shape (T + 1, ..., n, n)
        ``S_t``, ``S_T = 0``; ``x' S_t x`` is the optimal noise-free welfare from ``x`` at ``t``.
    gains : ndarray, shape (T, ..., n, n), or None
        ``K_t`` with ``U(t) = K_t X(t)`` optimal and ``1' K_t = 0``.

    Examples
    --------
    >>> import numpy as np
    >>> T, n = 3, 2
    >>> ones = np.ones((T, n))
    >>> S, K = constrained_riccati(ones, ones, -ones, -ones)
    >>> bool(np.allclose(K.sum(axis=-2), 0.0))
    True
    """
    a, b, q, r = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, q, r)))
    horizon, n = a.shape[0], a.shape[-1]
    batch = a.shape[1:-1]
    value = np.zeros((horizon + 1, *batch, n, n))
    gains = np.zeros((horizon, *batch, n, n)) if keep_gains else None
    for t, s_t, k in riccati_sweep(a, b, q, r):
        value[t] = s_t
        if gains is not None:
            gains[t] = k
    return value, gains


def riccati_sweep(
    a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The recursion of :func:`constrained_riccati` one step at a time, without storing it.

    Yields ``(t, S_t, K_t)`` for ``t = T-1, ..., 0`` (the same numbers, bit for bit, as
    :func:`constrained_riccati`), so a caller that consumes each ``S_t`` at once needs memory for
    one time step only: this is how the Clarke pivots of :class:`~stochmech.lqg.LayeredVCG` are
    streamed when the table of all ``S_t`` would not fit in memory. ``a, b, q, r`` as in
    :func:`constrained_riccati`. The yielded arrays are fresh (not reused by later steps).

    Examples
    --------
    >>> import numpy as np
    >>> ones = np.ones((3, 2))
    >>> [t for t, _, _ in riccati_sweep(ones, ones, -ones, -ones)]
    [2, 1, 0]
    """
    a, b, q, r = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, q, r)))
    horizon, n = a.shape[0], a.shape[-1]
    batch = a.shape[1:-1]
    s_next = np.zeros((*batch, n, n))
    if n == 0:
        for t in range(horizon - 1, -1, -1):
            yield t, s_next.copy(), s_next.copy()
        return
    diag = np.arange(n)
    rhs = np.empty((*batch, n, n + 1))
    rhs[..., n] = 1.0
    for t in range(horizon - 1, -1, -1):
        at, bt = a[t][..., :, None], b[t][..., :, None]
        sb = s_next * np.swapaxes(bt, -1, -2)  # S B
        m = bt * sb  # B S B
        m[..., diag, diag] += r[t]
        np.multiply(bt * s_next, np.swapaxes(at, -1, -2), out=rhs[..., :n])  # B S A
        y = np.linalg.solve(m, rhs)
        y_h, y_1 = y[..., :n], y[..., n]
        ratio = y_h.sum(axis=-2) / y_1.sum(axis=-1)[..., None]
        k = y_1[..., :, None] * ratio[..., None, :]
        k -= y_h
        s_t = (at * sb) @ k  # (A S B) K
        s_t += at * s_next * np.swapaxes(at, -1, -2)
        s_t += np.swapaxes(s_t, -1, -2)
        s_t *= 0.5
        s_t[..., diag, diag] += q[t]
        yield t, s_t, k
        s_next = s_t


def dual_sweep(
    a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray, horizon: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """Per-agent coefficients of the Lagrangian dual of the balance-constrained problem.

    For time-invariant diagonal data (shape (n,) each) and the layer starting at ``s``
    (remaining horizon ``h = T - s``), dualize the balance ``1' U(t) = 0`` with multipliers
    ``lambda_t`` (``t = s..T-1``): the problem separates into n scalar problems, and agent ``j``'s
    value ``max sum_t q_j x_j(t)^2 + r_j u_j(t)^2 + 2 lambda_t u_j(t)`` from ``x_j`` is::

        alpha_j x_j^2 + 2 x_j beta_j' lambda + lambda' Gamma_j lambda,

    with ``Gamma_j`` positive definite. The problem is a concave QP with linear equality
    constraints, so there is no duality gap, and for ANY subset ``J`` of the agents::

        max welfare of J from x_J = sum_J alpha_j x_j^2 - c' (sum_J Gamma_j)^-1 c,
        c = sum_J x_j beta_j,

    i.e. ``S_s = diag(alpha) - beta' C^-1 beta`` for ``J`` with ``C = sum_J Gamma_j``. Removing an
    agent only removes its ``Gamma_j`` and ``beta_j``: this is how the Clarke pivots of
    :class:`~stochmech.lqg.LayeredVCG` are evaluated at scale (an ``h x h`` solve per agent and
    layer instead of an ``(n-1) x (n-1)`` Riccati sweep per agent).

    Recursion (``d = r + alpha b^2 < 0`` and ``f = alpha a b / d`` from horizon ``h - 1``;
    ``g = (1, b beta)`` over ``t = s..T-1``)::

        alpha <- q + alpha a^2 - f alpha a b,
        beta  <- (0, a beta) - f g,
        Gamma <- [[0, 0], [0, Gamma]] - g g' / d.

    Yields ``(s, alpha, beta, gamma)`` for ``s = T-1, ..., 0`` with shapes (n,), (n, h) and
    (n, h, h). The arrays are views of buffers updated in place by the next step: use (or copy)
    them before advancing. Memory ``8 n T^2`` bytes.

    Examples
    --------
    >>> import numpy as np
    >>> ones = np.ones(2)
    >>> s, alpha, beta, gamma = next(dual_sweep(ones, ones, -ones, -ones, 3))
    >>> s, alpha.tolist(), gamma[:, 0, 0].tolist()
    (2, [-1.0, -1.0], [1.0, 1.0])
    """
    a, b, q, r = (np.asarray(v, dtype=np.float64) for v in (a, b, q, r))
    n = a.shape[-1]
    alpha = np.zeros(n)
    beta = np.zeros((n, horizon))
    gamma = np.zeros((n, horizon, horizon))
    g = np.empty((n, horizon))
    outer = np.empty((n, horizon, horizon))
    for s in range(horizon - 1, -1, -1):
        d = r + alpha * b * b
        f = alpha * a * b / d
        g[:, s] = 1.0
        np.multiply(b[:, None], beta[:, s + 1 :], out=g[:, s + 1 :])
        alpha = q + alpha * a * a - f * alpha * a * b
        beta[:, s:] *= a[:, None]
        beta[:, s:] -= f[:, None] * g[:, s:]
        gs, block = g[:, s:], outer[:, s:, s:]
        np.multiply(gs[:, :, None], (gs / d[:, None])[:, None, :], out=block)
        gamma[:, s:, s:] -= block
        yield s, alpha, beta[:, s:], gamma[:, s:, s:]


@dataclass(frozen=True)
class ConstrainedLQSolution:
    """Riccati solution of a balance-constrained LQ problem with time-invariant diagonal data.

    Attributes
    ----------
    value : ndarray, shape (T + 1, n, n)
        ``S_t`` (``S_T = 0``).
    gains : ndarray, shape (T, n, n)
        ``K_t``; ``K_{T-1} = 0`` because the last control only moves the uncounted ``X(T)``.
    closed_loop : ndarray, shape (T, n, n)
        ``A + B K_t``.
    """

    value: np.ndarray
    gains: np.ndarray
    closed_loop: np.ndarray


def solve_constrained_lq(
    a: np.ndarray, b: np.ndarray, q: np.ndarray, r: np.ndarray, horizon: int
) -> ConstrainedLQSolution:
    """Riccati solution for time-invariant diagonals ``a, b, q, r`` of shape (n,).

    Examples
    --------
    >>> import numpy as np
    >>> sol = solve_constrained_lq(np.ones(2), np.ones(2), -np.ones(2), -np.ones(2), 4)
    >>> sol.gains.shape, sol.value.shape
    ((4, 2, 2), (5, 2, 2))
    """
    n = len(a)
    tile = [np.broadcast_to(np.asarray(v, dtype=np.float64), (horizon, n)) for v in (a, b, q, r)]
    value, gains = constrained_riccati(*tile)
    assert gains is not None
    closed_loop = np.diag(a)[None] + np.asarray(b, dtype=np.float64)[None, :, None] * gains
    for arr in (value, gains, closed_loop):
        arr.setflags(write=False)
    return ConstrainedLQSolution(value=value, gains=gains, closed_loop=closed_loop)
