"""Figures 2-4 of the first paper (Section IV): exact expectations against the simulated mechanism.

Each figure overlays the exact long-run value from the market's Laplace quadrature
(:class:`~stochmech.markets.demand_response.DemandResponseMarket`) and a long-horizon
simulation of the actual DNBE mechanism (:func:`stochmech.simulate`: truthful bids, the Rust
bid ledger, first- and second-stage payments, penalties):

* Fig. 2 (:func:`figure2`): the expected social cost against the number of providers n;
* Fig. 3 (:func:`figure3`): the average payment RECEIVED by a provider whose cost parameter is
  always 4, against the mean of the other providers' supertypes (variance 2);
* Fig. 4 (:func:`figure4`): the posted-price social cost against the price, with the
  mechanism's cost as a line and the gap at the best price (the posted price is simulated on
  the same days as the mechanism: the same engine and seed with
  :class:`~stochmech.schemes.PostedPrice`).

The paper leaves several choices open; :class:`FigureSetup` fixes them (docs/modelling.md,
"Choices for Figs. 2-4") and every caption states them: the shortage d = 1, the beta-prime
reading of "beta distributed with unit mean and variance 2" (beta prime (2, 3)), its
discretization onto K levels by
equal-probability quantile bins at their conditional means, the reserve's law (the same
discretized law), n, the horizon, the number of replications and the seed. Types must be
finite (the Rust ledger handles at most 256 types and 64 providers), so the laws are
discretized to a moderate number of levels (8 by default).

Each simulated point is the mean of R independent runs of L days (one task per run, so any
``concurrent.futures`` executor can spread them), with a standard error over the runs; run r
uses the same seed at every point of a sweep (common random numbers). Every figure is written
as PNG, as CSV (caption in ``#`` header lines) and as a JSON sidecar with the caption, the
choices and the data (:func:`write_figures`).

Examples
--------
>>> setup = FigureSetup(levels=4, days=2000, replications=2)
>>> fig = figure2(setup, ns=[1, 3], executor=None)
>>> fig.columns["n"].tolist()
[1, 3]
>>> bool(abs(fig.columns["simulated"][1] / fig.columns["exact"][1] - 1) < 0.05)
True
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stochmech._display import html_table, pandas, short_repr
from stochmech._json import jsonable
from stochmech._seeding import SeedLike, describe_seed, normalize_seed, seed_record
from stochmech._window import DEFAULT_GAMMA
from stochmech.markets._sweeps import (
    ExecutorLike,
    checkpointed_simulation,
    mean_and_se,
    replication_seeds,
    run_tasks,
)
from stochmech.markets.demand_response.market import (
    DemandResponseMarket,
    betaprime_parameters,
    betaprime_supertype,
)
from stochmech.schemes import PostedPrice
from stochmech.simulation import Simulation, simulate
from stochmech.supertype import Supertype

__all__ = [
    "DEFAULT_MEANS",
    "DEFAULT_NS",
    "MAX_LEVELS",
    "MAX_SIMULATED_PROVIDERS",
    "Checkpoints",
    "FigureData",
    "FigureFiles",
    "FigureSetup",
    "curve_grid",
    "figure2",
    "figure3",
    "figure4",
    "plot_figure",
    "write_figures",
]

#: numbers of providers of Fig. 2's simulated points
DEFAULT_NS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50)
#: most providers of a simulated point (the exact curve goes to any n)
MAX_SIMULATED_PROVIDERS = 1_000
#: most levels per law
MAX_LEVELS = 65_536
#: points of Fig. 2's exact curve beyond which the grid of n is log-spaced
_CURVE_POINTS = 200
#: means of the other providers' supertypes in Fig. 3
DEFAULT_MEANS = tuple(np.round(np.arange(1, 17) * 0.25, 2).tolist())


# ---------------------------------------------------------------------------------------------
# the choices the paper leaves open
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FigureSetup:
    """The choices the paper leaves open, shared by Figs. 2-4 (all stated in the captions).

    Attributes
    ----------
    levels : int
        Types per beta-prime law, K (equal-probability quantile bins at conditional means).
    mean, var : float
        Mean and variance of the providers' beta-prime cost law (the paper: 1 and 2).
    reserve_mean, reserve_var : float
        The same for the reserve generator's cost parameter delta_s (the paper: "the same
        parameters").
    shortage : float
        The shortage d, the same every day (the paper does not say; docs/modelling.md: d = 1).
    n_providers : int
        Providers in Figs. 3 and 4 (Fig. 3: the fixed provider and n - 1 others).
    fixed_cost : float
        Fig. 3's fixed provider's cost parameter (the paper: 4).
    days : int
        Horizon L of each simulated run.
    replications : int
        Independent runs R per point (>= 2, for the standard errors).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Seed of the runs (run r of every point uses the same derived seed). A ``Generator`` is
        consumed once, when the setup is made, and stored as a ``SeedSequence``.
    """

    levels: int = 8
    mean: float = 1.0
    var: float = 2.0
    reserve_mean: float = 1.0
    reserve_var: float = 2.0
    shortage: float = 1.0
    n_providers: int = 10
    fixed_cost: float = 4.0
    days: int = 50_000
    replications: int = 8
    seed: SeedLike = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", normalize_seed(self.seed))
        for name in ("levels", "n_providers", "days", "replications"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if not 1 <= self.levels <= MAX_LEVELS:
            raise ValueError(f"levels must be in 1..{MAX_LEVELS}, got {self.levels}")
        if not 2 <= self.n_providers <= MAX_SIMULATED_PROVIDERS:
            raise ValueError(
                f"n_providers must be in 2..{MAX_SIMULATED_PROVIDERS}, got {self.n_providers}"
            )
        if self.days < 2:
            raise ValueError(f"days must be >= 2, got {self.days}")
        if self.replications < 2:
            raise ValueError(
                f"replications must be >= 2 (standard errors), got {self.replications}"
            )
        for name in ("mean", "var", "reserve_mean", "reserve_var", "fixed_cost"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value!r}")
        if not math.isfinite(float(self.shortage)):
            raise ValueError(f"shortage must be finite, got {self.shortage!r}")

    def provider_law(self, mean: float | None = None) -> Supertype:
        """The discretized beta-prime law of a provider's cost (mean ``mean`` or the default)."""
        return betaprime_supertype(self.mean if mean is None else mean, self.var, self.levels)

    def reserve_law(self) -> Supertype:
        """The discretized beta-prime law of the reserve's cost parameter delta_s."""
        return betaprime_supertype(self.reserve_mean, self.reserve_var, self.levels)

    def market(self, n: int) -> DemandResponseMarket:
        """``n`` identical providers with :meth:`provider_law`, the reserve and the shortage."""
        return DemandResponseMarket([self.provider_law()] * n, self.reserve_law(), self.shortage)

    def choices(self) -> dict[str, Any]:
        """Every choice, as JSON-ready fields."""
        a, b = betaprime_parameters(self.mean, self.var)
        ra, rb = betaprime_parameters(self.reserve_mean, self.reserve_var)
        return {
            "shortage_d": self.shortage,
            "provider_law": f"beta prime({a:.4g}, {b:.4g}): mean {self.mean:g}, variance "
            f"{self.var:g}",
            "reserve_law": f"beta prime({ra:.4g}, {rb:.4g}): mean {self.reserve_mean:g}, "
            f"variance {self.reserve_var:g}",
            "levels_K": self.levels,
            "discretization": "equal-probability quantile bins, each represented by its "
            "conditional mean (keeps the mean exactly)",
            "provider_variance_kept": self.provider_law().var(),
            "reserve_variance_kept": self.reserve_law().var(),
            "days_per_run": self.days,
            "runs_per_point": self.replications,
            "seed": seed_record(self.seed),
            "mechanism": f"DNBE mechanism, window gamma = {DEFAULT_GAMMA:g}, penalty J_p(l) = "
            "l^1.5, Rust "
            "bid ledger; truthful bids",
            "error_bars": "±2 standard errors over the independent runs",
            "common_random_numbers": "run r uses the same seed at every point of a sweep",
        }

    def caption(self) -> str:
        """The sentence of choices shared by the three captions."""
        a, b = betaprime_parameters(self.mean, self.var)
        kept = self.provider_law().var()
        reserve = (
            "the same discretized law"
            if (self.reserve_mean, self.reserve_var) == (self.mean, self.var)
            else f"the discretized beta prime law with mean {self.reserve_mean:g} and variance "
            f"{self.reserve_var:g}"
        )
        return (
            f"Choices the paper leaves open: shortage d = {self.shortage:g} every day; cost "
            f"parameters delta_i IID beta prime({a:.3g}, {b:.3g}) (mean {self.mean:g}, variance "
            f"{self.var:g}; the paper's 'beta distribution with unit mean and variance 2' read "
            "as beta prime, since no beta law on [0, 1] has mean 1), discretized to "
            f"K = {self.levels} equal-probability quantile bins at their conditional means "
            f"(mean kept exactly, variance {kept:.3g} of {self.var:g}); reserve delta_s: "
            f"{reserve}. Simulation: the DNBE mechanism (truthful bids, Rust bid ledger, "
            f"gamma = {DEFAULT_GAMMA:g}, J_p(l) = l^1.5), mean of "
            f"R = {self.replications} independent runs of L = {self.days:,} days, bars ±2 "
            f"standard errors over runs, seed {describe_seed(self.seed)}, common random numbers "
            "across the "
            "sweep. Exact: the Laplace-transform quadrature of the same discrete laws."
        )


# ---------------------------------------------------------------------------------------------
# figure data and files
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FigureData:
    """The data of one figure.

    Attributes
    ----------
    key : str
        "fig2", "fig3" or "fig4" (file stem).
    title, xlabel, ylabel : str
    caption : str
        Everything a reader needs to reproduce the figure.
    columns : dict of str to ndarray
        The CSV columns (one row per simulated point), in order.
    curve : dict of str to ndarray
        The exact curve on a fine grid (for the drawing; also in the JSON sidecar).
    extras : dict
        Figure-specific scalars (e.g. Fig. 4's best price and gap) and the choices.
    """

    key: str
    title: str
    xlabel: str
    ylabel: str
    caption: str
    columns: dict[str, np.ndarray]
    curve: dict[str, np.ndarray] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def max_abs_z(self) -> float:
        """Largest |simulated - exact| / standard error over the points."""
        se = self.columns["simulated_se"]
        z = (self.columns["simulated"] - self.columns["exact"]) / np.where(se > 0, se, np.nan)
        return float(np.nanmax(np.abs(z)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: title, caption, extras, columns and the exact curve."""
        return {
            "figure": self.key,
            "title": self.title,
            "xlabel": self.xlabel,
            "ylabel": self.ylabel,
            "caption": self.caption,
            **jsonable(self.extras),
            "columns": {k: np.asarray(v).tolist() for k, v in self.columns.items()},
            "exact_curve": {k: np.asarray(v).tolist() for k, v in self.curve.items()},
        }

    def __repr__(self) -> str:
        names = list(self.columns)
        x = np.asarray(self.columns[names[0]])
        return short_repr(
            f"FigureData {self.key}: {self.title}",
            [
                ("points", f"{x.size} ({names[0]} from {x.min():.4g} to {x.max():.4g})"),
                ("columns", ", ".join(names)),
                ("max |z|", f"{self.max_abs_z():.3g} (simulated vs exact, in standard errors)"),
            ],
        )

    def _repr_html_(self) -> str:
        names = list(self.columns)
        rows = np.column_stack([np.asarray(self.columns[k], dtype=float) for k in names])
        return html_table(
            f"FigureData {self.key}: {self.title}",
            [("max |z|", f"{self.max_abs_z():.3g}"), ("caption", self.caption)],
            names,
            rows.tolist(),
            max_rows=60,
        )

    def to_pandas(self, curve: bool = False) -> Any:
        """The columns (one row per simulated point, indexed by the x column), or with
        ``curve=True`` the exact curve on its fine grid, as a pandas DataFrame (optional extra
        ``stochmech[pandas]``). ``df.attrs`` holds the title and caption.

        Examples
        --------
        >>> setup = FigureSetup(levels=3, days=500, replications=2)
        >>> df = figure2(setup, ns=[1, 2], executor=None).to_pandas()
        >>> df.index.name, df.columns.tolist()[:2]
        ('n', ['exact', 'simulated'])
        """
        pd = pandas()
        data = self.curve if curve else self.columns
        names = list(data)
        df = pd.DataFrame(
            {k: np.asarray(data[k]) for k in names[1:]},
            index=pd.Index(np.asarray(data[names[0]]), name=names[0]),
        )
        df.attrs.update(title=self.title, caption=self.caption, figure=self.key)
        return df

    def write_csv(self, path: str | Path) -> Path:
        """Writes the columns as CSV, with the title and caption as ``#`` comment lines."""
        path = Path(path)
        names = list(self.columns)
        data = np.column_stack([np.asarray(self.columns[k], dtype=float) for k in names])
        head = [f"# {self.title}"] + [f"# {line}" for line in textwrap.wrap(self.caption, 100)]
        for key, value in self.extras.items():
            if not isinstance(value, dict):
                head.append(f"# {key} = {value}")
        lines = [*head, ",".join(names)]
        lines += [",".join(_fmt(x) for x in row) for row in data]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def _fmt(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(float(x))


@dataclass(frozen=True)
class FigureFiles:
    """Paths written for one figure."""

    key: str
    png: Path
    csv: Path
    json: Path


# ---------------------------------------------------------------------------------------------
# simulation tasks (module level: they travel to process pools)
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoints:
    """Where the runs of a sweep save themselves, and how often (see
    :func:`~stochmech.markets._sweeps.checkpointed_simulation`).

    Run r of point j of figure ``key`` is saved to
    ``folder/<key>_p<j>_r<r>_s<seed of the run>.sim`` every ``every`` days; a run whose file
    exists resumes from it (a lost worker, or the same sweep started again). Use one folder
    per setup: a file is only identified by its figure, point, replication and seed.
    """

    folder: Path
    every: int = 100_000

    def path(self, key: str, point: int, rep: int, seed: int) -> Path:
        return Path(self.folder) / f"{key}_p{point}_r{rep}_s{seed}.sim"


def _truthful_run(
    market: DemandResponseMarket, days: int, seed: int, checkpoint: Path | None, every: int
) -> Any:
    def make() -> Simulation:
        return Simulation(market, market.supertype_bids(), seed=seed)

    return checkpointed_simulation(make, days, checkpoint, every)


def _mechanism_task(
    market: DemandResponseMarket,
    days: int,
    seed: int,
    checkpoint: Path | None = None,
    every: int = 100_000,
) -> np.ndarray:
    """One truthful run: [social cost, payments received (n), average penalty (n)]."""
    run = _truthful_run(market, days, seed, checkpoint, every)
    return np.concatenate([[-run.average_welfare], -run.average_payment, run.average_penalty])


def _posted_price_task(
    market: DemandResponseMarket,
    prices: np.ndarray,
    days: int,
    seed: int,
    checkpoint: Path | None = None,
    every: int = 100_000,
) -> np.ndarray:
    """The mechanism and the posted prices on the same days (one engine, one seed):
    [mechanism cost, costs (P)]."""
    theta = market.supertype_bids()
    run = _truthful_run(market, days, seed, checkpoint, every)
    costs = [
        -simulate(
            market, theta, days=days, seed=seed, mechanism=PostedPrice(float(p))
        ).average_welfare
        for p in prices
    ]
    return np.concatenate([[-run.average_welfare], costs])


def _checkpoints(checkpoints: Checkpoints | str | Path | None) -> Checkpoints | None:
    if checkpoints is None or isinstance(checkpoints, Checkpoints):
        out = checkpoints
    else:
        out = Checkpoints(Path(checkpoints))
    if out is not None:
        Path(out.folder).mkdir(parents=True, exist_ok=True)
    return out


def _sweep(
    key: str,
    markets: Sequence[DemandResponseMarket],
    setup: FigureSetup,
    executor: ExecutorLike,
    workers: int | None,
    progress: bool | None,
    checkpoints: Checkpoints | str | Path | None,
) -> list[np.ndarray]:
    """Runs every market R times; returns one (R, 1 + 2n) array per market."""
    seeds = replication_seeds(setup.seed, setup.replications)
    cp = _checkpoints(checkpoints)
    tasks = [
        (m, setup.days, s) if cp is None else (m, setup.days, s, cp.path(key, j, r, s), cp.every)
        for j, m in enumerate(markets)
        for r, s in enumerate(seeds)
    ]
    out = run_tasks(_mechanism_task, tasks, executor, workers=workers, progress=progress, desc=key)
    r = len(seeds)
    return [np.array(out[j * r : (j + 1) * r]) for j in range(len(markets))]


# ---------------------------------------------------------------------------------------------
# the three figures
# ---------------------------------------------------------------------------------------------
def curve_grid(upto: int, points: int = _CURVE_POINTS) -> np.ndarray:
    """The numbers of providers of Fig. 2's exact curve: every n up to ``points``, log-spaced
    beyond (about ``points`` values in all, always ending at ``upto``).

    Examples
    --------
    >>> curve_grid(5).tolist()
    [1, 2, 3, 4, 5]
    >>> g = curve_grid(10_000); int(g[0]), int(g[-1]), len(g) <= 200
    (1, 10000, True)
    """
    upto = int(upto)
    if upto < 1:
        raise ValueError(f"upto must be >= 1, got {upto}")
    if upto <= points:
        return np.arange(1, upto + 1)
    grid = np.unique(np.round(np.geomspace(1, upto, points)).astype(np.int64))
    return np.union1d(grid, [upto])


def figure2(
    setup: FigureSetup | None = None,
    ns: Sequence[int] = DEFAULT_NS,
    *,
    curve_to: int | None = None,
    executor: ExecutorLike = "process",
    workers: int | None = None,
    progress: bool | None = False,
    checkpoints: Checkpoints | str | Path | None = None,
) -> FigureData:
    """Fig. 2: the expected social cost against the number of providers.

    Columns: ``n``, ``exact`` (E[d^2/(2S)]), ``simulated`` and ``simulated_se`` (the
    mechanism's average social cost), ``best_posted_price`` (the exact social cost of the best
    posted price, for reference). The simulated points ``ns`` take 1 to
    :data:`MAX_SIMULATED_PROVIDERS` providers; the exact curve (the quadrature, O(nK) per
    point) runs to ``curve_to`` providers (default ``max(ns)``), any number: 10,000 providers
    take well under a second.

    ``executor`` runs the R runs of every point: "process" (a local pool of ``workers``),
    "serial"/None, any ``concurrent.futures.Executor``, or a Dask ``distributed.Client``
    (docs/dask.md); the figure is identical whatever runs it. ``progress`` shows a bar of
    finished runs (None: on a terminal). ``checkpoints`` (a :class:`Checkpoints` or a folder)
    makes every run save itself and resume from its file.
    """
    setup = FigureSetup() if setup is None else setup
    ns = [int(n) for n in ns]
    bad = [n for n in ns if not 1 <= n <= MAX_SIMULATED_PROVIDERS]
    if not ns or bad:
        raise ValueError(
            f"ns must be numbers of providers in 1..{MAX_SIMULATED_PROVIDERS}, got {bad or ns}"
        )
    top = max(ns) if curve_to is None else int(curve_to)
    if top < max(ns):
        raise ValueError(f"curve_to = {top} must be >= the largest simulated n = {max(ns)}")
    markets = [setup.market(n) for n in ns]
    runs = _sweep("fig2", markets, setup, executor, workers, progress, checkpoints)
    sim, se = zip(*(mean_and_se(r[:, 0]) for r in runs), strict=True)
    exact = np.array([m.expected_social_cost() for m in markets])
    posted = np.array([m.best_posted_price().social_cost for m in markets])
    grid = curve_grid(top)
    curve_exact = np.empty(grid.size)
    curve_posted = np.empty(grid.size)
    for j, n in enumerate(grid):
        m = setup.market(int(n))
        curve_exact[j] = m.expected_social_cost()
        curve_posted[j] = m.best_posted_price().social_cost
    shown = ", ".join(map(str, ns))
    return FigureData(
        key="fig2",
        title="Fig. 2: social cost vs. number of providers",
        xlabel="number of providers n",
        ylabel="expected social cost per day",
        caption=(
            f"Fig. 2. Expected social cost of covering the shortage against the number of "
            f"demand-response providers (exact curve: n = 1..{top:,}; simulated points: "
            f"n = {shown}) (optimal dispatch, E[d^2/(2S)] with S = sum_i 1/delta_i + "
            "1/delta_s; dashed: the best posted price). " + setup.caption()
        ),
        columns={
            "n": np.array(ns),
            "exact": exact,
            "simulated": np.array(sim, dtype=float),
            "simulated_se": np.array(se, dtype=float),
            "best_posted_price": posted,
        },
        curve={"n": grid, "exact": curve_exact, "best_posted_price": curve_posted},
        extras={"choices": setup.choices(), "curve_to": top},
    )


def _figure3_market(setup: FigureSetup, mean: float) -> DemandResponseMarket:
    others = setup.provider_law(mean)
    return DemandResponseMarket(
        [setup.fixed_cost] + [others] * (setup.n_providers - 1), setup.reserve_law(), setup.shortage
    )


def figure3(
    setup: FigureSetup | None = None,
    means: Sequence[float] = DEFAULT_MEANS,
    *,
    executor: ExecutorLike = "process",
    workers: int | None = None,
    progress: bool | None = False,
    checkpoints: Checkpoints | str | Path | None = None,
) -> FigureData:
    """Fig. 3: the average payment received by the fixed provider against the others' mean.

    Provider 1 has cost parameter ``setup.fixed_cost`` every day (a point mass); the other
    ``setup.n_providers - 1`` have the beta prime law with the given mean and variance
    ``setup.var``. Columns: ``mean``, ``exact`` (its long-run payment received, -p_1^F),
    ``simulated``, ``simulated_se`` and ``simulated_penalty`` (the average penalty it paid:
    a provider that always bids one type with a point-mass declaration is never flagged).
    ``executor``, ``workers``, ``progress`` and ``checkpoints`` as in :func:`figure2`.
    """
    setup = FigureSetup() if setup is None else setup
    means = [float(m) for m in means]
    if not means or not all(math.isfinite(m) and m > 0 for m in means):
        raise ValueError(f"means must be positive and finite, got {means}")
    markets = [_figure3_market(setup, m) for m in means]
    runs = _sweep("fig3", markets, setup, executor, workers, progress, checkpoints)
    n = setup.n_providers
    sim, se = zip(*(mean_and_se(r[:, 1]) for r in runs), strict=True)
    penalty = np.array([r[:, 1 + n].mean() for r in runs])
    exact = np.array([m.expected_payments()[0] for m in markets])
    grid = np.linspace(min(means), max(means), 61)
    return FigureData(
        key="fig3",
        title="Fig. 3: payment received by a provider with cost 4",
        xlabel=f"mean of the other providers' cost supertypes (variance {setup.var:g})",
        ylabel="average payment received per day",
        caption=(
            f"Fig. 3. Long-run average payment received by a provider whose cost parameter is "
            f"{setup.fixed_cost:g} every day, against the mean of the supertypes of the "
            f"{n - 1} other providers (beta prime, variance {setup.var:g}, discretized like the "
            f"others; n = {n}; the type space is their K levels and {setup.fixed_cost:g}). "
            "Exact: E[d^2/(2S_-1)] - E[d^2/(2S)] + E[d^2/(2 delta_1 S^2)] = -p_1^F. The fixed "
            "provider declares a point mass and is never flagged by the ledger. " + setup.caption()
        ),
        columns={
            "mean_others": np.array(means),
            "exact": exact,
            "simulated": np.array(sim, dtype=float),
            "simulated_se": np.array(se, dtype=float),
            "simulated_penalty": penalty,
        },
        curve={
            "mean_others": grid,
            "exact": np.array([_figure3_market(setup, m).expected_payments()[0] for m in grid]),
        },
        extras={"choices": setup.choices()},
    )


def figure4(
    setup: FigureSetup | None = None,
    prices: Sequence[float] | None = None,
    *,
    executor: ExecutorLike = "process",
    workers: int | None = None,
    progress: bool | None = False,
    checkpoints: Checkpoints | str | Path | None = None,
) -> FigureData:
    """Fig. 4: the posted-price social cost against the price, and the mechanism's cost.

    ``setup.n_providers`` identical providers. At price p each provider curtails
    x_i = p / delta_i and the reserve covers g_s = d - sum_i x_i (negative: surplus, priced by
    the same quadratic). Default prices: 21 points from 0 to twice the best price, and the
    best price itself. The mechanism and the posted prices are simulated on the same days.
    Columns: ``price``, ``exact``, ``simulated``, ``simulated_se`` (posted price). Extras:
    the best price, its exact and simulated cost, the mechanism's exact and simulated cost and
    the gap at the best price (exact, and simulated with a paired standard error).
    ``executor``, ``workers``, ``progress`` and ``checkpoints`` as in :func:`figure2` (only the
    mechanism's runs are checkpointed).
    """
    setup = FigureSetup() if setup is None else setup
    market = setup.market(setup.n_providers)
    best = market.best_posted_price()
    if prices is None:
        grid = np.union1d(np.linspace(0.0, 2.0 * best.price, 21), [best.price])
    else:
        grid = np.unique(np.asarray(prices, dtype=float))
        if grid.size == 0 or not np.all(np.isfinite(grid)):
            raise ValueError(f"prices must be finite numbers, got {prices!r}")
        grid = np.union1d(grid, [best.price])
    at_best = int(np.flatnonzero(grid == best.price)[0])
    seeds = replication_seeds(setup.seed, setup.replications)
    cp = _checkpoints(checkpoints)
    tasks = [
        (market, grid, setup.days, s)
        if cp is None
        else (market, grid, setup.days, s, cp.path("fig4", 0, r, s), cp.every)
        for r, s in enumerate(seeds)
    ]
    out = np.array(
        run_tasks(
            _posted_price_task, tasks, executor, workers=workers, progress=progress, desc="fig4"
        )
    )
    mech, mech_se = mean_and_se(out[:, 0])
    sim, se = mean_and_se(out[:, 1:])
    gap, gap_se = mean_and_se(out[:, 1 + at_best] - out[:, 0])
    exact = np.asarray(market.posted_price_social_cost(grid))
    fine = np.linspace(float(grid.min()), float(grid.max()), 201)
    optimum = market.expected_social_cost()
    return FigureData(
        key="fig4",
        title="Fig. 4: posted-price social cost vs. price",
        xlabel="posted price p (per unit of curtailment)",
        ylabel="expected social cost per day",
        caption=(
            f"Fig. 4. Expected social cost of the posted-price scheme against the price p, "
            f"n = {setup.n_providers} providers: each curtails x_i = p/delta_i (its best "
            "response), the reserve covers g_s = d - sum_i x_i (a surplus is priced by the same "
            "quadratic); exact: the quadratic p^2 E[T]/2 + E[delta_s](E[d^2] - 2p E[d]E[T] + "
            "p^2 E[T^2])/2, T = sum_i 1/delta_i. Line: the DNBE mechanism's optimal cost "
            f"(exact {optimum:.5g}; band: simulated, ±2 s.e.). Best price p* = "
            f"{best.price:.5g}, gap {best.gap:.4g} ({100 * best.gap / optimum:.1f} % of the "
            "optimum). Posted prices are simulated on the same days as the mechanism (and as "
            "each other, so their errors are correlated along the curve). " + setup.caption()
        ),
        columns={
            "price": grid,
            "exact": exact,
            "simulated": sim,
            "simulated_se": se,
        },
        curve={"price": fine, "exact": np.asarray(market.posted_price_social_cost(fine))},
        extras={
            "best_price": best.price,
            "best_price_cost_exact": best.social_cost,
            "best_price_cost_simulated": float(sim[at_best]),
            "best_price_cost_simulated_se": float(se[at_best]),
            "mechanism_cost_exact": optimum,
            "mechanism_cost_simulated": float(mech),
            "mechanism_cost_simulated_se": float(mech_se),
            "gap_exact": best.gap,
            "gap_simulated": float(gap),
            "gap_simulated_se": float(gap_se),
            "choices": setup.choices(),
        },
    )


# ---------------------------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------------------------
def plot_figure(fig_data: FigureData, *, ax: Any = None) -> Any:
    """Draws one figure; returns the matplotlib Figure (save it with ``fig.savefig``).

    Without ``ax``: a Figure with the values on top, simulated minus exact (in % of exact)
    below and the caption under them, as :func:`write_figures` saves it. With ``ax``: only the
    values, drawn on that Axes (e.g. one panel of a notebook's ``plt.subplots``).

    Examples
    --------
    >>> fig_data = figure2(FigureSetup(levels=3, days=500, replications=2), [1, 2], executor=None)
    >>> len(plot_figure(fig_data).axes)
    2
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = fig_data.columns
    xname = next(iter(cols))
    x = np.asarray(cols[xname], dtype=float)
    exact = cols["exact"]
    sim = cols["simulated"]
    se = cols["simulated_se"]

    wrapped = textwrap.wrap(fig_data.caption, 125)
    caption_in = len(wrapped) * 7.0 * 1.32 / 72.0 + 0.15
    height = 6.2 + caption_in
    own = ax is None
    if own:
        fig = Figure(figsize=(8.0, height))
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(2, 1, height_ratios=[3.0, 1.25], hspace=0.08, left=0.12,
                                right=0.97, top=1 - 0.4 / height,
                                bottom=(caption_in + 0.6) / height)  # fmt: skip
        ax = fig.add_subplot(grid[0])
    else:
        fig = ax.figure
    curve = fig_data.curve
    cx = np.asarray(curve[xname], dtype=float)
    key = fig_data.key
    if key == "fig2":
        ax.plot(cx, curve["exact"], color="C0", lw=1.6, label="exact optimum (quadrature)")
        ax.plot(cx, curve["best_posted_price"], color="0.45", lw=1.2, ls="--",
                label="best posted price (exact)")  # fmt: skip
        ax.set_yscale("log")
        if cx.max() > 10 * max(cx.min(), 1.0) and cx.max() > 100:
            ax.set_xscale("log")
    elif key == "fig3":
        ax.plot(cx, curve["exact"], color="C0", lw=1.6, label="exact (quadrature)")
    else:
        ex = fig_data.extras
        ax.plot(cx, curve["exact"], color="C0", lw=1.6, label="posted price, exact")
        opt = ex["mechanism_cost_exact"]
        ax.axhline(opt, color="C2", lw=1.6, label="DNBE mechanism, exact")
        m, ms = ex["mechanism_cost_simulated"], ex["mechanism_cost_simulated_se"]
        ax.axhspan(m - 2 * ms, m + 2 * ms, color="C2", alpha=0.25, lw=0,
                   label="DNBE mechanism, simulated (±2 s.e.)")  # fmt: skip
        p = ex["best_price"]
        c = ex["best_price_cost_exact"]
        ax.axvline(p, color="0.5", lw=0.8, ls=":")
        ax.annotate("", xy=(p, opt), xytext=(p, c),
                    arrowprops={"arrowstyle": "<->", "color": "C3", "lw": 1.4})  # fmt: skip
        ax.annotate(
            f"gap at the best price p* = {p:.4g}:\n{ex['gap_exact']:.4g} exact "
            f"({100 * ex['gap_exact'] / opt:.0f} % of the optimum),\n"
            f"{ex['gap_simulated']:.4g} ± {2 * ex['gap_simulated_se']:.1g} simulated",
            xy=(p, math.sqrt(opt * c)), xytext=(0.97, 0.2), textcoords="axes fraction",
            ha="right", va="center", fontsize=9, color="C3",
            arrowprops={"arrowstyle": "-", "color": "C3", "lw": 0.8, "shrinkB": 4},
        )  # fmt: skip
        ax.set_yscale("log")
    ax.errorbar(x, sim, yerr=2 * se, fmt="o", ms=4.5, color="C1", ecolor="C1", capsize=3,
                label="DNBE mechanism, simulated (±2 s.e.)" if key != "fig4"
                else "posted price, simulated (±2 s.e.)")  # fmt: skip
    ax.set_ylabel(fig_data.ylabel)
    ax.set_title(fig_data.title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="lower left" if key == "fig4" else "best")
    if not own:
        ax.set_xlabel(fig_data.xlabel)
        return fig
    ax.tick_params(labelbottom=False)
    res = fig.add_subplot(grid[1], sharex=ax)

    scale = np.where(exact != 0, np.abs(exact), 1.0)
    res.errorbar(x, 100 * (sim - exact) / scale, yerr=200 * se / scale, fmt="o", ms=4, color="C1",
                 ecolor="C1", capsize=3)  # fmt: skip
    res.axhline(0.0, color="C0", lw=1.2)
    res.set_ylabel("simulated - exact\n(% of exact)")
    res.set_xlabel(fig_data.xlabel)
    res.grid(True, alpha=0.3)
    fig.text(0.02, 0.08 / height, "\n".join(wrapped), fontsize=7.0, va="bottom", ha="left",
             linespacing=1.25)  # fmt: skip
    return fig


def write_figures(
    out_dir: str | Path,
    setup: FigureSetup | None = None,
    *,
    which: Sequence[int] = (2, 3, 4),
    ns: Sequence[int] = DEFAULT_NS,
    curve_to: int | None = None,
    means: Sequence[float] = DEFAULT_MEANS,
    executor: ExecutorLike = "process",
    workers: int | None = None,
    progress: bool | None = False,
    checkpoints: Checkpoints | str | Path | None = None,
) -> list[tuple[FigureData, FigureFiles]]:
    """Computes and writes Figs. 2-4 (PNG, CSV, JSON sidecar) into ``out_dir``.

    Returns each figure's data and the paths written. ``executor``, ``workers``, ``progress``
    and ``checkpoints`` as in :func:`figure2`.
    """
    setup = FigureSetup() if setup is None else setup
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run: dict[str, Any] = {
        "executor": executor,
        "workers": workers,
        "progress": progress,
        "checkpoints": checkpoints,
    }
    makers = {
        2: lambda: figure2(setup, ns, curve_to=curve_to, **run),
        3: lambda: figure3(setup, means, **run),
        4: lambda: figure4(setup, **run),
    }
    bad = [w for w in which if w not in makers]
    if bad:
        raise ValueError(f"figures are numbered 2, 3 and 4, got {bad}")
    written = []
    for number in which:
        data = makers[number]()
        stem = {
            2: "fig2_social_cost_vs_providers",
            3: "fig3_payment_vs_others_mean",
            4: "fig4_posted_price",
        }[number]
        png = out / f"{stem}.png"
        plot_figure(data).savefig(png, dpi=120)
        csv = data.write_csv(out / f"{stem}.csv")
        side = out / f"{stem}.json"
        side.write_text(json.dumps(data.to_dict(), indent=2) + "\n", encoding="utf-8")
        written.append((data, FigureFiles(key=data.key, png=png, csv=csv, json=side)))
    return written
