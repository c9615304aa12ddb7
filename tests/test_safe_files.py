"""Saved markets and simulations: a data-only format (docs/file-format.md) that never runs code
on load, checked field by field, written atomically and durably."""

from __future__ import annotations

import copy
import os
import pickle
import struct
import threading
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stochmech import DNBEMechanism, FiniteGame, Market, PowerPenalty, Simulation, Supertype
from stochmech._persist import Packer, read_container, write_container
from stochmech._state import MARKET_MAGIC, SIMULATION_MAGIC
from stochmech.audit.adversaries import WindowExploit
from stochmech.markets.demand_response import DemandResponseMarket
from stochmech.strategies import (
    FixedBid,
    HistoryDependent,
    StationaryMisreport,
    SupertypeLie,
    Truthful,
    shift_kernel,
)


def small_game(seed: int = 0, n: int = 3, k: int = 3):
    rng = np.random.default_rng(seed)
    game = FiniteGame(rng.normal(size=(n, k, 2, 3)), rng.normal(size=(2, 3)))
    return game, rng.dirichlet(np.ones(k), size=n)


def cleared_market(seed: int = 0, days: int = 200) -> Market:
    game, theta = small_game(seed)
    market = DNBEMechanism(game).open(theta)
    market.clear(np.random.default_rng(seed).integers(0, 3, size=(days, 3)))
    return market


class _RunsCode:
    """A pickle payload that runs a shell command when unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _v1_file(magic: bytes, payload: bytes) -> bytes:
    body = magic + struct.pack("<I", 1) + payload
    return body + struct.pack("<I", zlib.crc32(body))


def test_a_crafted_pickle_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsCode(str(marker)))
    # the old format (pickle under a CRC anyone can recompute), a bare pickle, and the pickle
    # in place of the ledger of a well-formed new file
    old_market = tmp_path / "old-market.bin"
    old_market.write_bytes(_v1_file(MARKET_MAGIC, payload))
    old_sim = tmp_path / "old-sim.bin"
    old_sim.write_bytes(_v1_file(SIMULATION_MAGIC, payload))
    with pytest.raises(ValueError, match="version 1 is not supported: it holds a pickle"):
        Market.load(old_market)
    with pytest.raises(ValueError, match="version 1 is not supported"):
        Simulation.load(old_sim)
    for loader in (Market.from_bytes, Simulation.from_bytes):
        with pytest.raises(ValueError, match="magic"):
            loader(payload)
    state, arrays = read_container(cleared_market().to_bytes(), MARKET_MAGIC, "market")
    packer = Packer()
    packer.arrays = [*arrays[:-1], np.frombuffer(payload, dtype=np.uint8)]
    with pytest.raises(ValueError, match="ledger"):
        Market.from_bytes(write_container(MARKET_MAGIC, "market", state, packer))
    assert not marker.exists()
    # the payload does run code when unpickled: the refusal above is what protects
    pickle.loads(payload)
    assert marker.exists()


def _reseal(data: bytes, magic: bytes, kind: str, edit) -> bytes:
    """``data`` with its state and arrays edited and a correct SHA-256 (a crafted file)."""
    state, arrays = read_container(data, magic, kind)
    packer = Packer()
    state, packer.arrays = edit(state, list(arrays))
    return write_container(magic, kind, state, packer)


def test_a_market_whose_ledger_does_not_match_its_bids_is_refused():
    market = cleared_market(1)
    other = cleared_market(2)  # same shape of game, other supertype bids
    _, theirs = read_container(other.to_bytes(), MARKET_MAGIC, "market")

    def swap_ledger(state, arrays):
        j = state["ledger"]["array"]
        arrays[j] = theirs[j]
        return state, arrays

    data = _reseal(market.to_bytes(), MARKET_MAGIC, "market", swap_ledger)
    with pytest.raises(ValueError, match="ledger's supertypes differ"):
        Market.from_bytes(data)

    def other_gamma(state, arrays):
        state["mechanism"]["gamma"] = 0.7
        return state, arrays

    with pytest.raises(ValueError, match="gamma"):
        Market.from_bytes(_reseal(market.to_bytes(), MARKET_MAGIC, "market", other_gamma))


def test_wrong_kind_version_and_truncation_are_named():
    market = cleared_market(3)
    data = market.to_bytes()
    with pytest.raises(ValueError, match="not a stochmech simulation file"):
        Simulation.from_bytes(data)
    future = bytearray(data)
    future[len(MARKET_MAGIC)] = 9
    with pytest.raises(ValueError, match="version 9 is not supported"):
        Market.from_bytes(bytes(future))
    with pytest.raises(ValueError, match="truncated"):
        Market.from_bytes(data[:-1])
    with pytest.raises(TypeError, match="data must be bytes"):
        Market.from_bytes(12)  # type: ignore[arg-type]

    def relabel(state, arrays):
        return state, arrays

    state, arrays = read_container(data, MARKET_MAGIC, "market")
    packer = Packer()
    packer.arrays = list(arrays)
    foreign = write_container(MARKET_MAGIC, "simulation", state, packer)
    with pytest.raises(ValueError, match="holds a 'simulation', not a 'market'"):
        Market.from_bytes(foreign)
    assert Market.from_bytes(_reseal(data, MARKET_MAGIC, "market", relabel)).day == market.day


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_garbled_files_give_only_value_errors(data):
    sources = [
        (Market, cleared_market(4, 50).to_bytes()),
        (Simulation, _fuzz_sim_bytes()),
    ]
    cls, raw = data.draw(st.sampled_from(sources))
    how = data.draw(st.sampled_from(["cut", "flip", "splice", "garbage"]))
    if how == "cut":
        blob = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        pos = data.draw(st.integers(0, len(raw) - 1))
        blob = raw[:pos] + bytes([raw[pos] ^ data.draw(st.integers(1, 255))]) + raw[pos + 1 :]
    elif how == "splice":
        pos = data.draw(st.integers(0, len(raw)))
        blob = raw[:pos] + data.draw(st.binary(min_size=1, max_size=40)) + raw[pos:]
    else:
        blob = data.draw(st.binary(max_size=200))
    with pytest.raises(ValueError):
        cls.from_bytes(blob)


_SIM_BYTES: list[bytes] = []


def _fuzz_sim_bytes() -> bytes:
    if not _SIM_BYTES:
        game, theta = small_game(5)
        _SIM_BYTES.append(Simulation(game, theta, seed=1).run(100).to_bytes())
    return _SIM_BYTES[0]


def _json_mutations():
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
        st.just({"array": 0}),
        st.just({"$": "float", "v": "nan"}),
    )
    return st.recursive(
        leaf,
        lambda kids: (
            st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3)
        ),
        max_leaves=6,
    )


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for j, value in enumerate(node):
            yield from _paths(value, (*prefix, j))


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_crafted_headers_with_valid_checksums_give_only_value_errors(data):
    """Any field replaced by any JSON value, under a correct SHA-256: a ValueError or a file
    that loads (when the replacement happens to be valid), never another exception."""
    cls, magic, kind, raw = data.draw(
        st.sampled_from(
            [
                (Market, MARKET_MAGIC, "market", cleared_market(4, 50).to_bytes()),
                (Simulation, SIMULATION_MAGIC, "simulation", _fuzz_sim_bytes()),
            ]
        )
    )
    state, _ = read_container(raw, magic, kind)
    paths = [p for p in _paths(state) if p]
    path = data.draw(st.sampled_from(paths))
    new = data.draw(_json_mutations())

    def edit(state, arrays):
        node = state
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = new
        return state, arrays

    try:
        crafted = _reseal(raw, magic, kind, edit)
    except ValueError:
        return  # not JSON-able (e.g. a huge float): cannot even be written
    try:
        cls.from_bytes(crafted)
    except ValueError:
        pass


def test_markets_of_every_built_in_kind_round_trip_exactly():
    dr = DemandResponseMarket(
        [Supertype([0.5, 2.0], [0.5, 0.5]), Supertype([1.0, 3.0], [0.3, 0.7]), 4.0],
        reserve=Supertype([1.0, 2.0], [0.4, 0.6]),
        shortage=Supertype([0.5, 1.5], [0.5, 0.5]),
    )
    game, theta = small_game(6)
    mc = FiniteGame(game.valuation_table, game.cost_table, expectation="monte-carlo", samples=500)
    cases = [
        (DNBEMechanism(dr, gamma=0.3, penalty=PowerPenalty(2.0, 1.2)), dr.supertype_bids(), dr),
        (DNBEMechanism(mc, first_stage_payment=False, penalize=False), theta, mc),
    ]
    for mech, bids, g in cases:
        market = mech.open(bids)
        rng = np.random.default_rng(0)
        types = rng.integers(0, g.type_counts, size=(300, g.n_players))  # own type spaces
        states = g.sample_states(rng, 600)
        market.clear(types, None if states is None else states[:300])
        back = Market.from_bytes(market.to_bytes())
        assert back.to_bytes() == market.to_bytes()
        rest = None if states is None else states[300:]
        a = market.clear(types, rest)
        b = back.clear(types, rest)
        np.testing.assert_array_equal(a.total, b.total)
        np.testing.assert_array_equal(a.o2, b.o2)


def _times_two(days):
    return 2.0 * np.asarray(days, dtype=float) ** 1.5


def test_a_custom_penalty_or_game_must_be_given_again():
    game, theta = small_game(7)
    market = DNBEMechanism(game, penalty=_times_two).open(theta)
    market.clear([[0, 1, 2]] * 5)
    data = market.to_bytes()
    with pytest.raises(ValueError, match=r"user-defined penalty schedule.*pass it again"):
        Market.from_bytes(data)
    back = Market.from_bytes(data, penalty=_times_two)
    assert back.day == 5 and back.mechanism.penalty is _times_two
    with pytest.raises(ValueError, match="do not pass game="):
        Market.from_bytes(data, game=game, penalty=_times_two)
    with pytest.raises(TypeError, match="penalty must be callable"):
        Market.from_bytes(data, penalty=3)

    class MyGame(FiniteGame):
        pass

    mine = MyGame(game.valuation_table, game.cost_table)
    market = DNBEMechanism(mine).open(theta)
    data = market.to_bytes()
    with pytest.raises(ValueError, match=r"user-defined class.*MyGame.*pass it again as game="):
        Market.from_bytes(data)
    assert Market.from_bytes(data, game=mine).game is mine
    smaller, _ = small_game(7, n=2)
    with pytest.raises(ValueError, match="n_players"):
        Market.from_bytes(data, game=MyGame(smaller.valuation_table, smaller.cost_table))


def flip_after_odd(own_type, history, rng):
    if history.outcomes and history.outcomes[-1] % 2 == 1:
        return (own_type + 1) % history.context.n_types
    return own_type


def _assert_same_result(a, b):
    for field in (
        "average_utility",
        "average_payment",
        "penalty_days",
        "last_penalty_day",
        "checkpoints",
        "utility_path",
        "welfare_path",
        "budget_path",
        "penalty_path",
        "daily_utility",
        "daily_flags",
    ):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert (a.average_welfare, a.budget) == (b.average_welfare, b.budget)


def test_every_built_in_strategy_resumes_bit_identically(tmp_path):
    game, theta = small_game(8, n=4)
    adv = np.random.default_rng(1).normal(size=(3, 3))
    strategies = [
        SupertypeLie([0.2, 0.3, 0.5]),
        FixedBid(1, supertype_bid=[0.1, 0.8, 0.1]),
        WindowExploit(adv, margin=0.8),
        StationaryMisreport(shift_kernel(3, 1), supertype_bid="truthful"),
    ]
    once = Simulation(game, theta, strategies, seed=3, chunk=500, daily=True).run(2500).result()
    sim = Simulation(game, theta, strategies, seed=3, chunk=500, daily=True).run(1100)
    sim.save(tmp_path / "s.bin")
    back = Simulation.load(tmp_path / "s.bin")
    assert back.to_bytes() == sim.to_bytes()
    _assert_same_result(once, back.run(1400).result())
    # in-process copies (pickle, deepcopy) go through the same bytes
    twin = pickle.loads(pickle.dumps(sim))
    _assert_same_result(once, twin.run(1400).result())
    _assert_same_result(once, copy.deepcopy(sim).run(1400).result())


def test_a_supplied_strategy_is_checked_and_copies_keep_it(tmp_path):
    game, theta = small_game(9)
    sim = Simulation(game, theta, [HistoryDependent(flip_after_odd), Truthful(), Truthful()])
    sim.run(300)
    data = sim.to_bytes()
    with pytest.raises(ValueError, match="declares"):
        Simulation.from_bytes(
            data, strategies={0: HistoryDependent(flip_after_odd, supertype_bid=[1.0, 0, 0])}
        )
    with pytest.raises(ValueError, match="stores the strategy of player 1"):
        Simulation.from_bytes(data, strategies={0: HistoryDependent(flip_after_odd), 1: Truthful()})
    with pytest.raises(ValueError, match="player 7"):
        Simulation.from_bytes(data, strategies={0: HistoryDependent(flip_after_odd), 7: Truthful()})
    with pytest.raises(TypeError, match="mapping"):
        Simulation.from_bytes(data, strategies=[HistoryDependent(flip_after_odd)])
    once = Simulation(game, theta, [HistoryDependent(flip_after_odd), Truthful(), Truthful()])
    once = once.run(900).result()
    back = Simulation.from_bytes(data, strategies={0: HistoryDependent(flip_after_odd)})
    _assert_same_result(once, back.run(600).result())
    lam = Simulation(game, theta, [HistoryDependent(lambda t, h, r: t), Truthful(), Truthful()])
    assert copy.deepcopy(lam.run(10)).run(5).day == 15


def test_saves_are_atomic_under_concurrent_writers_and_readers(tmp_path):
    target = tmp_path / "m.bin"
    markets = [cleared_market(s, 100 + 50 * s) for s in range(4)]
    expected = {m.to_bytes() for m in markets}
    markets[0].save(target)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(m):
        try:
            for _ in range(15):
                m.save(target)
        except BaseException as err:  # pragma: no cover - the failure being tested
            errors.append(err)

    def reader():
        try:
            while not stop.is_set():
                data = target.read_bytes()
                assert data in expected, f"a reader saw a partial file of {len(data)} bytes"
        except BaseException as err:  # pragma: no cover
            errors.append(err)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(m,)) for m in markets]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors[:3]
    assert Market.load(target).to_bytes() in expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


def test_an_interrupted_save_leaves_the_old_file_and_no_litter(tmp_path, monkeypatch):
    target = tmp_path / "m.bin"
    old = cleared_market(1)
    old.save(target)
    before = target.read_bytes()
    calls = []

    def interrupted_fsync(fd):
        calls.append(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        cleared_market(2).save(target)
    monkeypatch.undo()
    assert calls and target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


def test_save_destinations_are_checked(tmp_path):
    market = cleared_market(1)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="is a folder"):
        market.save(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        market.save(tmp_path / "afile" / "m.bin")
    with pytest.raises(ValueError, match="does not exist"):
        market.save(tmp_path / "missing" / "m.bin")
    with pytest.raises(ValueError, match="cannot read market file"):
        Market.load(tmp_path / "missing.bin")
    with pytest.raises(TypeError, match="path must be"):
        market.save(3)  # type: ignore[arg-type]


def test_simulations_under_other_schemes_round_trip():
    from stochmech.schemes import PayAsBid, PostedPrice

    dr = DemandResponseMarket([Supertype([0.5, 2.0], [0.5, 0.5]), 1.0, 3.0], reserve=2.0)
    theta = dr.supertype_bids()
    for scheme in (PayAsBid(), PostedPrice(0.7), PostedPrice()):
        once = Simulation(dr, theta, seed=4, chunk=64, mechanism=scheme).run(300).result()
        sim = Simulation(dr, theta, seed=4, chunk=64, mechanism=scheme).run(130)
        back = Simulation.from_bytes(sim.to_bytes())
        assert type(back.scheme) is type(scheme) and back.market.o1 == sim.market.o1
        _assert_same_result(once, back.run(170).result())

    class MyScheme(PayAsBid):
        pass

    sim = Simulation(dr, theta, seed=4, mechanism=MyScheme()).run(20)
    data = sim.to_bytes()
    with pytest.raises(ValueError, match=r"user-defined class.*MyScheme.*mechanism="):
        Simulation.from_bytes(data)
    assert Simulation.from_bytes(data, mechanism=MyScheme()).run(5).day == 25
