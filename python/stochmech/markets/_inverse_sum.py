"""Exact expectations of 1/S and 1/S^2 for a sum S of independent finite positive variables.

The demand-response market needs E[1/S], E[1/S^2], E[v_i/S], E[v_i/S^2] and the leave-one-out
gaps E[1/S_-i] - E[1/S] for S = v_1 + ... + v_n + v_b, where v_i = 1/delta_i are independent
with finite laws and v_b (the reserve) is always present. Enumerating the K^n profiles is out of
the question; instead (docs/modelling.md, "Exact expectations without enumeration")

    1/S = int_0^inf e^{-tS} dt,        1/S^2 = int_0^inf t e^{-tS} dt,

and E[e^{-tS}] = prod_j M_j(t) with M_j(t) = E[e^{-t v_j}] is a product of one-dimensional sums,
so each expectation is a one-dimensional integral whose integrand costs O(nK). Every
leave-one-out quantity follows from the same per-node arrays (``log phi - log M_i``), so all n of
them cost O(nK) per node together (exclusive prefix and suffix sums of log M_j give
log prod_{j != i} M_j for every i without subtracting log M_i).

Quadrature
----------
With t = e^x every integrand becomes g(x) = e^x psi(e^x) on the real line. The integrands are
positive combinations of e^{-tS} (times 1 or t), analytic for Re t > 0, so g is analytic in the
strip |Im x| < pi/2 and |psi(t e^{iy})| <= psi(t cos y). The trapezoidal rule with step h on
the whole line then has relative error at most 2 / (cos(a)^m (e^{2 pi a / h} - 1)) for any
a < pi/2, with m = 1 for the 1/S family and m = 2 for the 1/S^2 family (the standard strip bound
for the trapezoidal rule, e.g. Trefethen and Weideman, SIAM Review 2014, Thm 5.1, with the
strip norm bounded by the value on the real line over cos(a)^m). At the default h = 0.2 and
a = 1.45 this is below 3e-18. The leave-one-out gap integrand phi_-i (1 - M_i) is not of that
form; since |1 - e^{-w}| <= |w| for Re w >= 0, its strip norm is at most
E[v_i] E[1/S_-i^2] / cos(a)^2, a modest multiple of its value E[v_i / (S_-i S)] unless v_i is
very spread out. The tests check every integral against enumeration in exact rational
arithmetic and against the rule with half the step.

The line is truncated to [ln t_lo, ln t_hi] with t_lo = eps / S_max (the part below costs at
most eps relative) and t_hi chosen from the slowest exponential decay of any integrand (the
smallest possible leave-one-out sum) so the part above costs at most eps relative; both use
the support bounds of S, so the node count grows only with the logarithm of the spread of S.
Defaults: eps = 1e-17, h = 0.2, about 230 nodes for a spread of 10^3.

Numerics: M_j is evaluated as e^{-t min v_j} sum_k p_jk e^{-t (v_jk - min v_j)} (no underflow at
large t), ``1 - M_j`` through ``expm1`` (no cancellation at small t, where the leave-one-out gap
lives), and products over players as sums of logarithms (no underflow for n = 1000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["InverseSumMoments", "LaplaceQuadrature", "inverse_sum_moments", "shifted_inverse"]

#: target number of (node, player, level) entries processed per chunk
_CHUNK_ENTRIES = 1 << 19


@dataclass(frozen=True)
class LaplaceQuadrature:
    """Settings of the trapezoidal rule in x = ln t (see the module docstring).

    Parameters
    ----------
    step : float
        Step h in x = ln t. The a-priori relative discretization bound is
        2 / (cos(1.45)^2 (e^{2 pi 1.45 / h} - 1)): 3e-18 at 0.2, 2e-8 at 0.4.
    eps : float
        Relative truncation target for each end of the line.

    Examples
    --------
    >>> LaplaceQuadrature().step
    0.2
    """

    step: float = 0.2
    eps: float = 1e-17

    def __post_init__(self) -> None:
        if not (math.isfinite(self.step) and 0 < self.step <= 1):
            raise ValueError(f"step must be in (0, 1], got {self.step}")
        if not (math.isfinite(self.eps) and 0 < self.eps < 1e-3):
            raise ValueError(f"eps must be in (0, 1e-3), got {self.eps}")

    def discretization_bound(self) -> float:
        """A-priori relative discretization error bound of the 1/S^2 family at this step.

        Examples
        --------
        >>> LaplaceQuadrature(step=0.2).discretization_bound() < 1e-17
        True
        """
        a = 1.45
        return 2.0 / (math.cos(a) ** 2 * math.expm1(2 * math.pi * a / self.step))

    def nodes(self, s_max: float, decay: float, log_spread: float) -> tuple[np.ndarray, np.ndarray]:
        """Nodes t and weights w with sum_q w_q f(t_q) ~ int_0^inf f(t) dt.

        Parameters
        ----------
        s_max : float
            Largest possible value of any sum S in the integrands (fixes the lower end).
        decay : float
            Smallest possible value of any sum S (every integrand decays at least as e^{-decay t}).
        log_spread : float
            Natural log of the largest ratio (tail bound) / (integral value) beyond e^{-decay t};
            added to the upper end so its truncation stays below ``eps`` relative.

        Examples
        --------
        >>> t, w = LaplaceQuadrature().nodes(2.0, 1.0, 0.0)
        >>> abs(float(np.sum(w * np.exp(-1.5 * t))) - 1 / 1.5) < 1e-15
        True
        """
        if not (s_max >= decay > 0 and math.isfinite(s_max)):
            raise ValueError(f"need s_max >= decay > 0, got s_max={s_max}, decay={decay}")
        base = -math.log(self.eps) + max(log_spread, 0.0)
        tau = base
        for _ in range(4):
            tau = base + math.log1p(tau)
        x_lo = math.log(self.eps / s_max)
        x_hi = math.log(tau / decay)
        count = math.ceil((x_hi - x_lo) / self.step) + 1
        x = x_lo + self.step * np.arange(count)
        t = np.exp(x)
        return t, self.step * t


@dataclass(frozen=True)
class InverseSumMoments:
    """Expectations for S = sum_i v_i + v_b (independent, finite laws, v > 0).

    Attributes
    ----------
    inv : float
        E[1/S].
    inv2 : float
        E[1/S^2].
    loo_gap : ndarray, shape (n,)
        E[1/S_-i] - E[1/S] = E[v_i / (S_-i S)] with S_-i = S - v_i (computed without cancellation).
    share : ndarray, shape (n,)
        E[v_i / S].
    share2 : ndarray, shape (n,)
        E[v_i / S^2].
    base_share, base_share2 : float
        E[v_b / S] and E[v_b / S^2].
    nodes : int
        Number of quadrature nodes used.
    """

    inv: float
    inv2: float
    loo_gap: np.ndarray
    share: np.ndarray
    share2: np.ndarray
    base_share: float
    base_share2: float
    nodes: int


def _prepare(values: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-row support minimum, support maximum, and values with zero-probability slots filled.

    Filling unused slots with the row minimum keeps every shifted exponent non-positive.
    """
    pos = probs > 0
    lo = np.where(pos, values, np.inf).min(axis=1)
    hi = np.where(pos, values, -np.inf).max(axis=1)
    filled = np.where(pos, values, lo[:, None])
    return lo, hi, filled


def _row_terms(
    t: np.ndarray, v: np.ndarray, p: np.ndarray, lo: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For nodes t (N,) and rows (v, p) of shape (m, K): log M, 1 - M and E[v e^{-tv}] / M.

    All three have shape (N, m).
    """
    tt = t[:, None, None]
    shifted = np.exp(-tt * (v - lo[:, None])[None])  # e^{-t (v - min v)} in (0, 1]
    m_shift = np.einsum("mk,nmk->nm", p, shifted)
    ratio = np.einsum("mk,nmk->nm", p * v, shifted) / m_shift
    one_minus = -np.einsum("mk,nmk->nm", p, np.expm1(-tt * v[None]))
    log_small = np.log1p(-np.minimum(one_minus, 0.5))
    log_m = np.where(one_minus < 0.5, log_small, -t[:, None] * lo[None] + np.log(m_shift))
    return log_m, one_minus, ratio


def _chunks(count: int, width: int) -> list[slice]:
    size = max(1, _CHUNK_ENTRIES // max(1, width))
    return [slice(s, min(s + size, count)) for s in range(0, count, size)]


def inverse_sum_moments(
    values: np.ndarray,
    probs: np.ndarray,
    base_values: np.ndarray,
    base_probs: np.ndarray,
    quad: LaplaceQuadrature | None = None,
) -> InverseSumMoments:
    """Moments of 1/S for S = sum_i v_i + v_b; v_i has law ``(values[i], probs[i])``.

    Parameters
    ----------
    values, probs : ndarray, shape (n, K)
        Row i lists the values and probabilities of v_i (pad with probability 0). Values must be
        positive where the probability is positive.
    base_values, base_probs : ndarray, shape (Kb,)
        Law of the always-present summand v_b (positive).
    quad : LaplaceQuadrature, optional
        Quadrature settings.

    Returns
    -------
    InverseSumMoments

    Examples
    --------
    >>> v = np.array([[1.0, 3.0]]); p = np.array([[0.5, 0.5]])
    >>> m = inverse_sum_moments(v, p, np.array([1.0]), np.array([1.0]))
    >>> round(m.inv, 12), (0.5 / 2 + 0.5 / 4)
    (0.375, 0.375)
    """
    quad = quad or LaplaceQuadrature()
    v = np.asarray(values, dtype=float)
    p = np.asarray(probs, dtype=float)
    vb = np.asarray(base_values, dtype=float)[None, :]
    pb = np.asarray(base_probs, dtype=float)[None, :]
    n = v.shape[0]
    lo, hi, v = _prepare(v, p)
    blo, bhi, vb = _prepare(vb, pb)
    # identical summands (same values and probabilities) are computed once: group g of
    # c_g rows contributes c_g log M_g
    if n:
        _, first, group, count = np.unique(
            np.concatenate([v, p], axis=1), axis=0, return_index=True, return_inverse=True,
            return_counts=True,
        )  # fmt: skip
        group = group.reshape(-1)
        order = np.argsort(first)  # groups in order of first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        group = rank[group]
        first, counts = first[order], count[order].astype(float)
        gv, gp, glo = v[first], p[first], lo[first]
    else:
        group = np.zeros(0, dtype=np.int64)
        counts = np.zeros(0)
        gv, gp, glo = v, p, lo

    s_lo = float(lo.sum() + blo[0])
    s_hi = float(hi.sum() + bhi[0])
    decay = s_lo - float(lo.max()) if n else s_lo  # slowest leave-one-out sum
    decay = max(decay, float(blo[0]))
    v_min = float(min(lo.min() if n else np.inf, blo[0]))
    spread = float(max((hi / lo).max() if n else 1.0, bhi[0] / blo[0]))
    log_spread = math.log(spread) + 2 * math.log(s_hi / decay) + math.log(s_hi / v_min)
    t, w = quad.nodes(s_hi, decay, log_spread)

    inv = inv2 = base_share = base_share2 = 0.0
    groups = gv.shape[0]
    loo_gap = np.zeros(groups)
    share = np.zeros(groups)
    share2 = np.zeros(groups)
    for sl in _chunks(t.size, groups * v.shape[1] + vb.shape[1]):
        tc, wc = t[sl], w[sl]
        log_b, _, ratio_b = _row_terms(tc, vb, pb, blo)
        log_phi = log_b[:, 0]
        if n:
            log_m, one_minus, ratio = _row_terms(tc, gv, gp, glo)
            log_c = log_m * counts[None, :]
            log_phi = log_phi + log_c.sum(axis=1)
        phi = np.exp(log_phi)
        inv += float(wc @ phi)
        inv2 += float((wc * tc) @ phi)
        base_share += float(wc @ (phi * ratio_b[:, 0]))
        base_share2 += float((wc * tc) @ (phi * ratio_b[:, 0]))
        if n:
            # log of prod_{j != i} M_j from exclusive prefix and suffix sums over the groups
            # and c_g - 1 copies of i's own group, not log phi - log M_i: the difference would
            # cancel when provider i dominates S.
            zero = np.zeros((tc.size, 1))
            prefix = np.concatenate([zero, np.cumsum(log_c[:, :-1], axis=1)], axis=1)
            suffix = np.concatenate([np.cumsum(log_c[:, :0:-1], axis=1)[:, ::-1], zero], axis=1)
            log_phi_minus = prefix + suffix + log_m * (counts - 1.0)[None, :] + log_b
            loo_gap += wc @ (np.exp(log_phi_minus) * one_minus)
            share += (wc * phi) @ ratio
            share2 += (wc * tc * phi) @ ratio
    return InverseSumMoments(
        inv=inv,
        inv2=inv2,
        loo_gap=loo_gap[group],
        share=share[group],
        share2=share2[group],
        base_share=base_share,
        base_share2=base_share2,
        nodes=int(t.size),
    )


def shifted_inverse(
    values: np.ndarray,
    probs: np.ndarray,
    base_values: np.ndarray,
    base_probs: np.ndarray,
    shifts: np.ndarray,
    power: int,
    quad: LaplaceQuadrature | None = None,
) -> np.ndarray:
    """E[1 / (a + R)^power] for each a in ``shifts``, R = sum_i v_i + v_b (power 1 or 2).

    Examples
    --------
    >>> r = shifted_inverse(np.zeros((0, 1)), np.zeros((0, 1)), np.array([1.0]),
    ...                     np.array([1.0]), np.array([1.0, 3.0]), 2)
    >>> np.allclose(r, [1 / 4, 1 / 16], rtol=1e-14)
    True
    """
    if power not in (1, 2):
        raise ValueError(f"power must be 1 or 2, got {power}")
    quad = quad or LaplaceQuadrature()
    a = np.asarray(shifts, dtype=float)
    v = np.asarray(values, dtype=float)
    p = np.asarray(probs, dtype=float)
    vb = np.asarray(base_values, dtype=float)[None, :]
    pb = np.asarray(base_probs, dtype=float)[None, :]
    n = v.shape[0]
    blo, bhi, vb = _prepare(vb, pb)
    r_lo = float(blo[0])
    r_hi = float(bhi[0])
    if n:
        lo, hi, v = _prepare(v, p)
        r_lo += float(lo.sum())
        r_hi += float(hi.sum())
    s_lo = r_lo + float(a.min())
    s_hi = r_hi + float(a.max())
    t, w = quad.nodes(s_hi, s_lo, power * math.log(s_hi / s_lo))
    out = np.zeros(a.shape)
    for sl in _chunks(t.size, n * v.shape[1] + vb.shape[1] + a.size):
        tc, wc = t[sl], w[sl]
        log_phi = _row_terms(tc, vb, pb, blo)[0][:, 0]
        if n:
            log_phi = log_phi + _row_terms(tc, v, p, lo)[0].sum(axis=1)
        weight = wc * tc if power == 2 else wc
        out += weight @ np.exp(log_phi[:, None] - tc[:, None] * a[None, :])
    return out
