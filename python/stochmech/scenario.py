"""Scenario files: a game, the players' true supertypes and strategies, and a horizon, in TOML.

A scenario describes one run of the DNBE mechanism, as ``stochmech run`` and
``stochmech audit`` read it. The format, key by key (optional keys show their default)::

    name = "my-scenario"          # default: the file name without .toml
    description = ""
    days = 100000
    seed = 0

    [mechanism]                   # optional
    gamma = 1.0                   # window exponent of eq. (11) (stochmech.DEFAULT_GAMMA)
    penalty = { exponent = 1.5, scale = 1.0 }     # J_p(l) = scale * l^exponent, eq. (12)
    first_stage_payment = true    # switch off to see the audit fail
    penalize = true               # switch off to see the audit fail

    [game]                        # a finite game given by its tables ...
    kind = "finite"
    valuations = [...]            # v_i(t, a, b), nested lists of shape (n, K, A, B), or one
                                  # list of shape (K_i, A, B) per player (own type spaces)
    cost = [...]                  # c(a, b), shape (A, B)
    type_values = [...]           # optional numeric value of each type (or one list per player)

    [game]                        # ... or the demand-response market (Section IV)
    kind = "demand-response"
    reserve = 1.0                 # law of the reserve's cost parameter (a law, see below)
    shortage = 1.0                # law of the shortage d
    type_values = [...]           # optional type space shared by every provider (default:
                                  # each provider's own levels, those its law lists)

    [[players]]                   # one table per player, in order
    name = "provider 1"           # optional
    supertype = [0.5, 0.5]        # finite game: a pmf over the player's own K_i types
    # demand response: a law of the cost parameter, one of
    #   1.5                                    a point mass
    #   { values = [1, 2], probs = [0.3, 0.7] }
    #   { mean = 1.0, var = 2.0, levels = 4 }  beta prime, discretized (docs/modelling.md,
    #                                          "The beta-prime reading")
    levels = [...]                # demand response, optional: this provider's own type space
                                  # (its cost levels; default: the values its law lists)
    strategy = "truthful"         # or a table with a kind, see below

    [audit]                       # optional, for ``stochmech audit``
    players = [0]                 # default: the players who do not play truthfully, else [0]
    history_days = 20000          # horizon for history-dependent deviations
    batches = 20
    z = 3.0
    resolution = 10               # grid of declarations for the LP search (default: automatic)

Strategies (``declare`` is "induced", "truthful" or a pmf, as for
:class:`~stochmech.strategies.StationaryMisreport`):

* ``"truthful"``;
* ``{ kind = "shift", steps = -1, declare = "induced" }``: report the type ``steps`` of the
  player's own types away (clipped); ``{ kind = "inflate", steps = 1 }`` is a shift upward (in
  the demand-response market: the provider's next own cost level);
* ``{ kind = "kernel", kernel = [[...], ...], declare = "induced" }``: a misreport kernel;
* ``{ kind = "supertype-lie", bid = [...], coupling = "quantile" }``: declare ``bid`` (a pmf,
  or a law as above in the demand-response market) and draw bids that follow it;
* ``{ kind = "fixed", type = 0, declare = "truthful" }``: always the same bid (bankrupting);
* ``{ kind = "yesterday" }``: bid yesterday's type (history-dependent);
* ``{ kind = "window-exploit", margin = 0.9 }``: lie as much as the window allows;
* ``{ kind = "collusion", group = "g", kernels = [...], declare = "induced" }``: every member
  of a group reads the same uniform day signal (S values, one kernel of shape (K, K) each) and
  bids by the kernel of today's signal: collusion through common randomness.

Every mistake is a ``ValueError`` that names the key and the value.

Python 3.11 reads TOML with the standard :mod:`tomllib`; on Python 3.10 the package depends
on ``tomli`` (the same parser, published separately), so the declared Python support stays.

Examples
--------
>>> s = parse_scenario('''
... days = 500
... [game]
... kind = "demand-response"
... reserve = 1.0
... [[players]]
... supertype = { values = [1.0, 2.0], probs = [0.5, 0.5] }
... strategy = { kind = "inflate", steps = 1 }
... [[players]]
... supertype = 2.0
... ''', name="tiny")
>>> s.name, s.days, s.true_supertypes.tolist()  # each provider on its own levels
('tiny', 500, [[0.5, 0.5], [1.0, 0.0]])
>>> [lv.tolist() for lv in s.game.levels]
[[1.0, 2.0], [2.0]]
>>> s.strategy_specs
('inflate by 1 type, declares the induced law', 'truthful')
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stochmech._ragged import pad_pmfs
from stochmech._seeding import SeedLike
from stochmech._window import DEFAULT_GAMMA
from stochmech.audit import AuditReport, DaySignal, Deviation, WindowExploit, audit
from stochmech.audit import default_deviations as _default_deviations
from stochmech.audit.adversaries import yesterdays_type
from stochmech.games.base import TwoStageGame
from stochmech.games.finite import FiniteGame
from stochmech.ledger import PowerPenalty
from stochmech.markets._sweeps import ExecutorLike
from stochmech.mechanism import DNBEMechanism
from stochmech.simulation import Simulation, SimulationResult
from stochmech.strategies import (
    FixedBid,
    HistoryDependent,
    PublicSignalCollusion,
    StationaryMisreport,
    Strategy,
    SupertypeLie,
    Truthful,
    shift_kernel,
)
from stochmech.supertype import Supertype

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "DEFAULT_DEVIATIONS",
    "STRATEGY_KINDS",
    "Scenario",
    "default_scenario",
    "load_scenario",
    "parse_scenario",
    "strategy_from_spec",
]


# ---------------------------------------------------------------------------------------------
# validation helpers: every error names the key
# ---------------------------------------------------------------------------------------------
def _fail(where: str, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _table(x: Any, where: str) -> dict[str, Any]:
    if not isinstance(x, Mapping):
        raise _fail(where, f"expected a table, got {x!r}")
    return dict(x)


def _keys(
    d: Mapping[str, Any], where: str, allowed: set[str], required: tuple[str, ...] = ()
) -> None:
    for key in d:
        if key not in allowed:
            raise _fail(
                where, f"unknown key {key!r} (expected one of: {', '.join(sorted(allowed))})"
            )
    for key in sorted(required):
        if key not in d:
            raise _fail(where, f"missing key {key!r}")


def _int(x: Any, where: str, minimum: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise _fail(where, f"expected an integer, got {x!r}")
    if minimum is not None and x < minimum:
        raise _fail(where, f"must be >= {minimum}, got {x}")
    return int(x)


def _number(x: Any, where: str, positive: bool = False) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise _fail(where, f"expected a finite number, got {x!r}")
    if positive and x <= 0:
        raise _fail(where, f"must be > 0, got {x!r}")
    return float(x)


def _bool(x: Any, where: str) -> bool:
    if not isinstance(x, bool):
        raise _fail(where, f"expected true or false, got {x!r}")
    return x


def _str(x: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(x, str):
        raise _fail(where, f"expected a string, got {x!r}")
    if choices is not None and x not in choices:
        raise _fail(where, f"expected one of {', '.join(map(repr, choices))}, got {x!r}")
    return x


def _array(x: Any, where: str, ndim: int) -> np.ndarray:
    try:
        arr = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(where, f"expected a {ndim}-D array of numbers (equal-length rows)") from None
    if arr.ndim != ndim or 0 in arr.shape:
        raise _fail(where, f"expected a non-empty {ndim}-D array, got shape {arr.shape}")
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        idx = "".join(f"[{int(j)}]" for j in bad[0])
        raise _fail(f"{where}{idx}", f"expected a finite number, got {arr[tuple(bad[0])]!r}")
    return arr


def _pmf(x: Any, k: int, where: str) -> np.ndarray:
    arr = _array(x, where, 1)
    if arr.shape != (k,):
        raise _fail(where, f"expected a pmf over the {k} types, got {arr.size} numbers")
    neg = np.flatnonzero(arr < 0)
    if neg.size:
        raise _fail(f"{where}[{neg[0]}]", f"probability {float(arr[neg[0]])!r} is negative")
    if abs(arr.sum() - 1.0) > 1e-9:
        raise _fail(where, f"probabilities sum to {float(arr.sum())!r}, not 1")
    return arr


def _law(x: Any, where: str) -> Supertype | float:
    """A law of a number: a point mass, {values, probs} or beta prime {mean, var, levels}."""
    from stochmech.markets.demand_response import betaprime_supertype

    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return _number(x, where)
    d = _table(x, where)
    if "values" in d or "probs" in d:
        _keys(d, where, {"values", "probs"}, ("values", "probs"))
        try:
            return Supertype(
                _array(d["values"], f"{where}.values", 1), _array(d["probs"], f"{where}.probs", 1)
            )
        except ValueError as err:
            raise _fail(where, str(err)) from None
    if "mean" in d:
        _keys(d, where, {"mean", "var", "levels"}, ("mean", "var", "levels"))
        mean = _number(d["mean"], f"{where}.mean", positive=True)
        var = _number(d["var"], f"{where}.var", positive=True)
        levels = _int(d["levels"], f"{where}.levels", minimum=1)
        return betaprime_supertype(mean, var, levels)
    raise _fail(where, "expected a number, {values = [...], probs = [...]} or {mean, var, levels}")


# ---------------------------------------------------------------------------------------------
# the scenario
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """A parsed scenario: everything needed to simulate or audit it.

    Attributes
    ----------
    name, description : str
    game : TwoStageGame
    true_supertypes : (n, K)
    strategies : tuple of Strategy
        One per player (simulations copy them).
    strategy_specs : tuple of str
        A readable description of each player's strategy.
    player_names : tuple of str
    days, seed : int
    mechanism : DNBEMechanism
    audit_players : tuple of int
        Players ``stochmech audit`` audits.
    audit_options : mapping
        history_days, batches, z, resolution (those given).
    source : str or None
        The file the scenario came from.
    """

    name: str
    description: str
    game: TwoStageGame
    true_supertypes: np.ndarray
    strategies: tuple[Strategy, ...]
    strategy_specs: tuple[str, ...]
    player_names: tuple[str, ...]
    days: int
    seed: int
    mechanism: DNBEMechanism
    audit_players: tuple[int, ...]
    audit_options: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None

    def with_switches(
        self, *, penalize: bool | None = None, first_stage_payment: bool | None = None
    ) -> Scenario:
        """The same scenario under a mechanism with some parts switched off."""
        m = self.mechanism
        mech = DNBEMechanism(
            self.game,
            gamma=m.gamma,
            penalty=m.penalty,
            first_stage_payment=m.first_stage_payment
            if first_stage_payment is None
            else first_stage_payment,
            penalize=m.penalize if penalize is None else penalize,
        )
        return dataclasses.replace(self, mechanism=mech)

    def simulate(
        self,
        days: int | None = None,
        seed: SeedLike | None = None,
        *,
        progress: bool | None = None,
        daily: bool = False,
    ) -> SimulationResult:
        """Plays the scenario (its days and seed unless given; a seed may be an int, a
        ``SeedSequence`` or a ``Generator``)."""
        sim = self.simulation(seed, daily=daily)
        return sim.run(self.days if days is None else days, progress=progress).result()

    def simulation(self, seed: SeedLike | None = None, *, daily: bool = False) -> Simulation:
        """The scenario's :class:`~stochmech.simulation.Simulation` on day 0 (its seed unless
        given): run it, save it, continue it."""
        return Simulation(
            self.game,
            self.true_supertypes,
            list(self.strategies),
            self.seed if seed is None else seed,
            mechanism=self.mechanism,
            daily=daily,
        )

    def audit(
        self,
        player: int,
        *,
        days: int | None = None,
        seed: SeedLike | None = None,
        history_days: int | None = None,
        progress: bool | None = None,
        executor: ExecutorLike = None,
        workers: int | None = None,
    ) -> AuditReport:
        """Audits ``player`` against the others' scenario strategies; the player's own
        scenario strategy is the first deviation of the catalog.

        ``executor`` (an Executor, a Dask ``distributed.Client``, "process" with ``workers``,
        or None: serial) runs the audit's simulations, as in :func:`stochmech.audit.audit`.
        """
        n = self.game.n_players
        if isinstance(player, bool) or not isinstance(player, int) or not 0 <= player < n:
            raise ValueError(f"player must be an integer in [0, {n - 1}], got {player!r}")
        opts = dict(self.audit_options)
        days = self.days if days is None else int(days)
        hdays = history_days if history_days is not None else opts.get("history_days")
        others = {
            j: s for j, s in enumerate(self.strategies) if j != player and type(s) is not Truthful
        }
        own = self.strategies[player]
        deviations = []
        if type(own) is not Truthful:
            kind = "history-dependent" if own.history_dependent else "stationary"
            deviations.append(Deviation(f"scenario: {self.strategy_specs[player]}", own, {}, kind))
        slow = any(s.history_dependent for s in others.values())
        hdays = min(days, 20_000 if hdays is None else int(hdays))
        deviations += _default_deviations(
            self.game,
            self.true_supertypes,
            player,
            mechanism=self.mechanism,
            others=others,
            horizon=hdays if slow else days,
        )
        return audit(
            self.game,
            self.true_supertypes,
            player,
            mechanism=self.mechanism,
            others=others,
            deviations=deviations,
            days=days,
            history_days=hdays,
            seed=self.seed if seed is None else seed,
            batches=opts.get("batches", 20),
            z=opts.get("z", 3.0),
            resolution=opts.get("resolution"),
            progress=progress,
            executor=executor,
            workers=workers,
        )


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Reads a scenario file (TOML); see the module docstring for the format.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "two.toml"
    >>> _ = f.write_text('[game]\\nkind = "finite"\\nvaluations = [[[[0.0]], [[1.0]]]]\\n'
    ...                  'cost = [[0.0]]\\n[[players]]\\nsupertype = [0.5, 0.5]\\n')
    >>> s = load_scenario(f)
    >>> s.name, s.game.n_players, s.strategy_specs
    ('two', 1, ('truthful',))
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"cannot read scenario file {str(p)!r}: {err.strerror}") from None
    return parse_scenario(text, name=p.stem, source=str(p))


def parse_scenario(text: str, *, name: str = "scenario", source: str | None = None) -> Scenario:
    """Parses a scenario from TOML text (``name`` is the default scenario name)."""
    where0 = source or "scenario"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{where0}: not valid TOML: {err}") from None
    return _build(data, name, source)


#: what provider 0 does in the built-in scenario (``stochmech run --deviation``)
DEFAULT_DEVIATIONS = {
    "inflate": "reports its cost --shift levels higher every day and declares the law those "
    "reports follow (the ledger cannot see it)",
    "inflate-naive": "reports its cost --shift levels higher every day but declares its true "
    "law (the ledger's frequency test catches it)",
    "claim-top": "declares and reports its highest cost level every day",
    "none": "truthful like the others",
}


def default_scenario(
    players: int | None = None,
    levels: int | None = None,
    deviation: str | None = None,
    shift: int | None = None,
) -> Scenario:
    """The built-in scenario of ``stochmech run``, shipped with the package
    (``stochmech/scenarios/demand_response.toml``), with optional changes: the number of
    providers, the levels of the cost laws, and what provider 0 does (a key of
    :data:`DEFAULT_DEVIATIONS`, shifting by ``shift`` levels).

    Examples
    --------
    >>> s = default_scenario(players=3, levels=4, deviation="claim-top")
    >>> s.game.n_players, s.game.n_types, s.strategy_specs[0]
    (3, 4, 'always bids type 3, declares [0, 0, 0, 1]')
    """
    from importlib.resources import files

    text = files("stochmech").joinpath("scenarios/demand_response.toml").read_text("utf-8")
    data = tomllib.loads(text)
    table = data["players"]
    if players is not None:
        n = _int(players, "players", minimum=2)
        table = [dict(table[0])] + [
            {**table[min(j, len(table) - 1)], "name": f"provider {j}"} for j in range(1, n)
        ]
    if levels is not None:
        k = _int(levels, "levels", minimum=1)
        for law in [data["game"]["reserve"], *(t["supertype"] for t in table)]:
            law["levels"] = k
    k = int(table[0]["supertype"]["levels"])
    steps = 1 if shift is None else _int(shift, "shift")
    deviation = "inflate" if deviation is None else deviation
    kind = "inflate" if steps >= 1 else "shift"
    if deviation == "inflate":
        table[0]["strategy"] = {"kind": kind, "steps": steps}
    elif deviation == "inflate-naive":
        table[0]["strategy"] = {"kind": kind, "steps": steps, "declare": "truthful"}
    elif deviation == "claim-top":
        top = [0.0] * (k - 1) + [1.0]
        table[0]["strategy"] = {"kind": "fixed", "type": k - 1, "declare": top}
    elif deviation == "none":
        table[0].pop("strategy", None)
    else:
        raise ValueError(
            f"deviation must be one of {sorted(DEFAULT_DEVIATIONS)}, got {deviation!r}"
        )
    data["players"] = table
    return _build(data, "demand-response", "built-in scenario")


_TOP = {"name", "description", "days", "seed", "mechanism", "game", "players", "audit"}


def _build(data: dict[str, Any], default_name: str, source: str | None) -> Scenario:
    _keys(data, "scenario", _TOP, ("game", "players"))
    name = _str(data.get("name", default_name), "name")
    if not name or any(c in name for c in "/\\") or name in (".", ".."):
        raise _fail("name", f"must be a non-empty file-name-safe string, got {name!r}")
    description = _str(data.get("description", ""), "description")
    days = _int(data.get("days", 100_000), "days", minimum=1)
    seed = _int(data.get("seed", 0), "seed", minimum=0)
    game_table = _table(data["game"], "game")
    players = data["players"]
    if not isinstance(players, list) or not players:
        raise _fail("players", "expected one or more [[players]] tables")
    tables = [_table(p, f"players[{j}]") for j, p in enumerate(players)]
    for j, t in enumerate(tables):
        _keys(t, f"players[{j}]", {"name", "supertype", "strategy", "levels"}, ("supertype",))

    kind = _str(game_table.get("kind"), "game.kind", ("finite", "demand-response"))
    game: TwoStageGame
    if kind == "finite":
        game, theta = _finite_game(game_table, tables)
    else:
        game, theta = _demand_response(game_table, tables)

    mechanism = _mechanism(game, data.get("mechanism", {}))
    signals: dict[str, tuple[int, DaySignal]] = {}
    strategies, specs = [], []
    for j, t in enumerate(tables):
        s, spec = _strategy(
            t.get("strategy", "truthful"),
            f"players[{j}].strategy",
            game,
            theta,
            j,
            mechanism,
            signals,
        )
        strategies.append(s)
        specs.append(spec)
    names = tuple(
        _str(t.get("name", f"player {j}"), f"players[{j}].name") for j, t in enumerate(tables)
    )
    audit_players, options = _audit_options(data.get("audit", {}), strategies, game.n_players)
    return Scenario(
        name=name,
        description=description,
        game=game,
        true_supertypes=theta,
        strategies=tuple(strategies),
        strategy_specs=tuple(specs),
        player_names=names,
        days=days,
        seed=seed,
        mechanism=mechanism,
        audit_players=audit_players,
        audit_options=options,
        source=source,
    )


def _finite_game(g: dict[str, Any], players: list[dict[str, Any]]) -> tuple[FiniteGame, np.ndarray]:
    _keys(g, "game", {"kind", "valuations", "cost", "type_values"}, ("valuations", "cost"))
    for j, t in enumerate(players):
        if "levels" in t:
            raise _fail(f"players[{j}].levels", "only the demand-response market has levels")
    v = _per_player_arrays(g["valuations"], "game.valuations", 4)
    c = _array(g["cost"], "game.cost", 2)
    tv = (
        None
        if "type_values" not in g
        else _per_player_arrays(g["type_values"], "game.type_values", 1)
    )
    try:
        game = FiniteGame(v, c, type_values=tv)
    except ValueError as err:
        raise _fail("game", str(err)) from None
    if len(players) != game.n_players:
        raise _fail(
            "players",
            f"game.valuations describes {game.n_players} players but there are "
            f"{len(players)} [[players]] tables",
        )
    counts = game.type_counts
    theta = pad_pmfs(
        [
            _pmf(t["supertype"], int(counts[j]), f"players[{j}].supertype")
            for j, t in enumerate(players)
        ],
        counts,
    )
    return game, theta


def _per_player_arrays(x: Any, where: str, ndim: int) -> np.ndarray | list[np.ndarray]:
    """An ``ndim``-D array, or a list of (ndim - 1)-D arrays of different shapes (one per
    player: players with their own type spaces)."""
    try:
        return _array(x, where, ndim)
    except ValueError as err:
        if not isinstance(x, list) or not x:
            raise
        try:
            rows = [_array(r, f"{where}[{j}]", ndim - 1) for j, r in enumerate(x)]
        except ValueError:
            raise err from None
        if len({r.shape[1:] for r in rows}) > 1:
            raise
        return rows


def _demand_response(
    g: dict[str, Any], players: list[dict[str, Any]]
) -> tuple[TwoStageGame, np.ndarray]:
    from stochmech.markets.demand_response import DemandResponseMarket

    _keys(g, "game", {"kind", "reserve", "shortage", "type_values"}, ("reserve",))
    reserve = _law(g["reserve"], "game.reserve")
    shortage = _law(g.get("shortage", 1.0), "game.shortage")
    providers = [_law(t["supertype"], f"players[{j}].supertype") for j, t in enumerate(players)]
    tv: Any = None if "type_values" not in g else _array(g["type_values"], "game.type_values", 1)
    if any("levels" in t for t in players):
        if tv is not None:
            raise _fail("game.type_values", "give either game.type_values or players' levels")
        tv = [
            _array(t["levels"], f"players[{j}].levels", 1)
            if "levels" in t
            else np.sort(np.atleast_1d(p.values if isinstance(p, Supertype) else p))
            for j, (t, p) in enumerate(zip(players, providers, strict=True))
        ]
    try:
        market = DemandResponseMarket(providers, reserve, shortage, type_values=tv)
    except ValueError as err:
        raise _fail("game", str(err)) from None
    return market, market.supertype_bids()


def _mechanism(game: TwoStageGame, m: Any) -> DNBEMechanism:
    m = _table(m, "mechanism")
    _keys(m, "mechanism", {"gamma", "penalty", "first_stage_payment", "penalize"})
    gamma = _number(m.get("gamma", DEFAULT_GAMMA), "mechanism.gamma", positive=True)
    pen = _table(m.get("penalty", {}), "mechanism.penalty")
    _keys(pen, "mechanism.penalty", {"exponent", "scale"})
    exponent = _number(pen.get("exponent", 1.5), "mechanism.penalty.exponent")
    if exponent <= 1:
        raise _fail(
            "mechanism.penalty.exponent",
            f"must be > 1 so that J_p(l)/l -> infinity (eq. 12), got {exponent!r}",
        )
    scale = _number(pen.get("scale", 1.0), "mechanism.penalty.scale", positive=True)
    return DNBEMechanism(
        game,
        gamma=gamma,
        penalty=PowerPenalty(scale=scale, exponent=exponent),
        first_stage_payment=_bool(
            m.get("first_stage_payment", True), "mechanism.first_stage_payment"
        ),
        penalize=_bool(m.get("penalize", True), "mechanism.penalize"),
    )


def _declare(x: Any, where: str, k: int, default: str) -> Any:
    if x is None:
        return default
    if isinstance(x, str):
        return _str(x, where, ("induced", "truthful"))
    return _pmf(x, k, where)


def _fmt_pmf(p: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.3g}" for x in p) + "]"


def _declared_text(d: Any) -> str:
    if isinstance(d, str):
        return f"declares the {'truth' if d == 'truthful' else 'induced law'}"
    return f"declares {_fmt_pmf(d)}"


#: The one registry of strategies and lies, shared by scenario files (``strategy = {...}``),
#: the command line (``stochmech run --deviation``) and the Python API
#: (:func:`strategy_from_spec`, :class:`~stochmech.markets.demand_response.incentives.Lie`):
#: each kind and what it does.
STRATEGY_KINDS = {
    "truthful": "bids the truth every day and declares its true supertype",
    "shift": "reports the type `steps` indices away (clipped), declares `declare`",
    "inflate": "a shift upward by `steps` >= 1 types",
    "kernel": "reports by the misreport kernel `kernel` (row t: the report's law), declares "
    "`declare`",
    "supertype-lie": "declares `bid` and draws bids that follow it (`coupling` quantile or "
    "independent)",
    "fixed": "always bids `type`, declares `declare` (bankrupting)",
    "yesterday": "bids yesterday's type (history-dependent)",
    "window-exploit": "lies as much as the window r(l) allows (`margin`)",
    "collusion": "bids by the kernel of a day signal shared by its `group` (`kernels`)",
}

_STRATEGY_KEYS = {
    "truthful": set(),
    "shift": {"steps", "declare"},
    "inflate": {"steps", "declare"},
    "kernel": {"kernel", "declare"},
    "supertype-lie": {"bid", "coupling"},
    "fixed": {"type", "declare"},
    "yesterday": set(),
    "window-exploit": {"margin"},
    "collusion": {"group", "kernels", "declare"},
}


def strategy_from_spec(
    spec: Any,
    game: TwoStageGame,
    player: int,
    *,
    true_supertypes: Any = None,
    mechanism: DNBEMechanism | None = None,
) -> tuple[Strategy, str]:
    """The strategy a spec of :data:`STRATEGY_KINDS` describes, and its description.

    ``spec`` is a kind name or a table as in a scenario file's ``strategy`` key;
    ``true_supertypes`` default to the game's own (``game.supertype_bids()``), ``mechanism``
    to ``DNBEMechanism(game)``.

    Examples
    --------
    >>> from stochmech.markets.demand_response import DemandResponseMarket
    >>> from stochmech.supertype import Supertype
    >>> m = DemandResponseMarket([Supertype([1.0, 2.0], [0.5, 0.5])] * 2, reserve=1.0)
    >>> strategy_from_spec({"kind": "inflate", "steps": 1}, m, 0)[1]
    'inflate by 1 type, declares the induced law'
    """
    from stochmech._validate import player as check_player

    i = check_player(player, game.n_players)
    if true_supertypes is None:
        true_supertypes = game.supertype_bids()  # type: ignore[attr-defined]
    theta = np.asarray(true_supertypes, dtype=float)
    mech = DNBEMechanism(game) if mechanism is None else mechanism
    return _strategy(spec, "strategy", game, theta, i, mech, {})


def _ladder(game: TwoStageGame, player: int) -> np.ndarray | None:
    """The types a shift steps along: in the demand-response market the levels the provider's
    own law lists (:meth:`DemandResponseMarket.own_ladder`), otherwise all its own types."""
    own = getattr(game, "own_ladder", None)
    return own(player) if callable(own) else None


def _strategy(
    spec: Any,
    where: str,
    game: TwoStageGame,
    theta: np.ndarray,
    player: int,
    mech: DNBEMechanism,
    signals: dict[str, tuple[int, DaySignal]],
) -> tuple[Strategy, str]:
    k = int(game.type_counts[player])  # the player's own types
    if isinstance(spec, str):
        spec = {"kind": spec}
    d = _table(spec, where)
    kind = _str(d.get("kind"), f"{where}.kind", tuple(_STRATEGY_KEYS))
    _keys(d, where, {"kind"} | _STRATEGY_KEYS[kind])
    if kind == "truthful":
        return Truthful(), "truthful"
    if kind in ("shift", "inflate"):
        steps = _int(d.get("steps", 1), f"{where}.steps")
        if kind == "inflate" and steps < 1:
            raise _fail(f"{where}.steps", f"inflate needs steps >= 1, got {steps}")
        declare = _declare(d.get("declare"), f"{where}.declare", k, "induced")
        word = "inflate" if kind == "inflate" else "shift"
        shown = f"{steps}" if kind == "inflate" else f"{steps:+d}"
        unit = "type" if abs(steps) == 1 else "types"
        return (
            StationaryMisreport(shift_kernel(k, steps, ladder=_ladder(game, player)), declare),
            f"{word} by {shown} {unit}, {_declared_text(declare)}",
        )
    if kind == "kernel":
        if "kernel" not in d:
            raise _fail(where, "missing key 'kernel'")
        kern = _array(d["kernel"], f"{where}.kernel", 2)
        if kern.shape != (k, k):
            raise _fail(f"{where}.kernel", f"expected shape ({k}, {k}), got {kern.shape}")
        for t in range(k):
            _pmf(kern[t], k, f"{where}.kernel[{t}]")
        declare = _declare(d.get("declare"), f"{where}.declare", k, "induced")
        return StationaryMisreport(kern, declare), f"misreport kernel, {_declared_text(declare)}"
    if kind == "supertype-lie":
        if "bid" not in d:
            raise _fail(where, "missing key 'bid'")
        bid = _bid(d["bid"], f"{where}.bid", game, player)
        coupling = _str(
            d.get("coupling", "quantile"), f"{where}.coupling", ("quantile", "independent")
        )
        return SupertypeLie(bid, coupling), f"supertype lie {_fmt_pmf(bid)} ({coupling} bids)"
    if kind == "fixed":
        if "type" not in d:
            raise _fail(where, "missing key 'type'")
        t = _int(d["type"], f"{where}.type", minimum=0)
        if t >= k:
            raise _fail(f"{where}.type", f"must be a type index in [0, {k - 1}], got {t}")
        declare = _declare(d.get("declare"), f"{where}.declare", k, "truthful")
        if isinstance(declare, str) and declare == "induced":
            raise _fail(f"{where}.declare", "expected 'truthful' or a pmf, got 'induced'")
        return FixedBid(t, declare), f"always bids type {t}, {_declared_text(declare)}"
    if kind == "yesterday":
        return HistoryDependent(
            yesterdays_type, name="bids yesterday's type"
        ), "bids yesterday's type"
    if kind == "window-exploit":
        margin = _number(d.get("margin", 0.9), f"{where}.margin", positive=True)
        if margin > 1:
            raise _fail(f"{where}.margin", f"must be in (0, 1], got {margin!r}")
        payoffs = np.asarray(game.deviation_payoffs(theta, player), dtype=float)
        advantage = payoffs - np.diag(payoffs)[None, :]
        return (
            WindowExploit(advantage, gamma=mech.gamma, margin=margin),
            f"window exploit (margin {margin:g})",
        )
    # collusion
    for key in ("group", "kernels"):
        if key not in d:
            raise _fail(where, f"missing key {key!r}")
    group = _str(d["group"], f"{where}.group")
    kernels = _array(d["kernels"], f"{where}.kernels", 3)
    if kernels.shape[1:] != (k, k):
        raise _fail(f"{where}.kernels", f"expected shape (S, {k}, {k}), got {kernels.shape}")
    for s in range(kernels.shape[0]):
        for t in range(k):
            _pmf(kernels[s, t], k, f"{where}.kernels[{s}][{t}]")
    size = kernels.shape[0]
    if group in signals and signals[group][0] != size:
        raise _fail(
            f"{where}.kernels",
            f"group {group!r} uses a signal with {signals[group][0]} values, got {size} kernels",
        )
    if group not in signals:
        salt = zlib.crc32(group.encode("utf-8"))
        signals[group] = (size, DaySignal(np.full(size, 1.0 / size), salt=salt))
    declare = _declare(d.get("declare"), f"{where}.declare", k, "induced")
    strategy = PublicSignalCollusion(signals[group][1], kernels, supertype_bid=declare)
    return strategy, f"colludes in group {group!r} on a day signal, {_declared_text(declare)}"


def _bid(x: Any, where: str, game: TwoStageGame, player: int) -> np.ndarray:
    """A declared supertype: a pmf over the player's own types, or (numeric types) a law."""
    values = game.values_of(player)
    if isinstance(x, Mapping):
        if values is None:
            raise _fail(where, "expected a pmf over the types (this game's types carry no values)")
        law = _law(x, where)
        law = law if isinstance(law, Supertype) else Supertype(np.array([law]), np.array([1.0]))
        try:
            return law.pmf_on(values)
        except ValueError as err:
            raise _fail(
                where, f"{err} of player {player} (its levels: {values.tolist()})"
            ) from None
    return _pmf(x, int(game.type_counts[player]), where)


def _audit_options(
    a: Any, strategies: list[Strategy], n: int
) -> tuple[tuple[int, ...], dict[str, Any]]:
    a = _table(a, "audit")
    _keys(a, "audit", {"players", "history_days", "batches", "z", "resolution"})
    if "players" in a:
        ps = a["players"]
        if not isinstance(ps, list) or not ps:
            raise _fail("audit.players", f"expected a non-empty list of player indices, got {ps!r}")
        players = []
        for j, p in enumerate(ps):
            p = _int(p, f"audit.players[{j}]", minimum=0)
            if p >= n:
                raise _fail(f"audit.players[{j}]", f"player {p} does not exist (n = {n})")
            players.append(p)
    else:
        players = [j for j, s in enumerate(strategies) if type(s) is not Truthful] or [0]
    options: dict[str, Any] = {}
    if "history_days" in a:
        options["history_days"] = _int(a["history_days"], "audit.history_days", minimum=2)
    if "batches" in a:
        options["batches"] = _int(a["batches"], "audit.batches", minimum=2)
    if "z" in a:
        options["z"] = _number(a["z"], "audit.z", positive=True)
    if "resolution" in a:
        options["resolution"] = _int(a["resolution"], "audit.resolution", minimum=1)
    return tuple(players), options
