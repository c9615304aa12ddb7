"""LQG scenario files: a user's agents, horizon and deviations, for ``stochmech lqg run|verify``.

The format is described key by key in ``docs/lqg-scenarios.md``; in short::

    name = "two-generators"       # default: the file name without .toml
    description = ""
    horizon = 24                  # T >= 1
    seed = 0                      # seed of the noise of ``run``
    pivot = "clarke"              # or "none" (h_i = 0)

    [[agents]]                    # one table per agent, in order (at least one)
    name = "gas"                  # default "agent <index>"
    a = 0.9                       # x(t+1) = a x(t) + b u(t) + w(t)
    b = 1.0
    q = -1.0                      # utility q x^2 + r u^2 with q <= 0 ...
    r = -0.5                      # ... and r < 0
    sigma = 0.01                  # VARIANCE of the noise w(t), >= 0
    zeta = 0.1                    # VARIANCE of x(0) around x0, >= 0 (default 0)
    x0 = 0.0                      # mean of x(0) (default 0)

    [verify]                      # optional, for ``stochmech lqg verify``
    samples = 2000                # Monte Carlo paths (common random numbers)
    seed = 0
    agents = [0]                  # agents whose standard deviations are checked
    standard = true               # check the standard deviation families for ``agents``

    [[verify.deviations]]         # optional extra deviations
    agent = "gas"                 # index or name
    kind = "scaled"               # scaled, biased, zeroed, feedback, correcting, exaggerating
    factor = 1.5                  # the kind's parameter(s), see docs/lqg-scenarios.md
    layers = [0, 1]               # optional: lie at these layers only

Every mistake is a ``ValueError`` naming the key and the value, e.g.
``agents[1].r: must be < 0, got 0.5``.

Examples
--------
>>> s = parse_lqg_scenario('''
... horizon = 6
... [[agents]]
... a = 0.9
... b = 1.0
... q = -1.0
... r = -0.5
... sigma = 0.1
... [[agents]]
... name = "load"
... a = 1.0
... b = -1.0
... q = -2.0
... r = -1.0
... sigma = 0.2
... x0 = 0.5
... ''', name="tiny")
>>> s.names, s.agents.n, s.initial_mean.tolist()
(('agent 0', 'load'), 2, [0.0, 0.5])
>>> result = run_scenario(s)
>>> result.individual_rationality.holds
True
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stochmech._json import strict_json
from stochmech.lqg.agents import LQGAgents
from stochmech.lqg.layered import PIVOTS, LayeredRun, LayeredVCG
from stochmech.lqg.rationality import (
    BudgetReport,
    IndividualRationality,
    expected_budget,
    individual_rationality,
    realized_budget,
    realized_outside_option,
)
from stochmech.lqg.verification import (
    BiasedDeviation,
    CorrectingDeviation,
    Deviation,
    DeviationEstimate,
    ExaggeratingDeviation,
    FeedbackDeviation,
    ScaledDeviation,
    ZeroedDeviation,
    centralized_closed_loop,
    deviation_gains,
    standard_deviations,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "LQGScenario",
    "ScenarioRun",
    "ScenarioVerification",
    "load_lqg_scenario",
    "parse_lqg_scenario",
    "run_scenario",
    "verify_scenario",
]

#: Deviation kinds and their parameters (name -> (class, {key: default})).
DEVIATION_KINDS: dict[str, tuple[type[Deviation], dict[str, float]]] = {
    "scaled": (ScaledDeviation, {"factor": 1.0}),
    "biased": (BiasedDeviation, {"bias": 0.0}),
    "zeroed": (ZeroedDeviation, {}),
    "feedback": (FeedbackDeviation, {"control_gain": 0.0, "state_gain": 0.0}),
    "correcting": (CorrectingDeviation, {"bias": 0.0}),
    "exaggerating": (ExaggeratingDeviation, {"amount": 0.0}),
}


# ---------------------------------------------------------------------------------- validation
def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _table(x: Any, where: str) -> dict[str, Any]:
    if not isinstance(x, Mapping):
        raise _fail(where, f"expected a table, got {x!r}")
    return dict(x)


def _keys(t: dict[str, Any], where: str, allowed: set[str], required: set[str]) -> None:
    for key in t:
        if key not in allowed:
            raise _fail(
                f"{where}.{key}" if where else key, f"unknown key (allowed: {sorted(allowed)})"
            )
    for key in sorted(required):
        if key not in t:
            raise _fail(f"{where}.{key}" if where else key, "missing")


def _number(x: Any, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise _fail(where, f"expected a number, got {x!r}")
    v = float(x)
    if not math.isfinite(v):
        raise _fail(where, f"must be finite, got {x!r}")
    return v


def _int(x: Any, where: str, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise _fail(where, f"expected an integer >= {minimum}, got {x!r}")
    if x < minimum:
        raise _fail(where, f"must be >= {minimum}, got {x!r}")
    return int(x)


def _str(x: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(x, str):
        raise _fail(where, f"expected a string, got {x!r}")
    if choices is not None and x not in choices:
        raise _fail(where, f"must be one of {list(choices)}, got {x!r}")
    return x


def _list(x: Any, where: str) -> list[Any]:
    if not isinstance(x, list):
        raise _fail(where, f"expected an array, got {x!r}")
    return x


# ---------------------------------------------------------------------------------- scenario
@dataclass(frozen=True)
class LQGScenario:
    """A parsed LQG scenario (see the module docstring and ``docs/lqg-scenarios.md``).

    Attributes
    ----------
    name, description : str
    agents : LQGAgents
    names : tuple of str
    initial_mean : ndarray, shape (N,)
        ``E x(0)`` (``x0``); ``x(0)`` has variance ``zeta`` around it.
    horizon, seed : int
    pivot : str
    samples, verify_seed : int
        Monte Carlo paths and seed of ``verify``.
    deviations : tuple of Deviation
        Every deviation ``verify`` checks (standard families first, then the listed ones).
    """

    name: str
    description: str
    agents: LQGAgents
    names: tuple[str, ...]
    initial_mean: np.ndarray
    horizon: int
    seed: int
    pivot: str
    samples: int
    verify_seed: int
    deviations: tuple[Deviation, ...]

    def mechanism(self, horizon: int | None = None, pivot: str | None = None) -> LayeredVCG:
        return LayeredVCG(
            self.agents, self.horizon if horizon is None else horizon, pivot or self.pivot
        )

    def sample_inputs(self, seed: int, horizon: int | None = None) -> np.ndarray:
        """Layer inputs of one run: ``x(0) = x0 + sqrt(zeta) N(0, 1)``, then the noises."""
        h = self.horizon if horizon is None else horizon
        xi = self.agents.sample_layer_inputs(h, np.random.default_rng(seed))
        xi[0] += self.initial_mean
        return xi


def load_lqg_scenario(path: str | os.PathLike[str]) -> LQGScenario:
    """Read an LQG scenario file; errors name the file and the key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read scenario file {str(p)!r}: {err.strerror}") from err
    try:
        return parse_lqg_scenario(text, name=p.stem)
    except ValueError as err:
        raise ValueError(f"{p}: {err}") from err


def parse_lqg_scenario(text: str, *, name: str = "scenario") -> LQGScenario:
    """Parse the TOML text of an LQG scenario (``name`` is the default scenario name)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"invalid TOML: {err}") from err
    top = {"name", "description", "horizon", "seed", "pivot", "agents", "verify"}
    _keys(data, "", top, {"horizon", "agents"})
    horizon = _int(data["horizon"], "horizon", 1)
    seed = _int(data.get("seed", 0), "seed", 0)
    pivot = _str(data.get("pivot", "clarke"), "pivot", PIVOTS)
    agents_list = _list(data["agents"], "agents")
    if not agents_list:
        raise _fail("agents", "at least one agent is needed, got an empty array")
    cols: dict[str, list[float]] = {k: [] for k in ("a", "b", "q", "r", "sigma", "zeta", "x0")}
    names = []
    allowed = {"name", *cols}
    for i, raw in enumerate(agents_list):
        where = f"agents[{i}]"
        t = _table(raw, where)
        _keys(t, where, allowed, {"a", "b", "q", "r", "sigma"})
        names.append(_str(t.get("name", f"agent {i}"), f"{where}.name"))
        for key in cols:
            default = 0.0 if key in ("zeta", "x0") else None
            v = _number(t.get(key, default), f"{where}.{key}")
            if key == "q" and v > 0:
                raise _fail(f"{where}.q", f"must be <= 0 (a cost), got {v!r}")
            if key == "r" and v >= 0:
                raise _fail(f"{where}.r", f"must be < 0 (a cost), got {v!r}")
            if key in ("sigma", "zeta") and v < 0:
                raise _fail(f"{where}.{key}", f"must be >= 0 (a variance), got {v!r}")
            cols[key].append(v)
    if len(set(names)) != len(names):
        raise _fail("agents", f"agent names must be distinct, got {names}")
    agents = LQGAgents(*(cols[k] for k in ("a", "b", "q", "r", "sigma", "zeta")))
    samples, verify_seed, deviations = _verify_options(data.get("verify", {}), names, horizon, seed)
    return LQGScenario(
        name=_str(data.get("name", name), "name"),
        description=_str(data.get("description", ""), "description"),
        agents=agents,
        names=tuple(names),
        initial_mean=np.array(cols["x0"]),
        horizon=horizon,
        seed=seed,
        pivot=pivot,
        samples=samples,
        verify_seed=verify_seed,
        deviations=tuple(deviations),
    )


def _agent_index(x: Any, where: str, names: list[str]) -> int:
    if isinstance(x, str):
        if x not in names:
            raise _fail(where, f"no agent named {x!r} (agents: {names})")
        return names.index(x)
    i = _int(x, where, 0)
    if i >= len(names):
        raise _fail(where, f"must be < {len(names)} (the number of agents), got {i}")
    return i


def _verify_options(
    raw: Any, names: list[str], horizon: int, seed: int
) -> tuple[int, int, list[Deviation]]:
    v = _table(raw, "verify")
    _keys(v, "verify", {"samples", "seed", "agents", "standard", "deviations"}, set())
    samples = _int(v.get("samples", 2000), "verify.samples", 2)
    verify_seed = _int(v.get("seed", seed), "verify.seed", 0)
    checked = [
        _agent_index(x, f"verify.agents[{k}]", names)
        for k, x in enumerate(_list(v.get("agents", [0]), "verify.agents"))
    ]
    standard = v.get("standard", True)
    if not isinstance(standard, bool):
        raise _fail("verify.standard", f"expected true or false, got {standard!r}")
    deviations: list[Deviation] = []
    if standard:
        for i in checked:
            deviations += standard_deviations(i, horizon)
    for k, raw_dev in enumerate(_list(v.get("deviations", []), "verify.deviations")):
        deviations.append(_deviation(raw_dev, f"verify.deviations[{k}]", names, horizon))
    if not deviations:
        raise _fail("verify", "no deviation to check (standard = false and no deviations)")
    return samples, verify_seed, deviations


def _deviation(raw: Any, where: str, names: list[str], horizon: int) -> Deviation:
    t = _table(raw, where)
    kind = _str(t.get("kind"), f"{where}.kind", tuple(DEVIATION_KINDS))
    cls, params = DEVIATION_KINDS[kind]
    _keys(t, where, {"agent", "kind", "layers", *params}, {"agent", "kind"})
    agent = _agent_index(t["agent"], f"{where}.agent", names)
    layers = None
    if "layers" in t:
        layers = tuple(
            _int(x, f"{where}.layers[{j}]", 0) for j, x in enumerate(_list(t["layers"], where))
        )
        for j, s in enumerate(layers):
            if s >= horizon:
                raise _fail(f"{where}.layers[{j}]", f"must be < horizon = {horizon}, got {s}")
    values = {key: _number(t.get(key, d), f"{where}.{key}") for key, d in params.items()}
    return cls(agent, layers, **values)


# ---------------------------------------------------------------------------------- run
def _ir_json(ir: IndividualRationality, names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "definition": ir.definition,
        "holds": ir.holds,
        "agents": [
            {"name": nm, "expected_utility": float(u), "outside_option": float(o),
             "margin": float(u - o)}
            for nm, u, o in zip(names, ir.expected_utilities, ir.outside_options, strict=True)
        ],
    }  # fmt: skip


def _budget_json(budget: BudgetReport) -> dict[str, Any]:
    return {
        "per_layer": budget.per_layer.tolist(),
        "total": budget.total,
        "deficit_layers": budget.deficit_layers,
    }


def ir_budget_lines(
    ir: IndividualRationality, expected: BudgetReport, names: tuple[str, ...]
) -> list[str]:
    """Text lines of the individual-rationality and budget report."""
    lines = [
        f"individual rationality ({ir.definition}): "
        + ("holds for every agent" if ir.holds else "FAILS for some agent"),
        f"{'agent':<14}{'E utility':>13}{'E outside':>13}{'margin':>13}",
    ]
    for nm, u, o in zip(names, ir.expected_utilities, ir.outside_options, strict=True):
        lines.append(f"{nm:<14}{u:>13.4f}{o:>13.4f}{u - o:>+13.4f}")
    per = expected.per_layer
    lines.append(
        f"expected budget sum_i p_i(s) (ISO collects > 0): total {expected.total:.4f}; per layer "
        f"min {per.min():.4f}, max {per.max():.4f}; deficit in {expected.deficit_layers} of "
        f"{len(per)} layers"
    )
    return lines


@dataclass(frozen=True)
class ScenarioRun:
    """One truthful run of a scenario with its expected IR and budget.

    Attributes
    ----------
    scenario : LQGScenario
    horizon, seed : int
    pivot : str
    run : LayeredRun
    realized_outside : ndarray, shape (N,)
        Each agent's open-loop valuation on the same noise (its realized outside option).
    individual_rationality : IndividualRationality
    expected_budget, realized_budget : BudgetReport
    expected_welfare, centralized_control_gap : float
    """

    scenario: LQGScenario
    horizon: int
    seed: int
    pivot: str
    run: LayeredRun
    realized_outside: np.ndarray
    individual_rationality: IndividualRationality
    expected_budget: BudgetReport
    realized_budget: BudgetReport
    expected_welfare: float
    centralized_control_gap: float

    def to_json(self) -> dict[str, Any]:
        run, sc = self.run, self.scenario
        return {
            "scenario": sc.name,
            "horizon": self.horizon,
            "seed": self.seed,
            "pivot": self.pivot,
            "agents": [
                {
                    "name": nm,
                    **{k: float(getattr(sc.agents, k)[i]) for k in ("a", "b", "q", "r")},
                    "sigma": float(sc.agents.sigma[i]),
                    "zeta": float(sc.agents.zeta[i]),
                    "x0": float(sc.initial_mean[i]),
                }
                for i, nm in enumerate(sc.names)
            ],
            "states": run.states.tolist(),
            "controls": run.controls.tolist(),
            "payments": run.payments.tolist(),
            "valuations": run.valuations.tolist(),
            "total_payments": run.payments.sum(axis=0).tolist(),
            "utilities": run.utilities.tolist(),
            "realized_outside_options": self.realized_outside.tolist(),
            "welfare": run.welfare,
            "expected_welfare": self.expected_welfare,
            "revenue": run.revenue,
            "balance_residual": float(np.abs(run.controls.sum(axis=1)).max()),
            "centralized_control_gap": self.centralized_control_gap,
            "individual_rationality": _ir_json(self.individual_rationality, sc.names),
            "budget": {
                "expected": _budget_json(self.expected_budget),
                "realized": _budget_json(self.realized_budget),
            },
        }

    def text(self) -> str:
        run, sc = self.run, self.scenario
        paid = run.payments.sum(axis=0)
        lines = [
            f"Layered VCG, scenario {sc.name!r}: N = {sc.agents.n}, T = {self.horizon}, "
            f"seed = {self.seed}, pivot = {self.pivot}",
            f"{'agent':<14}{'valuation':>11}{'paid':>11}{'utility':>11}{'stay out':>11}",
        ]
        for i, nm in enumerate(sc.names):
            lines.append(
                f"{nm:<14}{run.valuations[i]:>11.4f}{paid[i]:>11.4f}{run.utilities[i]:>11.4f}"
                f"{self.realized_outside[i]:>11.4f}"
            )
        lines += [
            "(stay out: the agent's open-loop valuation on the same noise, no payments)",
            f"realized social welfare  {run.welfare:.4f}",
            f"expected social welfare  {self.expected_welfare:.4f} (Riccati value)",
            f"ISO revenue              {run.revenue:.4f}  (realized budget, sum of payments; "
            f"deficit in {self.realized_budget.deficit_layers} of {self.horizon} layers)",
            f"max |sum_i u_i(t)|       {float(np.abs(run.controls.sum(axis=1)).max()):.2e}",
            f"max |U - K X| (central)  {self.centralized_control_gap:.2e}",
        ]
        lines += ir_budget_lines(self.individual_rationality, self.expected_budget, sc.names)
        return "\n".join(lines)


def run_scenario(
    scenario: LQGScenario,
    *,
    horizon: int | None = None,
    seed: int | None = None,
    pivot: str | None = None,
) -> ScenarioRun:
    """Run the scenario once with truthful bids; report IR and budget (expected and realized).

    ``horizon``, ``seed`` and ``pivot`` override the file's values when given.
    """
    mech = scenario.mechanism(horizon, pivot)
    seed = scenario.seed if seed is None else seed
    xi = scenario.sample_inputs(seed, mech.horizon)
    run = mech.run(xi)
    _, central = centralized_closed_loop(mech, xi)
    return ScenarioRun(
        scenario=scenario,
        horizon=mech.horizon,
        seed=seed,
        pivot=mech.pivot,
        run=run,
        realized_outside=realized_outside_option(mech, xi),
        individual_rationality=individual_rationality(mech, scenario.initial_mean),
        expected_budget=expected_budget(mech, scenario.initial_mean),
        realized_budget=realized_budget(run),
        expected_welfare=float(
            mech.expected_welfare() + scenario.initial_mean @ mech.solution.value[0]
            @ scenario.initial_mean
        ),
        centralized_control_gap=float(np.abs(run.controls - central).max()),
    )  # fmt: skip


# ---------------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class ScenarioVerification:
    """Theorem 3 table (Monte Carlo, common random numbers) plus IR and budget.

    Attributes
    ----------
    scenario : LQGScenario
    horizon, samples, seed : int
    rows : tuple of (DeviationEstimate, DeviationEstimate)
        For each deviation: its gain under the mechanism and without transfers.
    individual_rationality : IndividualRationality
    expected_budget : BudgetReport
    """

    scenario: LQGScenario
    horizon: int
    samples: int
    seed: int
    rows: tuple[tuple[DeviationEstimate, DeviationEstimate], ...]
    individual_rationality: IndividualRationality
    expected_budget: BudgetReport

    @property
    def passed(self) -> bool:
        """No deviation gains: exact gain <= 0 (affine) or Monte Carlo z-score < 3."""
        scale = 1.0 + float(np.abs(self.individual_rationality.expected_utilities).max())
        for est, _ in self.rows:
            if est.exact_gain is not None and est.exact_gain > 1e-9 * scale:
                return False
            if est.exact_gain is None and est.z_score >= 3.0:
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        sc = self.scenario
        return {
            "scenario": sc.name,
            "horizon": self.horizon,
            "samples": self.samples,
            "seed": self.seed,
            "passed": self.passed,
            "rows": [
                {
                    "agent": sc.names[w.agent],
                    "deviation": w.label,
                    "gain": w.mean_gain,
                    "std_error": w.std_error,
                    "exact_gain": w.exact_gain,
                    "gain_without_transfers": wo.mean_gain,
                    "std_error_without_transfers": wo.std_error,
                    "exact_gain_without_transfers": wo.exact_gain,
                }
                for w, wo in self.rows
            ],
            "individual_rationality": _ir_json(self.individual_rationality, sc.names),
            "budget": {"expected": _budget_json(self.expected_budget)},
        }

    def text(self) -> str:
        sc = self.scenario
        lines = [
            f"Theorem 3 check, scenario {sc.name!r}: N = {sc.agents.n}, T = {self.horizon}, "
            f"{self.samples} paths, seed {self.seed}, common random numbers; "
            "gain = E[u(deviation) - u(truth)] (exact value in brackets when the lie is affine)",
            f"{'agent':<12}{'deviation':<46}{'mechanism':>36}{'no transfers':>24}",
        ]
        for w, wo in self.rows:
            exact = "" if w.exact_gain is None else f"[{w.exact_gain:+.5f}]"
            lines.append(
                f"{sc.names[w.agent]:<12}{w.label:<46}{w.mean_gain:>+12.5f} ± "
                f"{w.std_error:<9.5f}{exact:>12}{wo.mean_gain:>+12.5f} ± {wo.std_error:<9.5f}"
            )
        lines.append(
            "PASS: no deviation gains under the mechanism"
            if self.passed
            else "FAIL: some deviation gains under the mechanism"
        )
        lines += ir_budget_lines(self.individual_rationality, self.expected_budget, sc.names)
        return "\n".join(lines)


def verify_scenario(
    scenario: LQGScenario,
    *,
    horizon: int | None = None,
    samples: int | None = None,
    seed: int | None = None,
    pivot: str | None = None,
) -> ScenarioVerification:
    """Monte Carlo (and exact, for affine lies) gains of the scenario's deviations; IR; budget.

    Deviations whose layers fall beyond an overriding ``horizon`` simply do not lie there.
    """
    mech = scenario.mechanism(horizon, pivot)
    samples = scenario.samples if samples is None else samples
    seed = scenario.verify_seed if seed is None else seed
    rows = []
    for dev in scenario.deviations:
        mean = scenario.initial_mean
        rows.append(
            deviation_gains(mech, dev.agent, dev, n_samples=samples, seed=seed, initial_mean=mean)
        )
    return ScenarioVerification(
        scenario=scenario,
        horizon=mech.horizon,
        samples=samples,
        seed=seed,
        rows=tuple(rows),
        individual_rationality=individual_rationality(mech, scenario.initial_mean),
        expected_budget=expected_budget(mech, scenario.initial_mean),
    )


# ---------------------------------------------------------------------------------- commands
def ir_budget_json(mech: LayeredVCG, names: tuple[str, ...]) -> dict[str, Any]:
    """JSON of the expected IR and budget of a mechanism (truthful bids, zero initial mean)."""
    return {
        "individual_rationality": _ir_json(individual_rationality(mech), names),
        "budget": {"expected": _budget_json(expected_budget(mech))},
    }


def mechanism_ir_budget_lines(mech: LayeredVCG, names: tuple[str, ...]) -> list[str]:
    """:func:`ir_budget_lines` of a mechanism (truthful bids, zero initial mean)."""
    return ir_budget_lines(individual_rationality(mech), expected_budget(mech), names)


def scenario_command(command: str, args: Any) -> int:
    """``stochmech lqg run|verify SCENARIO.toml``: ``args`` carries the command-line flags.

    ``--horizon``, ``--seed``, ``--pivot`` (and ``--samples`` for verify) override the file.
    Input errors are ``ValueError`` (the command line reports them in one line, exit status 2).
    """

    scenario = load_lqg_scenario(args.scenario)  # a ValueError naming the file and the key
    for flag, minimum in (("horizon", 1), ("seed", 0), ("samples", 2)):
        value = getattr(args, flag, None)
        if value is not None and value < minimum:
            raise ValueError(f"--{flag} must be >= {minimum}, got {value}")
    if command == "run":
        result = run_scenario(scenario, horizon=args.horizon, seed=args.seed, pivot=args.pivot)
        plots: list[str] = []
        if not args.no_plots:
            from stochmech.lqg.plots import write_run_plots  # matplotlib only when plotting

            plots = [str(p) for p in write_run_plots(result.run, scenario.names, args.out)]
        if args.json:
            print(strict_json({**result.to_json(), "plots": plots}))
        else:
            print(result.text())
            if plots:
                print("plots: " + ", ".join(plots))
        return 0
    check = verify_scenario(
        scenario, horizon=args.horizon, samples=args.samples, seed=args.seed, pivot=args.pivot
    )
    if args.json:
        print(strict_json(check.to_json()))
    else:
        print(check.text())
    return 0 if check.passed else 1
