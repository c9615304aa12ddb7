"""Runs that raise part-way stay consistent, and continuing is bit-identical to never stopping."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stochmech.games.finite import FiniteGame
from stochmech.schemes import PayAsBid
from stochmech.simulation import Simulation
from stochmech.strategies import History, Strategy, Truthful

rng = np.random.default_rng(7)
V = rng.normal(size=(3, 3, 2, 2))
GAME = FiniteGame(V, rng.normal(size=(2, 2)))
THETA = np.array([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [1 / 3, 1 / 3, 1 / 3]])


class Boom(Exception):
    pass


class Noisy(Strategy):
    """Misreports at random (uses its own stream and keeps a count); raises once the day
    ``fail_day`` is reached, while ``armed``."""

    def __init__(self, fail_day: int | None = None, error: type[BaseException] = Boom) -> None:
        self.fail_day = fail_day
        self.error = error
        self.seen = 0

    def type_bids(self, types: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        flip = rng.random(types.size) < 0.3
        self.seen += types.size
        if self.fail_day is not None and self.seen >= self.fail_day:
            raise self.error("boom")
        return np.where(flip, (types + 1) % 3, types)


class NoisyHistory(Strategy):
    """History-dependent: bids yesterday's type with probability 0.5; raises on ``fail_day``."""

    history_dependent = True

    def __init__(self, fail_day: int | None = None, error: type[BaseException] = Boom) -> None:
        self.fail_day = fail_day
        self.error = error

    def type_bid(self, own_type: int, history: History, rng: np.random.Generator) -> int:
        if self.fail_day is not None and history.day + 1 >= self.fail_day:
            raise self.error("boom")
        if history.own_types and rng.random() < 0.5:
            return history.own_types[-1]
        return own_type


def _disarm(sim: Simulation) -> None:
    for s in sim.strategies:
        if hasattr(s, "fail_day"):
            s.fail_day = None


def _same(a, b) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "opening":
            np.testing.assert_array_equal(x.first_stage_payments, y.first_stage_payments)
        elif isinstance(x, np.ndarray) or f.name.endswith("path"):
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunk=st.integers(1, 40),
    days=st.integers(2, 120),
    fail=st.floats(0.0, 1.0),
    history=st.booleans(),
    keyboard=st.booleans(),
    scheme=st.sampled_from(["mechanism", "pay as bid"]),
    via_file=st.booleans(),
)
def test_raising_inside_a_strategy_then_continuing_is_bit_identical(
    tmp_path_factory, chunk, days, fail, history, keyboard, scheme, via_file
):
    fail_day = 1 + int(fail * (days - 1))
    error = KeyboardInterrupt if keyboard else Boom
    kind = NoisyHistory if history else Noisy
    mechanism = PayAsBid() if scheme == "pay as bid" else None

    def build(fail_day):
        strategies = [kind(fail_day, error), Noisy(), Truthful()]
        return Simulation(
            GAME, THETA, strategies, seed=3, chunk=chunk, daily=True, mechanism=mechanism
        )

    reference = build(None).run(days).result()
    sim = build(fail_day)
    with pytest.raises(error):
        sim.run(days)
    # the simulation stopped at the last completed chunk before the failing day
    assert sim.day % chunk == 0 and sim.day < fail_day
    if scheme == "mechanism":
        assert sim.market.day == sim.day
    assert all(h.day in (0, sim.day) for h in sim._histories)
    if via_file:
        path = tmp_path_factory.mktemp("ck") / "sim.bin"
        sim.save(path)
        # user-defined strategies are code, which a file does not store: they are given again
        own = {i: s for i, s in enumerate(sim.strategies) if type(s) is not Truthful}
        sim = Simulation.load(path, strategies=own)
    _disarm(sim)
    if days > sim.day:
        sim.run(days - sim.day)
    _same(reference, sim.result())


def test_bad_bids_leave_the_simulation_unchanged():
    class OutOfRange(Strategy):
        def type_bids(self, types, rng):
            rng.random(types.size)
            return np.full(types.size, 9)

    sim = Simulation(GAME, THETA, [Noisy(), Truthful(), Truthful()], seed=1, chunk=10)
    sim.run(25)
    before = sim.to_bytes()
    good = sim.strategies[0]
    sim.strategies[0] = OutOfRange()
    with pytest.raises(ValueError, match=r"outside (the|that player's) type space"):
        sim.run(10)
    sim.strategies[0] = good
    assert sim.day == 25
    again = Simulation.from_bytes(before, strategies={0: good})
    np.testing.assert_array_equal(
        sim.run(30).result().average_utility, again.run(30).result().average_utility
    )


def test_a_bad_scheme_output_is_refused_before_anything_changes():
    class Broken:
        name = "broken"

        def start(self, game, bids):
            return self

        o1 = 0
        opening = None

        def settle(self, types, bids, states):
            return "nonsense"

    sim = Simulation(GAME, THETA, seed=0, mechanism=Broken())
    with pytest.raises(ValueError, match="Settlement"):
        sim.run(5)
    assert sim.day == 0


class _SignalsDuringSettle:
    """Pay as bid, but a Ctrl-C arrives while the chunk is being settled."""

    name = "pay as bid"

    def __init__(self, on_day: int) -> None:
        self.on_day = on_day

    def start(self, game, bids):
        run = PayAsBid().start(game, bids)
        on_day = self.on_day
        seen = [0]

        class Run:
            o1 = run.o1
            opening = run.opening

            def settle(self, types, bids, states):
                import os
                import signal

                seen[0] += len(types)
                if seen[0] >= on_day:
                    os.kill(os.getpid(), signal.SIGINT)
                return run.settle(types, bids, states)

        return Run()


def test_ctrl_c_while_a_chunk_is_recorded_is_raised_after_the_chunk():
    strategies = [Noisy(), Noisy(), Truthful()]
    reference = Simulation(GAME, THETA, strategies, seed=5, chunk=10, mechanism=PayAsBid())
    reference.run(60)
    sim = Simulation(GAME, THETA, strategies, seed=5, chunk=10, mechanism=_SignalsDuringSettle(25))
    with pytest.raises(KeyboardInterrupt):
        sim.run(60)
    assert sim.day == 30  # the chunk being settled was completed, then the interrupt raised
    sim.market.settle = PayAsBid().start(GAME, sim.supertype_bids).settle
    sim.run(30)
    _same(reference.result(), sim.result())
