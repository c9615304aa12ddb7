"""The error contract, on generated bad inputs for every public constructor, method, loader
and CLI command: a bad argument raises ``ValueError`` (or ``TypeError`` for a wrong kind of
object) whose message names the argument, and the object is unchanged afterwards.

The number of generated bad inputs per API area is printed at the end of the test session
(see ``conftest.py``).
"""

# ruff: noqa: B023 (each lambda is called at once, inside the loop iteration that made it)
from __future__ import annotations

import io
import math
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stochmech import (
    BidLedger,
    DNBEMechanism,
    FiniteGame,
    Market,
    PowerPenalty,
    Simulation,
    Supertype,
    simulate,
    window,
)
from stochmech.cli import main
from stochmech.markets.demand_response import DemandResponseMarket
from stochmech.strategies import (
    FixedBid,
    HistoryDependent,
    StationaryMisreport,
    SupertypeLie,
    Truthful,
    shift_kernel,
)

#: generated bad inputs per API area (printed by conftest.py)
COUNTS: Counter[str] = Counter()

#: every test draws PER bad inputs per example (cheaper than one example per input)
PER = 10
MANY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def refused(area: str, name: str, call: Any, *, state: Any = None) -> None:
    """``call()`` raises ValueError/TypeError naming ``name``; ``state()`` is left as it was."""
    before = None if state is None else state()
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert name in str(info.value), f"{name!r} not named in: {info.value}"
    if state is not None:
        assert state() == before, "the object changed"
    COUNTS[area] += 1


# ----- generators of bad values -----
def not_integers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.floats().filter(lambda x: not (math.isfinite(x) and x.is_integer())),
        st.booleans(),
        st.text(max_size=3),
        st.none(),
        st.lists(st.integers(0, 3), max_size=2),
        st.complex_numbers(max_magnitude=5),
        st.builds(object),
    )


def ints_outside(lo: int | None, hi: int | None) -> st.SearchStrategy[Any]:
    parts = []
    if lo is not None:
        parts.append(st.integers(max_value=lo - 1))
        parts.append(st.integers(min_value=-(2**63), max_value=lo - 1).map(np.int64))
    if hi is not None:
        parts.append(st.integers(min_value=hi + 1))
    return st.one_of(*parts, not_integers())


def not_finite_numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([math.nan, math.inf, -math.inf]),
        st.text(max_size=3),
        st.none(),
        st.booleans(),
        st.lists(st.floats(0, 1), max_size=2),
        st.complex_numbers(max_magnitude=5),
    )


def game_and_theta(n: int = 2, k: int = 3):
    rng = np.random.default_rng(0)
    return FiniteGame(rng.normal(size=(n, k, 2, 3)), rng.normal(size=(2, 3))), rng.dirichlet(
        np.ones(k), size=n
    )


GAME, THETA = game_and_theta()


def bad_pmf_rows(shape: tuple[int, int]) -> st.SearchStrategy[Any]:
    n, k = shape

    def off(rows: list[list[float]]) -> bool:
        arr = np.array(rows, dtype=float)
        with np.errstate(over="ignore", invalid="ignore"):
            return bool(
                arr.shape != shape
                or not np.all(np.isfinite(arr))
                or np.any(arr < 0)
                or not np.all(np.abs(arr.sum(axis=1) - 1) <= 1e-9)
            )

    numbers = st.floats(allow_nan=True, allow_infinity=True, width=64)
    return st.one_of(
        st.lists(st.lists(numbers, min_size=k, max_size=k), min_size=n, max_size=n).filter(off),
        st.lists(st.lists(st.floats(0, 1), max_size=k + 1), max_size=n + 1).filter(
            lambda r: len(r) != n or any(len(row) != k for row in r)
        ),
        st.text(max_size=3),
        st.none(),
    )


# ----- mechanism, market -----
@MANY
@given(st.data())
def test_mechanism_constructor(data):
    for _ in range(PER):
        name = data.draw(st.sampled_from(["gamma", "first_stage_payment", "penalize", "penalty"]))
        value = {
            "gamma": st.one_of(not_finite_numbers(), st.floats(max_value=0.0)),
            "first_stage_payment": st.one_of(st.integers(), st.text(max_size=2), st.none()),
            "penalize": st.one_of(st.integers(), st.text(max_size=2), st.floats()),
            "penalty": st.one_of(st.integers(), st.text(max_size=2), st.floats()),
        }[name]
        bad = data.draw(value)
        refused("DNBEMechanism()", name, lambda: DNBEMechanism(GAME, **{name: bad}))


@MANY
@given(st.lists(bad_pmf_rows((2, 3)), min_size=PER, max_size=PER))
def test_market_opening(cases):
    for bids in cases:
        refused("DNBEMechanism.open()", "supertype", lambda: DNBEMechanism(GAME).open(bids))


MARKET = DNBEMechanism(GAME).open(THETA)
MARKET.clear([[0, 1], [2, 2]])


def bad_bids() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(st.integers(), min_size=2, max_size=2).filter(
            lambda b: any(not 0 <= x < 3 for x in b)
        ),
        st.lists(
            st.lists(st.integers(-5, 8), min_size=2, max_size=2), min_size=1, max_size=4
        ).filter(lambda b: any(not 0 <= x < 3 for row in b for x in row)),
        st.lists(st.floats(), min_size=2, max_size=2).filter(
            lambda b: any(not (math.isfinite(x) and x.is_integer()) for x in b)
        ),
        st.lists(st.integers(0, 2), min_size=3, max_size=5),
        st.lists(st.booleans(), min_size=2, max_size=2),
        st.lists(st.text(max_size=1), min_size=2, max_size=2),
        st.just([]),
    )


@MANY
@given(st.lists(bad_bids(), min_size=PER, max_size=PER))
def test_market_clear(cases):
    for bids in cases:
        refused("Market.clear()", "bid", lambda: MARKET.clear(bids), state=MARKET.to_bytes)


# ----- simulation -----
@MANY
@given(st.data())
def test_simulation_constructor(data):
    for _ in range(PER):
        name = data.draw(st.sampled_from(["seed", "chunk", "daily"]))
        value = {
            "seed": ints_outside(0, None),
            "chunk": ints_outside(1, 1 << 40).filter(lambda v: v is not None),  # None: default
            "daily": st.one_of(st.integers(), st.text(max_size=2), st.none()),
        }[name]
        bad = data.draw(value)
        refused("Simulation()", name, lambda: Simulation(GAME, THETA, **{name: bad}))


@MANY
@given(
    st.lists(
        st.one_of(
            bad_pmf_rows((2, 3)).map(lambda v: ("supertype", v)),
            st.lists(st.builds(Truthful), max_size=4)
            .filter(lambda s: len(s) != 2)
            .map(lambda v: ("strateg", v)),
            st.sampled_from([[1, 2], ["a", Truthful()], [None, None]]).map(
                lambda v: ("strateg", v)
            ),
        ),
        min_size=PER,
        max_size=PER,
    )
)
def test_simulation_supertypes_and_strategies(cases):
    for case in cases:
        name, value = case
        if name == "supertype":
            refused("Simulation()", name, lambda: Simulation(GAME, value))
        else:
            refused("Simulation()", name, lambda: Simulation(GAME, THETA, value))


SIM = Simulation(GAME, THETA, seed=2, chunk=50).run(60)


@MANY
@given(st.lists(ints_outside(1, (1 << 53) - 60), min_size=PER, max_size=PER))
def test_simulation_run(cases):
    for days in cases:
        refused("Simulation.run()", "days", lambda: SIM.run(days), state=SIM.to_bytes)


@MANY
@given(st.data())
def test_simulate(data):
    for _ in range(PER):
        name = data.draw(st.sampled_from(["days", "seed"]))
        bad = data.draw(
            ints_outside(1 if name == "days" else 0, None if name == "seed" else 1 << 53)
        )
        refused("simulate()", name, lambda: simulate(GAME, THETA, **{name: bad}))


def _policy_returning(value):
    def policy(own_type, history, rng):
        return value

    return policy


POLICY_SIM = Simulation(GAME, THETA, [Truthful(), Truthful()], seed=1).run(30)


@settings(MANY, max_examples=30)
@given(
    st.lists(
        st.one_of(not_integers(), st.integers(max_value=-1), st.integers(min_value=3)),
        min_size=PER,
        max_size=PER,
    )
)
def test_a_policy_returning_a_bad_bid(cases):
    for value in cases:
        sim = Simulation(GAME, THETA, [HistoryDependent(_policy_returning(value)), Truthful()])
        refused("HistoryDependent policy", "bid", lambda: sim.run(10), state=sim.to_bytes)


# ----- games, laws, penalties, strategies -----
@MANY
@given(st.data())
def test_finite_game_constructor(data):
    for _ in range(PER):
        name = data.draw(
            st.sampled_from(
                ["samples", "seed", "max_profiles", "expectation", "valuations", "cost"]
            ),
            st.data(),
        )
        v, c = GAME.valuation_table, GAME.cost_table
        value = {
            "samples": ints_outside(2, 1 << 40),
            "seed": ints_outside(0, None),
            "max_profiles": ints_outside(1, None),
            "expectation": st.one_of(st.text(max_size=4), st.none(), st.integers()),
            "valuations": st.one_of(
                st.sampled_from([math.nan, math.inf]).map(lambda x: np.where(v > 0, x, v)),
                st.just(np.full((2, 3, 2, 3), 1e308)),
                st.lists(st.floats(), max_size=3),
                st.text(max_size=2),
            ),
            "cost": st.one_of(
                st.sampled_from([math.nan, -math.inf]).map(lambda x: np.where(c > 0, x, c)),
                st.lists(st.floats(), max_size=3),
                st.just(np.zeros((3, 3))),
            ),
        }[name]
        bad = data.draw(value)
        kwargs: dict[str, Any] = {"valuations": v, "cost": c}
        kwargs[name] = bad
        refused("FiniteGame()", name, lambda: FiniteGame(**kwargs))


@MANY
@given(st.data())
def test_power_penalty(data):
    for _ in range(PER):
        name = data.draw(st.sampled_from(["scale", "exponent"]))
        bad = data.draw(
            st.one_of(not_finite_numbers(), st.floats(max_value=0 if name == "scale" else 1))
        )
        refused("PowerPenalty()", name, lambda: PowerPenalty(**{name: bad}))


@MANY
@given(st.data())
def test_supertype(data):
    for _ in range(PER):
        name = data.draw(st.sampled_from(["values", "probs"]))
        values, probs = [1.0, 2.0], [0.5, 0.5]
        bad = data.draw(
            st.one_of(
                st.lists(st.floats(), min_size=2, max_size=2).filter(
                    lambda x: (
                        not all(math.isfinite(v) and v >= 0 for v in x)
                        or abs(sum(x) - 1) > 1e-9
                        or x[0] == x[1]
                    )
                ),
                st.lists(st.floats(0, 1), max_size=4).filter(lambda x: len(x) != 2),
                st.text(max_size=2),
            )
        )
        if name == "values" and isinstance(bad, list) and len(bad) == 2:
            if all(math.isfinite(v) for v in bad) and bad[0] != bad[1]:
                bad = [bad[0], bad[0]]  # values need only be finite and distinct
        args = {"values": values, "probs": probs, name: bad}
        refused("Supertype()", name, lambda: Supertype(**args))


@MANY
@given(st.data())
def test_demand_response_market(data):
    for _ in range(PER):
        name = data.draw(st.sampled_from(["providers", "reserve", "shortage"]))
        value = {
            "providers": st.one_of(
                st.just([]),
                st.lists(st.floats(max_value=0.0), min_size=1, max_size=3),
                st.sampled_from([[math.nan], [math.inf], "ab", None, 3.0]),
            ),
            "reserve": st.one_of(st.floats(max_value=0.0), not_finite_numbers()),
            "shortage": not_finite_numbers(),
        }[name]
        bad = data.draw(value)
        args: dict[str, Any] = {"providers": [1.0, 2.0], "reserve": 1.0, "shortage": 1.0}
        args[name] = bad
        refused("DemandResponseMarket()", name, lambda: DemandResponseMarket(**args))


@MANY
@given(st.data())
def test_strategy_constructors(data):
    for _ in range(PER):
        name = data.draw(
            st.sampled_from(["bid_type", "kernel", "n_types", "steps", "coupling", "policy"])
        )
        if name == "bid_type":
            bad = data.draw(ints_outside(0, None))
            refused("strategies", name, lambda: FixedBid(bad))
        elif name == "kernel":
            bad = data.draw(bad_pmf_rows((3, 3)))
            refused("strategies", name, lambda: StationaryMisreport(bad))
        elif name in ("n_types", "steps"):
            bad = data.draw(ints_outside(1, 1 << 12) if name == "n_types" else not_integers())
            args = {"n_types": 3, "steps": 1, name: bad}
            refused("strategies", name, lambda: shift_kernel(**args))
        elif name == "coupling":
            bad = data.draw(st.one_of(st.text(max_size=3), st.none(), st.integers()))
            refused("strategies", name, lambda: SupertypeLie([0.5, 0.5], coupling=bad))
        else:
            bad = data.draw(st.one_of(st.integers(), st.text(max_size=2), st.none()))
            refused("strategies", name, lambda: HistoryDependent(bad))


@MANY
@given(st.data())
def test_window(data):
    for _ in range(PER):
        name = data.draw(st.sampled_from(["day", "gamma"]))
        if name == "day":
            bad = data.draw(ints_outside(1, 1 << 53))
            refused("window()", name, lambda: window(bad))
        else:
            bad = data.draw(st.one_of(not_finite_numbers(), st.floats(max_value=0.0)))
            refused("window()", name, lambda: window(3, bad))


LEDGER = BidLedger(THETA)
LEDGER.record([[0, 1], [1, 2]])


@MANY
@given(st.lists(bad_bids(), min_size=PER, max_size=PER))
def test_ledger_record(cases):
    for bids in cases:
        refused("BidLedger.record()", "bid", lambda: LEDGER.record(bids), state=LEDGER.to_bytes)


@MANY
@given(
    st.lists(
        st.one_of(
            bad_pmf_rows((2, 3)).map(lambda v: ("supertypes", v)),
            st.one_of(not_finite_numbers(), st.floats(max_value=0.0)).map(lambda v: ("gamma", v)),
        ),
        min_size=PER,
        max_size=PER,
    )
)
def test_ledger_constructor(cases):
    for case in cases:
        name, value = case
        if name == "gamma":
            refused("BidLedger()", name, lambda: BidLedger(THETA, gamma=value))
        else:
            refused("BidLedger()", "supertype", lambda: BidLedger(value))


# ----- a game's per-day rules -----
@MANY
@given(st.data())
def test_finite_game_outcomes(data):
    types = np.array([[0, 1], [2, 0]])
    for _ in range(PER):
        which = data.draw(st.sampled_from(["o1", "o2"]))
        if which == "o1":
            bad = data.draw(st.one_of(ints_outside(0, 1), st.just(0.5)))
            refused("FiniteGame rules", "first-stage", lambda: GAME.second_stage(bad, types))
        else:
            bad = data.draw(
                st.one_of(
                    st.lists(st.integers(-9, -1), min_size=2, max_size=2),
                    st.lists(st.integers(3, 9), min_size=2, max_size=2),
                    st.just([0.5, 1.0]),
                    st.just([True, False]),
                )
            )
            refused("FiniteGame rules", "o2", lambda: GAME.valuations(types, 0, bad))
            refused("FiniteGame rules", "o2", lambda: GAME.cost(0, bad))


# ----- loaders -----
DATA = {"market": MARKET.to_bytes(), "simulation": SIM.to_bytes()}
BIG_INT = 10**12  # bytes(BIG_INT) would try to allocate a terabyte


@MANY
@given(st.data())
def test_loaders(data):
    for _ in range(PER):
        kind = data.draw(st.sampled_from(["market", "simulation"]))
        raw = DATA[kind]
        how = data.draw(st.sampled_from(["cut", "flip", "garbage", "type"]))
        if how == "cut":
            blob: Any = raw[: data.draw(st.integers(0, len(raw) - 1))]
        elif how == "flip":
            pos = data.draw(st.integers(0, len(raw) - 1))
            blob = raw[:pos] + bytes([raw[pos] ^ data.draw(st.integers(1, 255))]) + raw[pos + 1 :]
        elif how == "garbage":
            blob = data.draw(st.binary(max_size=300))
        else:
            blob = data.draw(
                st.one_of(st.integers(), st.just(BIG_INT), st.text(max_size=3), st.none())
            )
        loader = Market.from_bytes if kind == "market" else Simulation.from_bytes
        refused("loaders", "data" if how == "type" else kind, lambda: loader(blob))


# ----- the command line -----
def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


SCENARIO = "examples/feeder-inflate.toml"
CLI_NUMBERS = {
    ("run", "--days"): 1,
    ("run", "--seed"): 0,
    ("audit", "--days"): 2,
    ("audit", "--seed"): 0,
    ("audit", "--player"): 0,
    ("audit", "--history-days"): 2,
    ("lqg", "--horizon"): 1,
    ("lqg", "--seed"): 0,
}


def cli_bad_number(lo: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(max_value=lo - 1).map(str),
        st.floats(allow_nan=True).map(repr),
        st.text(alphabet="abc.-e", min_size=1, max_size=4),
    )


@settings(MANY, max_examples=50)
@given(st.data())
def test_cli_bad_numbers(data):
    for _ in range(PER):
        option = data.draw(st.sampled_from(sorted(CLI_NUMBERS)))
        command, flag = option
        value = data.draw(cli_bad_number(CLI_NUMBERS[option]))
        if command == "lqg":
            argv = ["lqg", "run", flag, value, "--no-plots", "--json"]
        elif command == "run":
            argv = ["run", SCENARIO, flag, value, "--no-plots", "--json"]
        else:
            argv = ["audit", SCENARIO, flag, value, "--no-plots", "--json"]
        code, out, err = run_cli(argv)
        assert code == 2, (argv, code, err)
        assert out == ""
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert flag in err or flag.lstrip("-").replace("-", "_") in err, err
        COUNTS["CLI"] += 1


@settings(MANY, max_examples=20)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.integers(1, 300).map(lambda d: "a = " + "[" * d + "]" * d),
            st.sampled_from(['[game]\nkind = "finite"', "name = 3", "[[players]]\nname = 1"]),
        ),
        min_size=PER,
        max_size=PER,
    )
)
def test_cli_bad_scenario_files(tmp_path_factory, cases):
    for text in cases:
        path = tmp_path_factory.mktemp("s") / "bad.toml"
        path.write_text(text)
        code, _, err = run_cli(["run", str(path), "--no-plots", "--days", "10"])
        assert code == 2, (text, code, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        COUNTS["CLI"] += 1
