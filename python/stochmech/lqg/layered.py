"""The layered dynamic stochastic VCG mechanism for LQG agents (second paper, Section IV).

Notation (docs/modelling.md, "Strategic LQG: the layered VCG mechanism").
Layer ``s`` starts from ``X(s, s) = W(s-1)`` (``X(0, 0) = x(0)``);
at time ``s`` the agents bid ``X_hat(s, s)`` and the ISO plans ``U(s, t)``, ``t >= s``, for the
noise-free system from ``X_hat(s, s)`` by maximizing ``L_s`` (LQG eq. 5) under balance
``1' U(s, t) = 0``. Earlier layers' plans are optimal, so the cross terms of ``L_s`` do not move
its optimizer: the plan is the constrained LQ plan ``U(s, t) = K_t X_hat(s, t)`` with the Riccati
gains of :mod:`stochmech.lqg.riccati`, computed once per (agents, horizon). The applied control is
``U(t) = sum_{s <= t} U(s, t) = K_t X_hat(t)`` where ``X_hat(t) = sum_{s <= t} X_hat(s, t)`` is the
state the ISO believes in. The payment collected from agent ``i`` at time ``s`` is, literally::

    p_i(s) = h_i(X_hat_-i(s, s)) - sum_{j != i} l_j(s),
    l_j(s) = sum_{t >= s} q_j x_j(s,t)^2 + r_j u_j(s,t)^2
             + 2 q_j (sum_{tau < s} x_j(tau,t)) x_j(s,t) + 2 r_j (sum_{tau < s} u_j(tau,t)) u_j(s,t)

(hatted, planned quantities: the cross terms DO enter the payments). ``pivot="clarke"`` takes
``h_i`` = optimal welfare of the others' noise-free layer problem without agent ``i`` from
``X_hat_-i(s, s)``, without cross terms (a function of the others' current bids only);
``pivot="none"`` takes ``h_i = 0``.

Memory and time. The Clarke pivots need the optimal values of the N problems without one
agent. Their Riccati matrices ``S^(-i)_s`` take ``8 T N (N-1)^2`` bytes (12.7 GB at
N = T = 200) and ``O(T N^4)`` time; the table is kept only when it fits in
``pivot_table_bytes`` (256 MiB by default). Otherwise every run streams the pivots after the
forward pass (which fixes all bids), by the cheaper of two exact methods: the Riccati sweeps, a
chunk of agents at a time (``O(N^3)`` memory), or Lagrangian duality
(:func:`~stochmech.lqg.riccati.dual_sweep`): dualizing the balance constraint separates the
agents, and the problem without ``i`` needs one ``h x h`` Cholesky factorization
(``h = T - s``), ``O(N T^4)`` time and ``O(N T^2)`` memory in all. At N = T = 200 a run takes
about 15 s and 0.5 GB (benches/bench_lqg.py). :meth:`LayeredVCG.step` by duality keeps the
factors of every layer's dual Hessians (``3 * 8 N T^2`` bytes) after its first call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from scipy.linalg import lapack
from threadpoolctl import ThreadpoolController

from stochmech._display import fmt_array, html_table, pandas, short_repr
from stochmech.lqg._validation import as_float_array, check_finite_result, check_int, frozen
from stochmech.lqg.agents import LQGAgents
from stochmech.lqg.riccati import (
    ConstrainedLQSolution,
    constrained_riccati,
    dual_sweep,
    riccati_sweep,
    solve_constrained_lq,
)

__all__ = [
    "PIVOT_TABLE_BYTES",
    "BatchUtilities",
    "History",
    "LayerStep",
    "LayeredBatch",
    "LayeredRun",
    "LayeredVCG",
    "Strategy",
]

PIVOTS = ("clarke", "none")

#: Default largest table of Clarke pivot values kept in memory (bytes); above it, streamed.
PIVOT_TABLE_BYTES = 256 * 2**20
#: Largest working memory (four ``8 N T^2``-byte buffers) of the streamed pivots by duality.
DUAL_BYTES = 1024 * 2**20


@dataclass(frozen=True)
class History:
    """Everything observable when the bids of layer ``s = time`` are made.

    Arrays may carry leading batch axes (in :meth:`LayeredVCG.run_batch`); the last two axes are
    (time, agent). Past payments are not listed: they are functions of the past bids, which are.

    Attributes
    ----------
    time : int
        The current time ``s``.
    layer_inputs : ndarray, shape (..., s + 1, N)
        True layer inputs ``X(tau, tau)``, ``tau <= s`` (``x(0)``, then the noises ``w(tau - 1)``).
    states : ndarray, shape (..., s + 1, N)
        True states ``X(0..s)``.
    bids : ndarray, shape (..., s, N)
        Past bids ``X_hat(tau, tau)``, ``tau < s``.
    believed_states : ndarray, shape (..., s, N)
        The ISO's states ``X_hat(0..s-1)``.
    controls : ndarray, shape (..., s, N)
        Applied controls ``U(0..s-1)``.
    predicted_state : ndarray, shape (..., N)
        The ISO's prediction of ``X(s)`` before the layer-``s`` bids: ``A X_hat(s-1) + B U(s-1)``.
    """

    time: int
    layer_inputs: np.ndarray
    states: np.ndarray
    bids: np.ndarray
    believed_states: np.ndarray
    controls: np.ndarray
    predicted_state: np.ndarray

    @property
    def truth(self) -> np.ndarray:
        """The truthful bids of the current layer, ``X(s, s)``."""
        return self.layer_inputs[..., -1, :]


#: A bidding strategy profile: ``strategy(s, history)`` returns the bids of all N agents at ``s``.
Strategy = Callable[[int, History], Any]
Bids = np.ndarray | Strategy | None


@dataclass(frozen=True)
class LayerStep:
    """What the ISO computes at time ``s`` (:meth:`LayeredVCG.step`).

    Attributes
    ----------
    time : int
        The layer ``s``.
    bids : ndarray, shape (N,)
        ``X_hat(s, s)``.
    plan_states, plan_controls : ndarray, shape (T - s, N)
        The layer's plan ``X_hat(s, t)`` and ``U(s, t)`` for ``t = s..T-1``.
    believed_state : ndarray, shape (N,)
        ``X_hat(s) = sum_{tau <= s} X_hat(tau, s)``.
    controls : ndarray, shape (N,)
        ``U(s) = sum_{tau <= s} U(tau, s)``: the controls to apply now (``sum = 0``).
    layer_terms : ndarray, shape (N,)
        Each agent's part ``l_j(s)`` of ``L_s``, cross terms included.
    pivots : ndarray, shape (N,)
        ``h_i(X_hat_-i(s, s))``.
    payments : ndarray, shape (N,)
        ``p_i(s)``, paid by agent i to the ISO.
    """

    time: int
    bids: np.ndarray
    plan_states: np.ndarray
    plan_controls: np.ndarray
    believed_state: np.ndarray
    controls: np.ndarray
    layer_terms: np.ndarray
    pivots: np.ndarray
    payments: np.ndarray


@dataclass(frozen=True)
class LayeredBatch:
    """Results of :meth:`LayeredVCG.run_batch`; every array has a leading batch axis M.

    Attributes
    ----------
    layer_inputs, bids, states, believed_states, controls : ndarray, shape (M, T, N)
        True inputs, bids ``X_hat(s, s)``, true states, the ISO's states, applied controls.
    layer_terms, pivots, payments : ndarray, shape (M, T, N)
        ``l_j(s)``, ``h_i(s)`` and ``p_i(s)`` (row ``s``).
    valuations : ndarray, shape (M, N)
        ``sum_t q_i x_i(t)^2 + r_i u_i(t)^2`` on the true states.
    utilities : ndarray, shape (M, N)
        ``valuations - sum_s p_i(s)``.
    """

    layer_inputs: np.ndarray
    bids: np.ndarray
    states: np.ndarray
    believed_states: np.ndarray
    controls: np.ndarray
    layer_terms: np.ndarray
    pivots: np.ndarray
    payments: np.ndarray
    valuations: np.ndarray
    utilities: np.ndarray

    @property
    def welfare(self) -> np.ndarray:
        """Realized social welfare of each run, shape (M,)."""
        return self.valuations.sum(axis=-1)


@dataclass(frozen=True)
class BatchUtilities:
    """Results of :meth:`LayeredVCG.utilities_batch`: per-run totals only, shape (M, N).

    Attributes
    ----------
    utilities : ndarray
        ``valuations - sum_s p_i(s)``.
    valuations : ndarray
        ``sum_t q_i x_i(t)^2 + r_i u_i(t)^2`` on the true states.
    reported : ndarray
        ``sum_t q_i x_hat_i(t)^2 + r_i u_i(t)^2`` on the ISO's states (the reported valuations).
    pivot_totals : ndarray
        ``sum_s h_i(s)``.
    """

    utilities: np.ndarray
    valuations: np.ndarray
    reported: np.ndarray
    pivot_totals: np.ndarray

    @property
    def payment_totals(self) -> np.ndarray:
        """``sum_s p_i(s) = sum_s h_i(s) - sum_{j != i} reported_j``."""
        return self.pivot_totals - (self.reported.sum(axis=-1, keepdims=True) - self.reported)


@dataclass(frozen=True)
class LayeredRun:
    """One run of the layered mechanism (:meth:`LayeredVCG.run`).

    Attributes
    ----------
    layer_inputs, bids, states, believed_states, controls : ndarray, shape (T, N)
        True inputs, bids, true states ``X(t)``, the ISO's states ``X_hat(t)``, controls ``U(t)``.
    layer_terms, pivots, payments : ndarray, shape (T, N)
        ``l_j(s)``, ``h_i(s)``, ``p_i(s)``.
    valuations : ndarray, shape (N,)
        ``sum_t q_i x_i(t)^2 + r_i u_i(t)^2``.
    utilities : ndarray, shape (N,)
        ``valuations - sum_s p_i(s)``.
    """

    layer_inputs: np.ndarray
    bids: np.ndarray
    states: np.ndarray
    believed_states: np.ndarray
    controls: np.ndarray
    layer_terms: np.ndarray
    pivots: np.ndarray
    payments: np.ndarray
    valuations: np.ndarray
    utilities: np.ndarray

    @property
    def welfare(self) -> float:
        """Realized social welfare ``sum_t X'QX + U'RU``."""
        return float(self.valuations.sum())

    def __repr__(self) -> str:
        t, n = self.states.shape
        return short_repr(
            f"LayeredRun: T = {t}, {n} agents",
            [
                ("utilities", fmt_array(self.utilities)),
                ("payments", fmt_array(self.payments.sum(axis=0))),
                ("welfare", f"{self.welfare:.5g}"),
                ("ISO revenue", f"{float(self.payments.sum()):.5g}"),
            ],
        )

    def _repr_html_(self) -> str:
        t, n = self.states.shape
        rows = [
            [i, self.valuations[i], self.payments[:, i].sum(), self.utilities[i]] for i in range(n)
        ]
        return html_table(
            f"LayeredRun: T = {t}, {n} agents",
            [
                ("welfare", f"{self.welfare:.5g}"),
                ("ISO revenue", f"{float(self.payments.sum()):.5g}"),
            ],
            ["agent", "valuation", "total payment", "utility"],
            rows,
        )

    def to_pandas(self) -> Any:
        """One row per (time t, agent i): state, believed state, control, bid, layer input,
        payment (MultiIndex ``(t, agent)``), as a pandas DataFrame (optional extra
        ``stochmech[pandas]``).

        Examples
        --------
        >>> from stochmech.lqg import LQGAgents, LayeredVCG
        >>> agents = LQGAgents([0.9, 0.9], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.1, 0.1],
        ...                    [1.0, 1.0])
        >>> run = LayeredVCG(agents, 4).run(agents.sample_layer_inputs(4, np.random.default_rng(0)))
        >>> run.to_pandas().shape
        (8, 6)
        """
        pd = pandas()
        t, n = self.states.shape
        index = pd.MultiIndex.from_product([np.arange(t), np.arange(n)], names=["t", "agent"])
        return pd.DataFrame(
            {
                "state": self.states.ravel(),
                "believed_state": self.believed_states.ravel(),
                "control": self.controls.ravel(),
                "bid": self.bids.ravel(),
                "layer_input": self.layer_inputs.ravel(),
                "payment": self.payments.ravel(),
            },
            index=index,
        )

    @property
    def revenue(self) -> float:
        """Total collected by the ISO, ``sum_{s,i} p_i(s)``."""
        return float(self.payments.sum())

    @property
    def budget(self) -> np.ndarray:
        """The ISO's budget per layer, ``sum_i p_i(s)``, shape (T,) (positive: surplus)."""
        return self.payments.sum(axis=1)


class LayeredVCG:
    """The layered dynamic stochastic VCG mechanism run by the ISO.

    Parameters
    ----------
    agents : LQGAgents
        The agents (parameters known to the ISO).
    horizon : int
        ``T >= 1``; times ``t = 0..T-1``.
    pivot : {"clarke", "none"}
        ``h_i``: the Clarke-style pivot (optimal welfare of the others' noise-free layer problem
        without agent ``i`` from ``X_hat_-i(s, s)``, no cross terms) or ``h_i = 0``.
    pivot_table_bytes : int
        Largest table of pivot values ``S^(-i)_s`` (``8 T N (N-1)^2`` bytes) kept in memory;
        above it the pivots are streamed (see the module notes). Results do not depend on it
        (up to rounding).

    Notes
    -----
    The constrained Riccati gains are computed once in the constructor (``O(T N^3)``); the pivot
    values of the N problems without one agent cost ``O(T N^4)``, once if their table fits in
    ``pivot_table_bytes``, else once per call, streamed (Riccati sweeps, or by duality in
    ``O(N T^4)`` when that is cheaper, see the module notes).
    A :meth:`run` with per-layer payments costs ``O(T^2 N^2)``; :meth:`utilities_batch` (totals
    only, for Monte Carlo) costs ``O(T N^2)`` per path plus the pivots.
    The mechanism is stateful only for :meth:`step`; :meth:`run` and :meth:`run_batch` do not
    touch the step state.

    Examples
    --------
    >>> import numpy as np
    >>> agents = LQGAgents(a=[0.9, 1.0, 0.8], b=[1.0, 1.0, -1.0], q=[-1.0, -0.5, -2.0],
    ...                    r=[-1.0, -2.0, -1.0], sigma=[0.1, 0.2, 0.1], zeta=[1.0, 1.0, 1.0])
    >>> mech = LayeredVCG(agents, horizon=5)
    >>> run = mech.run(agents.sample_layer_inputs(5, np.random.default_rng(1)))
    >>> run.controls.shape, bool(np.allclose(run.controls.sum(axis=1), 0.0))
    ((5, 3), True)
    >>> step = mech.step([0.5, -0.2, 0.1])
    >>> step.plan_controls.shape
    (5, 3)
    """

    def __init__(
        self,
        agents: LQGAgents,
        horizon: int,
        pivot: str = "clarke",
        *,
        pivot_table_bytes: int = PIVOT_TABLE_BYTES,
    ) -> None:
        if not isinstance(agents, LQGAgents):
            raise ValueError(f"agents must be an LQGAgents instance, got {type(agents).__name__}")
        self._horizon = check_int("horizon", horizon, minimum=1)
        if pivot not in PIVOTS:
            raise ValueError(f"pivot must be one of {PIVOTS}, got {pivot!r}")
        self._table_bytes = check_int("pivot_table_bytes", pivot_table_bytes, minimum=0)
        self._agents = agents
        self._pivot = pivot
        cause = f"the agents' a, b, q, r over horizon {self._horizon}"
        try:
            with np.errstate(all="ignore"):
                lq = solve_constrained_lq(agents.a, agents.b, agents.q, agents.r, self._horizon)
        except np.linalg.LinAlgError as exc:
            raise ValueError(f"the Riccati recursion is singular: {cause} are degenerate") from exc
        for what, arr in (
            ("the Riccati matrices", lq.value),
            ("the Riccati gains", lq.gains),
            ("the closed-loop matrices", lq.closed_loop),
        ):
            check_finite_result(what, arr, cause)
        self._lq = lq
        self._pivot_values: np.ndarray | None = None
        self._pivot_method = "auto"  # or "riccati" / "dual": the streamed method (tests)
        self._dual_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._pivot_diagonals: np.ndarray | None = None
        n = agents.n
        self._others = np.array([[j for j in range(n) if j != i] for i in range(n)], dtype=np.intp)
        self._others = self._others.reshape(n, n - 1)
        self.reset()
        self.expected_welfare()  # refuses variances that overflow the welfare

    # ------------------------------------------------------------------ properties
    @property
    def agents(self) -> LQGAgents:
        return self._agents

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def pivot(self) -> str:
        return self._pivot

    @property
    def solution(self) -> ConstrainedLQSolution:
        """Riccati values ``S_t``, gains ``K_t`` and closed-loop matrices of the full problem."""
        return self._lq

    @property
    def time(self) -> int:
        """The layer that the next :meth:`step` call runs."""
        return self._t

    def expected_welfare(self) -> float:
        """Optimal expected social welfare ``tr(S_0 Z) + sum_{t=1}^{T-1} tr(S_t Sigma)``.

        Examples
        --------
        >>> agents = LQGAgents([1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0], [0.0, 0.0],
        ...                    [1.0, 0.0])
        >>> LayeredVCG(agents, horizon=1).expected_welfare()
        -1.0
        """
        diag = np.einsum("tii->ti", self._lq.value[: self._horizon])
        var = self._agents.input_variances(self._horizon)
        with np.errstate(all="ignore"):
            welfare = float((diag * var).sum())
        check_finite_result("the expected welfare", welfare, "the agents' sigma, zeta, a, b, q, r")
        return welfare

    @property
    def pivot_table_bytes(self) -> int:
        """Size of the full table of pivot values ``S^(-i)_s``, ``8 T N (N-1)^2`` bytes."""
        n = self._agents.n
        return 8 * self._horizon * n * (n - 1) ** 2

    def pivot_values(self) -> np.ndarray:
        """``S^(-i)_s`` for every layer and agent, shape (T, N, N-1, N-1) (computed once).

        ``x' S^(-i)_s x`` is the optimal welfare of the noise-free problem without agent ``i``
        from ``x`` (the others' states) at time ``s`` to ``T-1``. This allocates the whole
        table (:attr:`pivot_table_bytes`) even above the streaming threshold; runs never need it
        then (:meth:`pivot_diagonals` is the ``O(T N^2)`` summary).
        """
        if self._pivot_values is None:
            ag, idx, horizon = self._agents, self._others, self._horizon
            data = [
                np.broadcast_to(v[idx], (horizon, *idx.shape)) for v in (ag.a, ag.b, ag.q, ag.r)
            ]
            with single_threaded_blas():
                value, _ = self._pivot_riccati(constrained_riccati, data, keep_gains=False)
            self._pivot_values = frozen(np.ascontiguousarray(value[:horizon]))
        return self._pivot_values

    def pivot_diagonals(self) -> np.ndarray:
        """Diagonals of ``S^(-i)_s`` embedded in N columns, shape (T, N, N) (``O(T N^2)``).

        Entry ``[s, i, j]`` is ``S^(-i)_s[j, j]`` for ``j != i`` and 0 for ``j = i``:
        ``E h_i(s) = sum_j [s, i, j] Var(X_hat_j(s, s))`` for independent zero-mean bids.
        Computed once: from the table when it is kept, else by a streamed sweep (or as a
        by-product of the first streamed run).
        """
        if self._pivot_diagonals is None:
            n, horizon = self._agents.n, self._horizon
            out = np.zeros((horizon, n, n))
            if n > 1 and self._route(n) == "dual":
                with single_threaded_blas():
                    for t, alpha, beta, before, after in self._dual_layers():
                        out[t] = self._dual_diagonals(alpha, beta, before, after)
                check_finite_result("the pivot diagonals", out, self._pivot_cause())
            elif n > 1:
                for idx, t, values in self._pivot_blocks():
                    self._store_diagonals(out, idx, t, values)
            self._pivot_diagonals = frozen(out)
        return self._pivot_diagonals

    def _store_diagonals(
        self, out: np.ndarray, idx: np.ndarray, t: int, values: np.ndarray
    ) -> None:
        diag = np.diagonal(values, axis1=-2, axis2=-1)  # (c, N-1)
        out[t, idx[:, None], self._others[idx]] = diag

    # ------------------------------------------------------------------ pivots
    def _keeps_table(self) -> bool:
        return self._pivot_values is not None or self.pivot_table_bytes <= self._table_bytes

    def _agent_chunk(self) -> int:
        """Agents per streamed sweep, so the sweep's working set stays near the table budget."""
        n = self._agents.n
        per_agent = 16 * 8 * n * n  # about 16 (N-1) x N arrays per problem in one step
        return max(1, min(n, max(self._table_bytes, 64 * 2**20) // per_agent))

    def _pivot_blocks(self, stop: int = 0) -> Iterator[tuple[np.ndarray, int, np.ndarray]]:
        """Yield ``(agents, s, S^(-agents)_s)`` for ``s >= stop``, from the table or streamed.

        With the table, ``s`` runs forward over all agents at once; streamed, ``s`` runs backward
        from ``T-1`` to ``stop`` for each chunk of agents.
        """
        ag, n, horizon = self._agents, self._agents.n, self._horizon
        if self._keeps_table():
            table, every = self.pivot_values(), np.arange(n)
            for t in range(stop, horizon):
                yield every, t, table[t]
            return
        chunk = self._agent_chunk()
        for start in range(0, n, chunk):
            idx = np.arange(start, min(n, start + chunk))
            others = self._others[idx]
            data = [np.broadcast_to(v[others], (horizon, *others.shape)) for v in (ag.a, ag.b)]
            data += [np.broadcast_to(v[others], (horizon, *others.shape)) for v in (ag.q, ag.r)]
            for t, values, _ in _guarded_sweep(data, self._pivot_cause()):
                yield idx, t, values
                if t == stop:
                    break

    def _pivot_cause(self) -> str:
        return f"the agents' a, b, q, r over horizon {self._horizon} (Clarke pivots)"

    def _pivot_riccati(self, solve: Any, data: list[np.ndarray], **kw: Any) -> Any:
        try:
            with np.errstate(all="ignore"):
                value, gains = solve(*data, **kw)
        except np.linalg.LinAlgError as exc:
            raise ValueError(
                f"the Riccati recursion is singular: {self._pivot_cause()} are degenerate"
            ) from exc
        check_finite_result("the pivot Riccati matrices", value, self._pivot_cause())
        return value, gains

    def _pivot_forms(self, bids: np.ndarray, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``h_i = x_-i' S^(-i) x_-i`` for bids (M, N), agents ``idx`` (c,); shape (M, c).

        ``S^(-i)`` is embedded in an N x N matrix with a zero row and column ``i``, so all the
        forms of a chunk take one matrix product ``(M, N) @ (N, c N)``.
        """
        n, c = self._agents.n, len(idx)
        others = self._others[idx]
        embedded = np.zeros((c, n, n))
        embedded[np.arange(c)[:, None, None], others[:, :, None], others[:, None, :]] = values
        y = bids @ np.swapaxes(embedded, 0, 1).reshape(n, c * n)
        return (y.reshape(-1, c, n) * bids[:, None, :]).sum(axis=-1)

    def _pivots(self, bids: np.ndarray) -> np.ndarray:
        """``h_i(s)`` for time-major bids of shape (T, M, N); same shape."""
        out = np.zeros_like(bids)
        if self._pivot == "none" or self._agents.n == 1:
            return out
        if self._route(bids.shape[1]) == "dual":
            with single_threaded_blas():
                for t, alpha, beta, before, after in self._dual_layers():
                    out[t] = self._dual_forms(bids[t], alpha, beta, before, after)
            return out
        n, horizon = self._agents.n, self._horizon
        diagonals = None if self._pivot_diagonals is not None else np.zeros((horizon, n, n))
        for idx, t, values in self._pivot_blocks():
            out[t][:, idx] = self._pivot_forms(bids[t], idx, values)
            if diagonals is not None:
                self._store_diagonals(diagonals, idx, t, values)
        if diagonals is not None:
            self._pivot_diagonals = frozen(diagonals)
        return out

    def _pivots_at(self, bids: np.ndarray, s: int) -> np.ndarray:
        """``h_i(s)`` for one bid vector (N,) at layer ``s`` (step mode)."""
        out = np.zeros_like(bids)
        if self._pivot == "none" or self._agents.n == 1:
            return out
        if self._route(1) == "dual":
            with single_threaded_blas():
                alpha, beta, before, after = self._dual_layer(s)
                return self._dual_forms(bids[None], alpha, beta, before, after)[0]
        for idx, t, values in self._pivot_blocks(stop=s):
            if t == s:
                out[idx] = self._pivot_forms(bids[None], idx, values)[0]
                if self._keeps_table():
                    break
        return out

    # ------------------------------------------------------------------ pivots by duality
    def _route(self, paths: int) -> str:
        """How the pivots of ``paths`` bid vectors per layer are evaluated.

        ``"table"``: the kept table of ``S^(-i)_s``. Otherwise streamed, by whichever of two exact
        methods costs fewer flops: ``"riccati"``, an ``(N-1) x (N-1)`` Riccati sweep per agent
        (about ``T (5 N^4 + N^3 M)``), or ``"dual"``, an ``h x h`` solve per agent and layer
        (:func:`~stochmech.lqg.riccati.dual_sweep`, about ``N (T^4 / 6 + 2 M T^3 / 3)``), the
        latter only when its ``8 N T^2``-byte buffers (four of them) fit in :data:`DUAL_BYTES`.
        """
        if self._keeps_table():
            return "table"
        if self._pivot_method != "auto":
            return self._pivot_method
        n, horizon = float(self._agents.n), float(self._horizon)
        if 4 * 8 * n * horizon**2 > DUAL_BYTES:
            return "riccati"
        dual = n * (horizon**4 / 6 + 2 * paths * horizon**3 / 3)
        riccati = horizon * (5 * n**4 + paths * n**3)
        return "dual" if dual < riccati else "riccati"

    def _dual_layers(
        self, stop: int = 0
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Yield ``(s, alpha, beta, before, after)`` for ``s = T-1, ..., stop``.

        ``alpha, beta`` as in :func:`dual_sweep`; ``before[i] = sum_{j < i} Gamma_j`` and
        ``after[i] = sum_{j > i} Gamma_j``, so the dual Hessian without agent ``i`` is
        ``before[i] + after[i]``: a sum of positive definite terms, never ``C - Gamma_i`` (which
        loses all precision when ``Gamma_i`` dominates ``C``). Memory ``3 * 8 N T^2`` bytes.
        """
        ag, n, horizon = self._agents, self._agents.n, self._horizon
        cause = self._pivot_cause()
        before_buf = np.zeros((n, horizon, horizon))
        after_buf = np.zeros((n, horizon, horizon))
        sweep = dual_sweep(ag.a, ag.b, ag.q, ag.r, horizon)
        for t, alpha, beta, gamma in sweep:
            before, after = before_buf[:, t:, t:], after_buf[:, t:, t:]
            with np.errstate(all="ignore"):  # running sums (np.cumsum is 25x slower here)
                for i in range(1, n):
                    np.add(before[i - 1], gamma[i - 1], out=before[i])
                    np.add(after[n - i], gamma[n - i], out=after[n - i - 1])
            check_finite_result("the pivot dual coefficients", (alpha, beta, before[-1]), cause)
            check_finite_result("the pivot dual coefficients", after[0], cause)
            yield t, alpha, beta, before, after
            if t == stop:
                return

    def _dual_layer(self, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(alpha, beta, before, after)`` of layer ``s`` alone (step mode), from a cache.

        The first call runs :func:`dual_sweep` once and keeps ``alpha`` and ``beta`` of every
        layer and the factors ``Gamma_j(s) = sum_{k >= s} w_j(k) g_j(k) g_j(k)'`` (rows
        ``sqrt(w_j(k)) g_j(k)``, ``w = -1/d > 0``, of :func:`dual_sweep`'s recursion), ``3 * 8 N
        T^2`` bytes; a layer then costs one batched product (``2 N h^3`` flops) instead of a sweep.
        """
        ag, n, horizon = self._agents, self._agents.n, self._horizon
        if self._dual_cache is None:
            alphas = np.zeros((horizon, n))
            betas = np.zeros((horizon, n, horizon))
            factors = np.zeros((n, horizon, horizon))
            prev_alpha, prev_beta = np.zeros(n), np.zeros((n, 0))
            with np.errstate(all="ignore"):
                for t, alpha, beta, _ in dual_sweep(ag.a, ag.b, ag.q, ag.r, horizon):
                    weight = -1.0 / (ag.r + prev_alpha * ag.b * ag.b)
                    factors[:, t, t] = np.sqrt(weight)
                    factors[:, t, t + 1 :] = (np.sqrt(weight) * ag.b)[:, None] * prev_beta
                    alphas[t], betas[t, :, t:] = alpha, beta
                    prev_alpha, prev_beta = alphas[t], betas[t, :, t:]
            cause = self._pivot_cause()
            check_finite_result("the pivot dual coefficients", (alphas, betas, factors), cause)
            self._dual_cache = (alphas, betas, factors)
        alphas, betas, factors = self._dual_cache
        rows = factors[:, s:, s:]
        with np.errstate(all="ignore"):
            gamma = np.swapaxes(rows, 1, 2) @ rows
            before, after = np.zeros_like(gamma), np.zeros_like(gamma)
            for i in range(1, n):
                np.add(before[i - 1], gamma[i - 1], out=before[i])
                np.add(after[n - i], gamma[n - i], out=after[n - i - 1])
        check_finite_result(
            "the pivot dual coefficients", (before[-1], after[0]), self._pivot_cause()
        )
        return alphas[s], betas[s, :, s:], before, after

    def _dual_whitened(self, before: np.ndarray, after: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """``L^-1 rhs`` with ``L L' = before + after`` (Cholesky): ``||L^-1 c||^2 = c' M^-1 c``.

        One LAPACK factorization per agent and layer (``h^3 / 3`` flops); ``before + after`` is
        the dual Hessian of the problem without the agent, positive definite in exact arithmetic.
        """
        chol, info = lapack.dpotrf(before + after, lower=1, clean=0, overwrite_a=1)
        if info == 0:
            out, info = lapack.dtrtrs(chol, rhs, lower=1)
        if info != 0:
            raise ValueError(
                f"the Riccati recursion is singular: {self._pivot_cause()} are degenerate"
            )
        return np.asarray(out)

    def _dual_forms(
        self,
        bids: np.ndarray,
        alpha: np.ndarray,
        beta: np.ndarray,
        before: np.ndarray,
        after: np.ndarray,
    ) -> np.ndarray:
        """``h_i = sum_{j != i} alpha_j x_j^2 - c_i' M_i^-1 c_i`` for bids (M, N).

        ``c_i = sum_{j != i} x_j beta_j`` and ``M_i = sum_{j != i} Gamma_j``: the welfare of the
        problem without ``i`` by duality. Both sums skip ``i`` (no cancellation); the two terms
        of ``h_i`` have the same sign (``alpha <= 0``, ``M_i`` positive definite).
        """
        n = self._agents.n
        others = 1.0 - np.eye(n)
        with np.errstate(all="ignore"):
            base = (bids**2 * alpha) @ others  # (M, N): sum over j != i
            out = np.empty((bids.shape[0], n))
            for i in range(n):
                rhs = beta.T @ (bids.T * others[i][:, None])  # (h, M)
                z = self._dual_whitened(before[i], after[i], np.asfortranarray(rhs))
                out[:, i] = base[:, i] - (z * z).sum(axis=0)
        return out

    def _dual_diagonals(
        self, alpha: np.ndarray, beta: np.ndarray, before: np.ndarray, after: np.ndarray
    ) -> np.ndarray:
        """``[i, j] = S^(-i)[j, j] = alpha_j - beta_j' M_i^-1 beta_j`` (0 at ``j = i``)."""
        n = self._agents.n
        out = np.empty((n, n))
        rhs = np.asfortranarray(beta.T)  # (h, N)
        with np.errstate(all="ignore"):
            for i in range(n):
                z = self._dual_whitened(before[i], after[i], rhs)
                out[i] = alpha - (z * z).sum(axis=0)
        out[np.arange(n), np.arange(n)] = 0.0
        return out

    # ------------------------------------------------------------------ step mode
    def reset(self) -> None:
        """Start a new horizon for :meth:`step`."""
        n, horizon = self._agents.n, self._horizon
        self._t = 0
        self._cum_x = np.zeros((horizon, n))
        self._cum_u = np.zeros((horizon, n))

    def step(self, bids: Any) -> LayerStep:
        """Run layer ``s = self.time``: plan from the bids, return controls and payments.

        Parameters
        ----------
        bids : array_like, shape (N,)
            ``X_hat(s, s)``, the agents' bids of ``W(s-1)`` (of ``x(0)`` at ``s = 0``).

        Raises
        ------
        ValueError
            On a wrong shape or non-finite bid, or past the horizon; the state is unchanged.
        """
        s, ag = self._t, self._agents
        if s >= self._horizon:
            raise ValueError(f"the horizon T={self._horizon} is exhausted; call reset()")
        x_hat = as_float_array(f"bids at time {s}", bids, ndim=1)
        if x_hat.shape != (ag.n,):
            raise ValueError(f"bids at time {s} must have shape ({ag.n},), got {x_hat.shape}")
        with np.errstate(all="ignore"):
            return self._step(s, x_hat)

    def _step(self, s: int, x_hat: np.ndarray) -> LayerStep:
        ag = self._agents
        gains, closed = self._lq.gains, self._lq.closed_loop
        length = self._horizon - s
        plan_x = np.empty((length, ag.n))
        plan_u = np.empty((length, ag.n))
        y = x_hat
        for k in range(length):
            plan_x[k] = y
            plan_u[k] = gains[s + k] @ y
            y = closed[s + k] @ y
        cx, cu = self._cum_x[s:], self._cum_u[s:]
        terms = ag.q * (plan_x * (plan_x + 2.0 * cx)).sum(axis=0) + ag.r * (
            plan_u * (plan_u + 2.0 * cu)
        ).sum(axis=0)
        pivots = self._pivots_at(x_hat, s)
        payments = pivots - (terms.sum() - terms)
        cause = f"the bids at time {s} (with the agents' parameters)"
        for what, arr in (("the plan", (plan_x, plan_u)), ("the payments", payments)):
            check_finite_result(what, arr, cause)
        check_finite_result(
            "the believed states", (self._cum_x[s:] + plan_x, self._cum_u[s:] + plan_u), cause
        )
        self._cum_x[s:] += plan_x
        self._cum_u[s:] += plan_u
        self._t = s + 1
        return LayerStep(
            time=s,
            bids=frozen(x_hat),
            plan_states=frozen(plan_x),
            plan_controls=frozen(plan_u),
            believed_state=frozen(self._cum_x[s].copy()),
            controls=frozen(self._cum_u[s].copy()),
            layer_terms=frozen(terms),
            pivots=frozen(np.asarray(pivots, dtype=np.float64)),
            payments=frozen(payments),
        )

    # ------------------------------------------------------------------ whole runs
    def run(self, layer_inputs: Any, bids: Bids = None) -> LayeredRun:
        """Run the whole horizon on the true layer inputs.

        Parameters
        ----------
        layer_inputs : array_like, shape (T, N)
            Row 0 is ``x(0)``, row ``s >= 1`` is ``w(s-1)``.
        bids : array_like of shape (T, N), or callable, or None
            The bids ``X_hat(s, s)`` (default: the truth, ``layer_inputs``), or a strategy
            profile ``bids(s, history) -> (N,)`` called at each ``s`` with an unbatched
            :class:`History` (for history-dependent behaviour).

        Returns
        -------
        LayeredRun
        """
        xi = self._check_inputs(layer_inputs, batched=False)
        if bids is None or callable(bids):
            strategy = None if bids is None else _unbatched(bids)
            batch = self._simulate(xi[None], None, strategy)
        else:
            arr = self._check_bids(bids, xi.shape)
            batch = self._simulate(xi[None], arr[None], None)
        return LayeredRun(**{k: frozen(v[0]) for k, v in _fields(batch).items()})

    def run_batch(self, layer_inputs: Any, bids: Bids = None) -> LayeredBatch:
        """Vectorized :meth:`run` over a batch of input paths, shape (M, T, N).

        ``bids`` is an (M, T, N) array, ``None`` (truth) or a strategy called with a batched
        :class:`History` (arrays with a leading axis M) that returns an (M, N) array.
        """
        xi = self._check_inputs(layer_inputs, batched=True)
        if bids is None:
            return self._simulate(xi, None, None)
        if callable(bids):
            return self._simulate(xi, None, bids)
        return self._simulate(xi, self._check_bids(bids, xi.shape), None)

    def utilities_batch(self, layer_inputs: Any, bids: Bids = None) -> BatchUtilities:
        """Per-path totals of a batch of runs, without per-layer arrays (for Monte Carlo).

        Same arguments as :meth:`run_batch`. Uses the exact collapse of the payments,
        ``sum_s p_i(s) = sum_s h_i(s) - sum_{j != i} sum_t F_j(x_hat_j(t), u_j(t))`` (the cross
        terms of the layers cancel), so a path costs ``O(T N^2)`` plus the pivots instead of
        ``O(T^2 N^2)``. The utilities equal :meth:`run_batch`'s up to rounding.

        Examples
        --------
        >>> import numpy as np
        >>> agents = LQGAgents([0.9, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, -0.5], [0.2, 0.1],
        ...                    [1.0, 1.0])
        >>> mech = LayeredVCG(agents, horizon=6)
        >>> xi = agents.sample_layer_inputs(6, np.random.default_rng(0), size=3)
        >>> fast, full = mech.utilities_batch(xi), mech.run_batch(xi)
        >>> bool(np.allclose(fast.utilities, full.utilities, rtol=1e-12, atol=1e-12))
        True
        """
        xi = self._check_inputs(layer_inputs, batched=True)
        if bids is None:
            return self._simulate(xi, None, None, full=False)
        if callable(bids):
            return self._simulate(xi, None, bids, full=False)
        return self._simulate(xi, self._check_bids(bids, xi.shape), None, full=False)

    # ------------------------------------------------------------------ internals
    def _check_inputs(self, layer_inputs: Any, *, batched: bool) -> np.ndarray:
        shape = (self._horizon, self._agents.n)
        xi = as_float_array("layer_inputs", layer_inputs, ndim=3 if batched else 2)
        if xi.shape[-2:] != shape or (batched and xi.shape[0] < 1):
            want = f"(M, {shape[0]}, {shape[1]})" if batched else str(shape)
            raise ValueError(f"layer_inputs must have shape {want}, got {xi.shape}")
        return xi

    @staticmethod
    def _check_bids(bids: Any, shape: tuple[int, ...]) -> np.ndarray:
        arr = as_float_array("bids", bids, ndim=len(shape))
        if arr.shape != shape:
            raise ValueError(f"bids must have shape {shape}, got {arr.shape}")
        return arr

    @overload
    def _simulate(
        self,
        xi: np.ndarray,
        bids: np.ndarray | None,
        strategy: Strategy | None,
        *,
        full: Literal[True] = ...,
    ) -> LayeredBatch: ...

    @overload
    def _simulate(
        self,
        xi: np.ndarray,
        bids: np.ndarray | None,
        strategy: Strategy | None,
        *,
        full: Literal[False],
    ) -> BatchUtilities: ...

    def _simulate(
        self,
        xi: np.ndarray,
        bids: np.ndarray | None,
        strategy: Strategy | None,
        *,
        full: bool = True,
    ) -> LayeredBatch | BatchUtilities:
        with np.errstate(over="ignore", invalid="ignore"), single_threaded_blas():
            out = self._simulate_unchecked(xi, bids, strategy, full=full)
        cause = "the layer inputs or bids (with the agents' parameters)"
        for name in type(out).__dataclass_fields__:
            check_finite_result(name.replace("_", " "), getattr(out, name), cause)
        return out

    def _simulate_unchecked(
        self,
        xi: np.ndarray,
        bids: np.ndarray | None,
        strategy: Strategy | None,
        *,
        full: bool,
    ) -> LayeredBatch | BatchUtilities:
        ag, horizon = self._agents, self._horizon
        a, b, q, r = ag.a, ag.b, ag.q, ag.r
        gains, closed = self._lq.gains, self._lq.closed_loop
        m, n = xi.shape[0], ag.n
        # time-major work arrays (T, M, N): every step reads and writes contiguous blocks
        xi_tm = np.ascontiguousarray(np.swapaxes(xi, 0, 1))
        states = np.zeros((horizon, m, n))
        believed = np.zeros((horizon, m, n))
        controls = np.zeros((horizon, m, n))
        if bids is None:
            used = xi_tm.copy() if strategy is None else np.zeros((horizon, m, n))
        else:
            used = np.ascontiguousarray(np.swapaxes(bids, 0, 1))
        predicted = np.zeros((m, n))
        for t in range(horizon):
            if t == 0:
                states[0] = xi_tm[0]
            else:
                states[t] = a * states[t - 1] + b * controls[t - 1] + xi_tm[t]
                predicted = a * believed[t - 1] + b * controls[t - 1]
            if strategy is not None:
                hist = History(
                    time=t,
                    layer_inputs=_read_only(np.swapaxes(xi_tm[: t + 1], 0, 1)),
                    states=_read_only(np.swapaxes(states[: t + 1], 0, 1)),
                    bids=_read_only(np.swapaxes(used[:t], 0, 1)),
                    believed_states=_read_only(np.swapaxes(believed[:t], 0, 1)),
                    controls=_read_only(np.swapaxes(controls[:t], 0, 1)),
                    predicted_state=_read_only(predicted),
                )
                name = f"bids returned by the strategy at time {t}"
                out = as_float_array(name, strategy(t, hist))
                if out.shape != (m, n):
                    raise ValueError(
                        f"bids returned by the strategy at time {t} must have shape {(m, n)}, "
                        f"got {out.shape}"
                    )
                used[t] = out
            believed[t] = predicted + used[t]
            controls[t] = believed[t] @ gains[t].T

        valuations = (q * states**2 + r * controls**2).sum(axis=0)
        if not full:
            reported = (q * believed**2 + r * controls**2).sum(axis=0)
            pivot_totals = self._pivots(used).sum(axis=0)
            totals = BatchUtilities(
                utilities=valuations,
                valuations=valuations,
                reported=reported,
                pivot_totals=pivot_totals,
            )
            return dataclasses.replace(totals, utilities=valuations - totals.payment_totals)

        pivots = _batch_major(self._pivots(used))
        states, believed, controls, used = (
            _batch_major(v) for v in (states, believed, controls, used)
        )
        # Layer terms l_j(s), all layers at once: column s of `layers` holds X_hat(s, t).
        terms = np.zeros((m, horizon, n))
        layers = np.zeros((m, horizon, n))
        for t in range(horizon):
            layers[:, t] = used[:, t]
            y = layers[:, : t + 1]
            v = y @ gains[t].T
            cx = np.cumsum(y, axis=1) - y
            cu = np.cumsum(v, axis=1) - v
            terms[:, : t + 1] += q * (y * (y + 2.0 * cx)) + r * (v * (v + 2.0 * cu))
            layers[:, : t + 1] = y @ closed[t].T
        payments = pivots - (terms.sum(axis=-1, keepdims=True) - terms)
        utilities = valuations - payments.sum(axis=1)
        return LayeredBatch(
            layer_inputs=xi,
            bids=used,
            states=states,
            believed_states=believed,
            controls=controls,
            layer_terms=terms,
            pivots=pivots,
            payments=payments,
            valuations=valuations,
            utilities=utilities,
        )


_BLAS_CONTROLLER: Any = None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one BLAS thread.

    The LQG engine does many small matrix operations (batched solves of ``h x h`` or
    ``N x N`` matrices, products with a few hundred rows), where BLAS threads only add overhead;
    on a busy machine they oversubscribe the cores: a batch of 100 solves of size 200 took 8 s
    instead of 0.1 s, and a 2,000-path Monte Carlo gain at N = 20, T = 100 between 2.4 and 10.6 s
    instead of 1.0 s (measured). The previous limits are restored on exit.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        _BLAS_CONTROLLER = ThreadpoolController()
    with _BLAS_CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def _guarded_sweep(
    data: list[np.ndarray], cause: str
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """:func:`riccati_sweep` that refuses a singular or non-finite step with a ValueError."""
    sweep = riccati_sweep(*data)
    while True:
        try:
            with np.errstate(all="ignore"):
                item = next(sweep)
        except StopIteration:
            return
        except np.linalg.LinAlgError as exc:
            raise ValueError(f"the Riccati recursion is singular: {cause} are degenerate") from exc
        check_finite_result("the pivot Riccati matrices", item[1], cause)
        yield item


def _fields(batch: LayeredBatch) -> dict[str, np.ndarray]:
    return {name: getattr(batch, name) for name in LayeredBatch.__dataclass_fields__}


def _unbatched(strategy: Strategy) -> Strategy:
    """Adapt an unbatched strategy (returns (N,)) to the batched engine with M = 1."""

    def wrapped(t: int, hist: History) -> np.ndarray:
        single = History(
            time=hist.time,
            layer_inputs=hist.layer_inputs[0],
            states=hist.states[0],
            bids=hist.bids[0],
            believed_states=hist.believed_states[0],
            controls=hist.controls[0],
            predicted_state=hist.predicted_state[0],
        )
        name = f"bids returned by the strategy at time {t}"
        out = as_float_array(name, strategy(t, single))
        n = hist.layer_inputs.shape[-1]
        if out.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {out.shape}")
        return out[None]

    return wrapped


def _batch_major(arr: np.ndarray) -> np.ndarray:
    """(T, M, N) work array -> contiguous (M, T, N)."""
    return np.ascontiguousarray(np.swapaxes(arr, 0, 1))


def _read_only(arr: np.ndarray) -> np.ndarray:
    view = arr.view()
    view.flags.writeable = False
    return view
