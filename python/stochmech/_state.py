"""Markets and simulations to and from the safe container of :mod:`stochmech._persist`.

Everything is stored as data (see ``docs/file-format.md``): built-in games, penalty schedules
and strategies by their class name and parameters, random streams by their bit-generator
state, the ledger by its own byte state. Objects of user-defined classes (a custom game, a
penalty callable, a :class:`~stochmech.strategies.HistoryDependent` policy, ...) cannot be
stored without code: the file records their class and description, and the loader asks for
them again (``game=``, ``penalty=``, ``strategies={player: strategy}``). Pickling (in-process
copies) goes through the same bytes and hands those objects along.

Loading rebuilds objects through their validating constructors and checks every field
against the others; anything wrong raises ``ValueError`` naming the field.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from stochmech._persist import Packer, read_container, write_container
from stochmech._seeding import seed_record

if TYPE_CHECKING:
    from stochmech.mechanism import Market
    from stochmech.simulation import Simulation

MARKET_MAGIC = b"STOCHMECH-MARKET\n"
SIMULATION_MAGIC = b"STOCHMECH-SIMULATION\n"

_INT64 = (-(1 << 63), (1 << 63) - 1)


class _Bad(ValueError):
    """An inconsistent field (turned into a ValueError naming the file kind)."""


# ---------------------------------------------------------------------------------------------
# reading helpers: every access names the field it checks
# ---------------------------------------------------------------------------------------------
def _get_seed(r: _Reader, value: Any, where: str) -> int | np.random.SeedSequence:
    """A seed saved by ``seed_record``: an int, or a SeedSequence's entropy and spawn key."""
    if not isinstance(value, dict):
        return r.int_(value, where, 0, 1 << 256)
    rec = r.obj(value, where, {"entropy", "spawn_key"})
    entropy = rec["entropy"]
    words = entropy if isinstance(entropy, list) else [entropy]
    for w in words:
        r.int_(w, f"{where} entropy", 0, 1 << 256)
    key = rec["spawn_key"]
    if not isinstance(key, list):
        raise _Bad(f"{where} spawn_key must be a list of integers, got {key!r:.60}")
    spawn_key = tuple(r.int_(k, f"{where} spawn_key", 0, 1 << 64) for k in key)
    return np.random.SeedSequence(entropy, spawn_key=spawn_key)


class _Reader:
    def __init__(self, arrays: list[np.ndarray]) -> None:
        self.arrays = arrays
        self.used: set[int] = set()

    def obj(self, value: Any, where: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict) or set(value) != keys:
            found = sorted(value) if isinstance(value, dict) else type(value).__name__
            raise _Bad(f"{where} must have the fields {sorted(keys)}, found {found}")
        return value

    def int_(self, value: Any, where: str, lo: int = _INT64[0], hi: int = _INT64[1]) -> int:
        if type(value) is not int or not lo <= value <= hi:
            raise _Bad(f"{where} must be an integer in [{lo}, {hi}], got {value!r:.60}")
        return value

    def float_(self, value: Any, where: str) -> float:
        if type(value) not in (int, float) or not math.isfinite(value):
            raise _Bad(f"{where} must be a finite number, got {value!r:.60}")
        return float(value)

    def bool_(self, value: Any, where: str) -> bool:
        if type(value) is not bool:
            raise _Bad(f"{where} must be true or false, got {value!r:.60}")
        return value

    def str_(self, value: Any, where: str, choices: tuple[str, ...] | None = None) -> str:
        if type(value) is not str or (choices is not None and value not in choices):
            expected = "a string" if choices is None else f"one of {list(choices)}"
            raise _Bad(f"{where} must be {expected}, got {value!r:.60}")
        return value

    def array(
        self, ref: Any, where: str, kind: str = "f", shape: tuple[int | None, ...] | None = None
    ) -> np.ndarray:
        if not isinstance(ref, dict) or set(ref) != {"array"}:
            raise _Bad(f"{where} must refer to an array, got {ref!r:.60}")
        j = ref["array"]
        if type(j) is not int or not 0 <= j < len(self.arrays):
            raise _Bad(f"{where} refers to array {j!r:.20}, which the file does not hold")
        if j in self.used:
            raise _Bad(f"{where} refers to array {j}, which another field uses")
        self.used.add(j)
        arr = self.arrays[j]
        if arr.dtype.kind not in kind:
            raise _Bad(f"{where} has dtype {arr.dtype}, expected kind {kind!r}")
        if shape is not None and (
            arr.ndim != len(shape)
            or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True))
        ):
            want = tuple("*" if s is None else s for s in shape)
            raise _Bad(f"{where} has shape {arr.shape}, expected {want}")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise _Bad(f"{where} holds a non-finite number")
        return arr

    def value(self, tagged: Any, where: str) -> Any:
        """A value written by :func:`_put_value`."""
        if tagged is None or type(tagged) in (bool, int, str):
            return tagged
        if type(tagged) is float:
            return tagged
        if not isinstance(tagged, dict) or not isinstance(tagged.get("$"), str):
            raise _Bad(f"{where} is not a tagged value: {tagged!r:.60}")
        tag = tagged["$"]
        if tag == "float":
            self.obj(tagged, where, {"$", "v"})
            text = self.str_(tagged["v"], where, ("nan", "inf", "-inf"))
            return float(text)
        if tag in ("list", "tuple"):
            self.obj(tagged, where, {"$", "v"})
            if not isinstance(tagged["v"], list):
                raise _Bad(f"{where} must hold a list")
            items = [self.value(x, f"{where}[{j}]") for j, x in enumerate(tagged["v"])]
            return items if tag == "list" else tuple(items)
        if tag == "ndarray":
            self.obj(tagged, where, {"$", "v"})
            return self.array(tagged["v"], where, "biuf")
        if tag == "scalar":
            self.obj(tagged, where, {"$", "v"})
            return self.array(tagged["v"], where, "biuf", ())[()]
        if tag == "rows":
            self.obj(tagged, where, {"$", "v"})
            arr = self.array(tagged["v"], where, "biuf")
            if arr.ndim == 0:
                raise _Bad(f"{where} must hold rows")
            return list(arr)
        if tag == "nones":
            self.obj(tagged, where, {"$", "n"})
            return [None] * self.int_(tagged["n"], where, 0, 1 << 40)
        raise _Bad(f"{where} has the unknown tag {tag!r:.40}")


def _put_value(value: Any, packer: Packer, what: str) -> Any:
    """A JSON form of a plain value (numbers, strings, arrays, lists and tuples of them)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, np.generic):
        return {"$": "scalar", "v": packer.array(value, what)}
    if isinstance(value, float):
        value = float(value)
        if math.isfinite(value):
            return value
        return {"$": "float", "v": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, np.ndarray):
        return {"$": "ndarray", "v": packer.array(value, what)}
    if isinstance(value, (list, tuple)):
        if isinstance(value, list) and value and all(v is None for v in value):
            return {"$": "nones", "n": len(value)}
        if isinstance(value, list) and value and _same_numpy(value):
            return {"$": "rows", "v": packer.array(np.stack(value), what)}
        tag = "list" if isinstance(value, list) else "tuple"
        return {"$": tag, "v": [_put_value(v, packer, f"{what}[{j}]") for j, v in enumerate(value)]}
    raise ValueError(f"{what} is a {type(value).__name__}, which cannot be saved")


def _same_numpy(items: list[Any]) -> bool:
    first = items[0]
    if not isinstance(first, (np.ndarray, np.generic)) or first.dtype.kind not in "biuf":
        return False
    return all(
        isinstance(v, type(first)) and v.dtype == first.dtype and v.shape == first.shape
        for v in items
    )


# ---------------------------------------------------------------------------------------------
# games, penalties, strategies, random streams
# ---------------------------------------------------------------------------------------------
def _class_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _supplied(obj: Any, role: str, packer: Packer) -> dict[str, Any]:
    packer.supplied[role] = obj
    return {"kind": "supplied", "class": _class_name(obj), "description": repr(obj)[:300]}


def _put_supertype(law: Any, packer: Packer, what: str) -> dict[str, Any]:
    return {"values": packer.array(law.values, what), "probs": packer.array(law.probs, what)}


def _put_game(game: Any, packer: Packer) -> dict[str, Any]:
    from stochmech.games.finite import FiniteGame
    from stochmech.markets.demand_response import DemandResponseMarket

    if type(game) is FiniteGame:
        tv = game.type_values
        counts = [int(k) for k in game.type_counts]
        if game.ragged:  # each player's own types: one table (and value list) per player
            valuations: Any = [
                packer.array(game.valuation_table[i, :k], "game valuations")
                for i, k in enumerate(counts)
            ]
            per_player = game._player_values
            values: Any = (
                None
                if per_player is None
                else [packer.array(v, "game type values") for v in per_player]
            )
        else:
            valuations = packer.array(game.valuation_table, "game valuations")
            values = None if tv is None else packer.array(tv, "game type values")
        return {
            "kind": "FiniteGame",
            "valuations": valuations,
            "cost": packer.array(game.cost_table, "game cost"),
            "type_values": values,
            "expectation": game.expectation,
            "samples": game.samples,
            "seed": seed_record(game.seed),
            "max_profiles": game.max_profiles,
        }
    if type(game) is DemandResponseMarket:
        return {
            "kind": "DemandResponseMarket",
            "providers": [_put_supertype(p, packer, "provider") for p in game.providers],
            "reserve": _put_supertype(game.reserve, packer, "reserve"),
            "shortage": _put_supertype(game.shortage, packer, "shortage"),
            "type_values": [packer.array(lv, "provider levels") for lv in game.levels],
            "quadrature": {
                f.name: getattr(game.quadrature, f.name) for f in fields(game.quadrature)
            },
        }
    state = _supplied(game, "game", packer)
    state.update(n_players=int(game.n_players), n_types=int(game.n_types))
    return state


def _get_supertype(r: _Reader, state: Any, where: str) -> Any:
    from stochmech.supertype import Supertype

    state = r.obj(state, where, {"values", "probs"})
    return Supertype(
        r.array(state["values"], f"{where} values", "f", (None,)),
        r.array(state["probs"], f"{where} probs", "f", (None,)),
    )


def _get_game(r: _Reader, state: Any, supplied: Any) -> Any:
    from stochmech.games.base import TwoStageGame

    if not isinstance(state, dict):
        raise _Bad("the game must be described by a JSON object")
    kind = r.str_(
        state.get("kind"), "game kind", ("FiniteGame", "DemandResponseMarket", "supplied")
    )
    if kind == "supplied":
        state = r.obj(state, "game", {"kind", "class", "description", "n_players", "n_types"})
        if supplied is None:
            raise ValueError(
                f"this file was saved with a game of the user-defined class {state['class']!r:.200}"
                f" ({state['description']!r:.120}), which cannot be stored without code; "
                "pass it again as game="
            )
        if not isinstance(supplied, TwoStageGame):
            raise TypeError(f"game must be a TwoStageGame, got {type(supplied).__name__}")
        for field in ("n_players", "n_types"):
            if getattr(supplied, field) != state[field]:
                raise ValueError(
                    f"the game given has {field} = {getattr(supplied, field)!r}, the saved one "
                    f"{state[field]!r}"
                )
        return supplied
    if supplied is not None:
        raise ValueError(f"this file stores its game (a {kind}); do not pass game=")
    if kind == "FiniteGame":
        from stochmech.games.finite import FiniteGame

        keys = {"kind", "valuations", "cost", "type_values", "expectation", "samples", "seed"}
        state = r.obj(state, "game", keys | {"max_profiles"})
        tv = state["type_values"]
        v_state = state["valuations"]
        if isinstance(v_state, list):  # per-player tables (own type spaces)
            valuations: Any = [
                r.array(x, f"game valuations of player {i}", "f", (None,) * 3)
                for i, x in enumerate(v_state)
            ]
        else:
            valuations = r.array(v_state, "game valuations", "f", (None,) * 4)
        if isinstance(tv, list):
            type_values: Any = [
                r.array(x, f"game type values of player {i}", "f", (None,))
                for i, x in enumerate(tv)
            ]
        else:
            type_values = None if tv is None else r.array(tv, "game type values", "f", (None,))
        return FiniteGame(
            valuations,
            r.array(state["cost"], "game cost", "f", (None, None)),
            type_values=type_values,
            expectation=r.str_(state["expectation"], "game expectation"),
            samples=r.int_(state["samples"], "game samples", 2),
            seed=_get_seed(r, state["seed"], "game seed"),
            max_profiles=r.int_(state["max_profiles"], "game max_profiles", 1),
        )
    from stochmech.markets._inverse_sum import LaplaceQuadrature
    from stochmech.markets.demand_response import DemandResponseMarket

    keys = {"kind", "providers", "reserve", "shortage", "type_values", "quadrature"}
    state = r.obj(state, "game", keys)
    if not isinstance(state["providers"], list):
        raise _Bad("game providers must be a list")
    quad_names = {f.name for f in fields(LaplaceQuadrature)}
    quad = r.obj(state["quadrature"], "game quadrature", quad_names)
    return DemandResponseMarket(
        [_get_supertype(r, p, f"provider {j}") for j, p in enumerate(state["providers"])],
        _get_supertype(r, state["reserve"], "reserve"),
        _get_supertype(r, state["shortage"], "shortage"),
        type_values=(
            [
                r.array(x, f"levels of provider {i}", "f", (None,))
                for i, x in enumerate(state["type_values"])
            ]
            if isinstance(state["type_values"], list)  # each provider's own levels
            else r.array(state["type_values"], "game type values", "f", (None,))
        ),
        quadrature=LaplaceQuadrature(
            **{k: r.float_(v, f"game quadrature {k}") for k, v in quad.items()}
        ),
    )


def _put_penalty(penalty: Any, packer: Packer) -> dict[str, Any]:
    from stochmech.ledger import PowerPenalty

    if type(penalty) is PowerPenalty:
        return {"kind": "power", "scale": penalty.scale, "exponent": penalty.exponent}
    return _supplied(penalty, "penalty", packer)


def _get_penalty(r: _Reader, state: Any, supplied: Any) -> Any:
    from stochmech.ledger import PowerPenalty

    if not isinstance(state, dict):
        raise _Bad("the penalty schedule must be described by a JSON object")
    kind = r.str_(state.get("kind"), "penalty kind", ("power", "supplied"))
    if kind == "supplied":
        state = r.obj(state, "penalty", {"kind", "class", "description"})
        if supplied is None:
            raise ValueError(
                f"this file was saved with a user-defined penalty schedule "
                f"({state['description']!r:.120}), which cannot be stored without code; "
                "pass it again as penalty="
            )
        if not callable(supplied):
            raise TypeError(f"penalty must be callable, got {type(supplied).__name__}")
        return supplied
    if supplied is not None:
        raise ValueError(
            "this file stores its penalty schedule (a PowerPenalty); do not pass penalty="
        )
    state = r.obj(state, "penalty", {"kind", "scale", "exponent"})
    return PowerPenalty(
        r.float_(state["scale"], "penalty scale"), r.float_(state["exponent"], "penalty exponent")
    )


def _strategy_codecs() -> dict[str, tuple[type, tuple[str, ...], tuple[str, ...]]]:
    """Built-in strategies: class, constructor parameters (attribute names), running state."""
    from stochmech.audit.adversaries import WindowExploit
    from stochmech.strategies import FixedBid, StationaryMisreport, SupertypeLie, Truthful

    return {
        "Truthful": (Truthful, (), ()),
        "StationaryMisreport": (StationaryMisreport, ("kernel", "_declared"), ()),
        "SupertypeLie": (SupertypeLie, ("bid", "coupling"), ()),
        "FixedBid": (FixedBid, ("bid_type", "_declared"), ()),
        "WindowExploit": (
            WindowExploit,
            ("advantage", "gamma", "margin", "_declared"),
            ("_counts", "_seen"),
        ),
    }


def _put_strategy(s: Any, player: int, packer: Packer) -> dict[str, Any]:
    for name, (cls, params, running) in _strategy_codecs().items():
        if type(s) is cls:
            where = f"strategy of player {player}"
            return {
                "kind": name,
                "params": [_put_value(getattr(s, a), packer, where) for a in params],
                "running": [_put_value(getattr(s, a, None), packer, where) for a in running],
            }
    supplied = packer.supplied.setdefault("strategies", {})
    supplied[player] = s
    return {"kind": "supplied", "class": _class_name(s), "description": s.describe()[:300]}


def _get_strategy(
    r: _Reader, state: Any, player: int, supplied: Mapping[int, Any]
) -> tuple[Any, bool]:
    """The strategy of ``player`` and whether it still needs ``prepare`` (a fresh object)."""
    from stochmech.strategies import Strategy

    where = f"strategy of player {player}"
    codecs = _strategy_codecs()
    if not isinstance(state, dict):
        raise _Bad(f"{where} must be described by a JSON object")
    kind = r.str_(state.get("kind"), f"{where} kind", (*codecs, "supplied"))
    if kind == "supplied":
        state = r.obj(state, where, {"kind", "class", "description"})
        if player not in supplied:
            raise ValueError(
                f"player {player} played {state['description']!r:.120} (class "
                f"{state['class']!r:.200}), a strategy holding code, which a file cannot store; "
                f"pass it again with strategies={{{player}: ...}}"
            )
        s = supplied[player]
        if not isinstance(s, Strategy):
            raise TypeError(f"strategies[{player}] must be a Strategy, got {type(s).__name__}")
        return s, True
    if player in supplied:
        raise ValueError(f"this file stores the strategy of player {player}; do not pass it")
    cls, params, running = codecs[kind]
    state = r.obj(state, where, {"kind", "params", "running"})
    if not isinstance(state["params"], list) or len(state["params"]) != len(params):
        raise _Bad(f"{where} must have {len(params)} parameters")
    if not isinstance(state["running"], list) or len(state["running"]) != len(running):
        raise _Bad(f"{where} must have {len(running)} running values")
    args = [r.value(v, where) for v in state["params"]]
    s = cls(*args)
    s._saved_running = {  # applied after prepare (which resets it)
        name: r.value(v, where) for name, v in zip(running, state["running"], strict=True)
    }
    return s, True


def _put_rng(rng: np.random.Generator, what: str) -> dict[str, Any]:
    state = rng.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise ValueError(f"{what} uses {state.get('bit_generator')!r}; only PCG64 can be saved")
    return {
        "state": int(state["state"]["state"]),
        "inc": int(state["state"]["inc"]),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _get_rng(r: _Reader, state: Any, where: str) -> np.random.Generator:
    state = r.obj(state, where, {"state", "inc", "has_uint32", "uinteger"})
    full: Any = {
        "bit_generator": "PCG64",
        "state": {
            "state": r.int_(state["state"], f"{where} state", 0, (1 << 128) - 1),
            "inc": r.int_(state["inc"], f"{where} inc", 0, (1 << 128) - 1),
        },
        "has_uint32": r.int_(state["has_uint32"], f"{where} has_uint32", 0, 1),
        "uinteger": r.int_(state["uinteger"], f"{where} uinteger", 0, (1 << 32) - 1),
    }
    bits = np.random.PCG64(0)
    bits.state = full
    return np.random.Generator(bits)


# ---------------------------------------------------------------------------------------------
# markets
# ---------------------------------------------------------------------------------------------
def _put_market(market: Market, packer: Packer) -> dict[str, Any]:
    mech = market.mechanism
    op = market.opening
    return {
        "game": _put_game(mech.game, packer),
        "mechanism": {
            "gamma": mech.gamma,
            "penalty": _put_penalty(mech.penalty, packer),
            "first_stage_payment": mech.first_stage_payment,
            "penalize": mech.penalize,
        },
        "supertype_bids": packer.array(market.supertype_bids, "supertype bids"),
        "opening": {
            "o1": _put_value(op.o1, packer, "first-stage outcome"),
            "welfare": _put_value(float(op.welfare), packer, "welfare"),
            "welfare_without": packer.array(op.welfare_without, "welfare without"),
            "expected_valuations": packer.array(op.expected_valuations, "expected valuations"),
            "first_stage_payments": packer.array(op.first_stage_payments, "first-stage payments"),
        },
        "ledger": packer.array(np.frombuffer(market.ledger.to_bytes(), dtype=np.uint8), "ledger"),
    }


def _get_market(r: _Reader, state: Any, supplied: Mapping[str, Any]) -> Market:
    from stochmech.ledger import BidLedger
    from stochmech.mechanism import DNBEMechanism, Market, Opening, check_supertypes

    state = r.obj(state, "market", {"game", "mechanism", "supertype_bids", "opening", "ledger"})
    game = _get_game(r, state["game"], supplied.get("game"))
    mstate = r.obj(
        state["mechanism"], "mechanism", {"gamma", "penalty", "first_stage_payment", "penalize"}
    )
    mechanism = DNBEMechanism(
        game,
        gamma=r.float_(mstate["gamma"], "mechanism gamma"),
        penalty=_get_penalty(r, mstate["penalty"], supplied.get("penalty")),
        first_stage_payment=r.bool_(mstate["first_stage_payment"], "first_stage_payment"),
        penalize=r.bool_(mstate["penalize"], "penalize"),
    )
    n, k = game.n_players, game.n_types
    bids = check_supertypes(game, r.array(state["supertype_bids"], "supertype bids", "f", (n, k)))
    ostate = r.obj(
        state["opening"],
        "opening",
        {"o1", "welfare", "welfare_without", "expected_valuations", "first_stage_payments"},
    )
    welfare = r.value(ostate["welfare"], "opening welfare")
    opening = Opening(
        o1=r.value(ostate["o1"], "first-stage outcome"),
        welfare=r.float_(welfare, "opening welfare"),
        welfare_without=r.array(ostate["welfare_without"], "welfare without", "f", (n,)),
        expected_valuations=r.array(
            ostate["expected_valuations"], "expected valuations", "f", (n,)
        ),
        first_stage_payments=r.array(
            ostate["first_stage_payments"], "first-stage payments", "f", (n,)
        ),
    )
    if not mechanism.first_stage_payment and np.any(opening.first_stage_payments != 0):
        raise _Bad("first-stage payments are not zero although the mechanism charges none")
    ledger = BidLedger.from_bytes(
        r.array(state["ledger"], "ledger", "u", (None,)).tobytes(), penalty=mechanism.penalty
    )
    counts = tuple(int(c) for c in game.type_counts)
    if ledger.n_players != n or ledger.type_counts != counts:
        raise _Bad(
            f"the ledger is for {ledger.n_players} players with {ledger.type_counts[:8]} types, "
            f"the game has {n} with {counts[:8]}"
        )
    saved = ledger.supertypes
    saved_rows = list(saved) if isinstance(saved, list) else list(np.asarray(saved))
    if not all(np.array_equal(a, bids[i, : counts[i]]) for i, a in enumerate(saved_rows)):
        raise _Bad("the ledger's supertypes differ from the market's supertype bids")
    if ledger.gamma != mechanism.gamma:
        raise _Bad(
            f"the ledger's gamma {ledger.gamma} differs from the mechanism's {mechanism.gamma}"
        )
    market = Market.__new__(Market)
    market.mechanism = mechanism
    market.supertype_bids = bids
    market.opening = opening
    market.ledger = ledger
    market._lock = threading.RLock()
    return market


def check_supplied(
    game: Any, penalty: Any, strategies: Any, mechanism: Any = None
) -> dict[str, Any]:
    """The objects given to a loader, checked to be of the right kind."""
    from stochmech.games.base import TwoStageGame
    from stochmech.strategies import Strategy

    if game is not None and not isinstance(game, TwoStageGame):
        raise TypeError(f"game must be a TwoStageGame or None, got {type(game).__name__}")
    if penalty is not None and not callable(penalty):
        raise TypeError(f"penalty must be callable or None, got {type(penalty).__name__}")
    if strategies is not None:
        if not isinstance(strategies, Mapping):
            raise TypeError(
                "strategies must be a mapping {player: Strategy} or None, got "
                f"{type(strategies).__name__}"
            )
        for key, value in strategies.items():
            if type(key) is not int:
                raise TypeError(f"strategies keys must be player indices (int), got {key!r}")
            if not isinstance(value, Strategy):
                raise TypeError(f"strategies[{key}] must be a Strategy, got {type(value).__name__}")
    if mechanism is not None and not callable(getattr(mechanism, "start", None)):
        raise TypeError(
            f"mechanism must be a payment scheme or None, got {type(mechanism).__name__}"
        )
    return {
        "game": game,
        "penalty": penalty,
        "strategies": dict(strategies or {}),
        "mechanism": mechanism,
    }


#: errors a data-driven reconstruction can raise on a crafted file (turned into ValueError)
_DECODE_ERRORS = (TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError)


def market_to_bytes(market: Market) -> tuple[bytes, dict[str, Any]]:
    """The market's bytes and the objects the format could not store (by role)."""
    packer = Packer()
    state = _put_market(market, packer)
    return write_container(MARKET_MAGIC, "market", state, packer), packer.supplied


def market_from_bytes(data: Any, supplied: Mapping[str, Any]) -> Market:
    state, arrays = read_container(data, MARKET_MAGIC, "market")
    r = _Reader(arrays)
    try:
        market = _get_market(r, state, supplied)
        _all_used(r)
    except _Bad as err:
        raise ValueError(f"market file is inconsistent: {err}") from None
    except _DECODE_ERRORS as err:
        raise ValueError(f"market file is inconsistent: {type(err).__name__}: {err}") from None
    return market


def _all_used(r: _Reader) -> None:
    if len(r.used) != len(r.arrays):
        raise _Bad(f"{len(r.arrays) - len(r.used)} arrays of the file are not referred to")


# ---------------------------------------------------------------------------------------------
# payment schemes of a simulation
# ---------------------------------------------------------------------------------------------
def _put_scheme(sim: Simulation, packer: Packer) -> dict[str, Any]:
    from stochmech.mechanism import DNBEMechanism, Market
    from stochmech.schemes import PayAsBid, PostedPrice

    scheme, run = sim.scheme, sim.market
    if type(scheme) is DNBEMechanism and isinstance(run, Market):
        return {"kind": "DNBEMechanism", "market": _put_market(run, packer)}
    state: dict[str, Any] = {
        "game": _put_game(sim.game, packer),
        "supertype_bids": packer.array(sim.supertype_bids, "supertype bids"),
    }
    if type(scheme) is PayAsBid:
        state["kind"] = "PayAsBid"
    elif type(scheme) is PostedPrice:
        state.update(kind="PostedPrice", price=scheme.price, posted=float(cast(Any, run).price))
    else:
        state.update(_supplied(scheme, "mechanism", packer))
        packer.supplied["scheme_run"] = run
    return state


def _get_scheme(
    r: _Reader, state: Any, supplied: Mapping[str, Any]
) -> tuple[Any, Any, Any, np.ndarray]:
    """The game, the scheme, its running state and the supertype bids of a simulation."""
    from stochmech.mechanism import check_supertypes
    from stochmech.schemes import PayAsBid, PostedPrice, _PostedPriceRun

    if not isinstance(state, dict):
        raise _Bad("the payment scheme must be described by a JSON object")
    kind = r.str_(
        state.get("kind"), "scheme kind", ("DNBEMechanism", "PayAsBid", "PostedPrice", "supplied")
    )
    given = supplied.get("mechanism")
    if kind == "DNBEMechanism":
        if given is not None:
            raise ValueError(
                "this file stores its payment scheme (a DNBEMechanism); do not pass it"
            )
        r.obj(state, "scheme", {"kind", "market"})
        market = _get_market(r, state["market"], supplied)
        return market.game, market.mechanism, market, market.supertype_bids.copy()
    keys = {"kind", "game", "supertype_bids"}
    keys |= {"price", "posted"} if kind == "PostedPrice" else set()
    keys |= {"class", "description"} if kind == "supplied" else set()
    state = r.obj(state, "scheme", keys)
    game = _get_game(r, state["game"], supplied.get("game"))
    shape = (game.n_players, game.n_types)
    bids = check_supertypes(game, r.array(state["supertype_bids"], "supertype bids", "f", shape))
    if kind == "supplied":
        if given is None:
            raise ValueError(
                f"this file was saved with a payment scheme of the user-defined class "
                f"{state['class']!r:.200} ({state['description']!r:.120}), which cannot be "
                "stored without code; pass it again as mechanism="
            )
        run = supplied.get("scheme_run")
        return game, given, given.start(game, bids) if run is None else run, bids
    if given is not None:
        raise ValueError(f"this file stores its payment scheme (a {kind}); do not pass it")
    if kind == "PayAsBid":
        scheme: Any = PayAsBid()
        return game, scheme, scheme.start(game, bids), bids
    price = None if state["price"] is None else r.float_(state["price"], "posted price")
    posted = r.float_(state["posted"], "posted price")
    if price is not None and posted != price:
        raise _Bad(f"the posted price {posted} differs from the scheme's price {price}")
    scheme = PostedPrice(price)
    if getattr(game, "price_response", None) is None:
        raise _Bad(f"a {type(game).__name__} has no posted price")
    return game, scheme, _PostedPriceRun(game, posted, game.first_stage(bids)), bids


# ---------------------------------------------------------------------------------------------
# simulations
# ---------------------------------------------------------------------------------------------
_SUMS = ("utility", "valuation", "payment", "penalty")
_DAILY = {"utility": "f", "welfare": "f", "flags": "b", "budget": "f"}


def _put_simulation(sim: Simulation, packer: Packer) -> dict[str, Any]:
    n = sim.theta.shape[0]

    def series(parts: list[np.ndarray], what: str, dtype: Any, tail: tuple[int, ...]) -> Any:
        arr = np.concatenate(parts) if parts else np.zeros((0, *tail), dtype=dtype)
        return packer.array(arr.astype(dtype, copy=False), what)

    paths = sim._paths
    return {
        "scheme": _put_scheme(sim, packer),
        "theta": packer.array(sim.theta, "true supertypes"),
        "seed": seed_record(sim.seed),
        "chunk": sim.chunk,
        "daily": sim.daily,
        "day": sim.day,
        "strategies": [_put_strategy(s, i, packer) for i, s in enumerate(sim.strategies)],
        "rngs": {
            "types": _put_rng(sim._type_rng, "type stream"),
            "states": _put_rng(sim._state_rng, "state stream"),
            "players": [
                _put_rng(g, f"stream of player {i}") for i, g in enumerate(sim._player_rngs)
            ],
        },
        "sums": {name: packer.array(sim._sums[name], name) for name in _SUMS},
        "totals": packer.array(np.array([sim._welfare, sim._budget]), "totals"),
        "penalty_days": packer.array(sim._penalty_days, "penalty days"),
        "last_penalty": packer.array(sim._last_penalty, "last penalty day"),
        "daily_series": {
            "utility": series(sim._daily["utility"], "daily utility", np.float64, (n,)),
            "welfare": series(sim._daily["welfare"], "daily welfare", np.float64, ()),
            "flags": series(sim._daily["flags"], "daily flags", np.bool_, (n,)),
            "budget": series(sim._daily["budget"], "daily budget", np.float64, ()),
        },
        "paths": {
            "day": packer.array(np.array(paths["day"], dtype=np.int64), "path days"),
            "utility": series(
                [np.reshape(paths["utility"], (-1, n))], "utility path", np.float64, (n,)
            ),
            "welfare": series([np.array(paths["welfare"])], "welfare path", np.float64, ()),
            "budget": series([np.array(paths["budget"])], "budget path", np.float64, ()),
            "penalty": series(
                [np.reshape(np.array(paths["penalty"], dtype=np.int64), (-1, n))],
                "penalty path",
                np.int64,
                (n,),
            ),
        },
        "histories": [
            {
                "own_types": packer.array(np.array(h.own_types, dtype=np.int64), "history"),
                "own_bids": packer.array(np.array(h.own_bids, dtype=np.int64), "history"),
                "outcomes": _put_value(h.outcomes, packer, f"history of player {i}"),
                "states": _put_value(h.states, packer, f"history of player {i}"),
            }
            for i, h in enumerate(sim._histories)
        ],
    }


def _get_simulation(r: _Reader, state: Any, supplied: Mapping[str, Any], fresh: bool) -> Simulation:
    from stochmech._ragged import player_contexts
    from stochmech.mechanism import check_supertypes
    from stochmech.simulation import Simulation, _checkpoint_grid
    from stochmech.strategies import History

    keys = {"scheme", "theta", "seed", "chunk", "daily", "day", "strategies", "rngs", "sums"}
    keys |= {"totals", "penalty_days", "last_penalty", "daily_series", "paths", "histories"}
    state = r.obj(state, "simulation", keys)
    game, scheme, market, supertype_bids = _get_scheme(r, state["scheme"], supplied)
    n, k = game.n_players, game.n_types
    theta = check_supertypes(game, r.array(state["theta"], "true supertypes", "f", (n, k)))
    day = r.int_(state["day"], "day", 0, _INT64[1])
    ledger_day = getattr(getattr(market, "ledger", None), "day", day)
    if ledger_day != day:
        raise _Bad(f"the ledger has recorded {ledger_day} days, the simulation {day}")

    given = supplied.get("strategies") or {}
    if not isinstance(state["strategies"], list) or len(state["strategies"]) != n:
        raise _Bad(f"the file must hold one strategy per player ({n})")
    extra = sorted(set(given) - set(range(n)))
    if extra:
        raise ValueError(f"strategies names player {extra[0]!r}, which does not exist (n = {n})")
    strategies = []
    contexts = player_contexts(game, theta)
    for i, s_state in enumerate(state["strategies"]):
        s, _ = _get_strategy(r, s_state, i, given)
        is_supplied = s_state.get("kind") == "supplied"
        if is_supplied and not fresh:
            strategies.append(s)  # an in-process copy: already prepared, in its saved state
            continue
        if is_supplied:
            s = copy.deepcopy(s)
        s.prepare(contexts[i])
        bid = np.asarray(s.supertype_bid(contexts[i]), dtype=np.float64)
        if not np.array_equal(bid, supertype_bids[i, : contexts[i].n_types]):
            raise ValueError(
                f"the strategy of player {i} declares {bid.tolist()!r:.120}, but the saved "
                f"market holds {supertype_bids[i].tolist()!r:.120}"
            )
        for name, value in getattr(s, "_saved_running", {}).items():
            setattr(s, name, value)
        if hasattr(s, "_saved_running"):
            del s._saved_running
        strategies.append(s)

    rngs = r.obj(state["rngs"], "random streams", {"types", "states", "players"})
    if not isinstance(rngs["players"], list) or len(rngs["players"]) != n:
        raise _Bad(f"the file must hold one random stream per player ({n})")
    sums = r.obj(state["sums"], "sums", set(_SUMS))
    totals = r.array(state["totals"], "totals", "f", (2,))
    ds = r.obj(state["daily_series"], "daily series", set(_DAILY))
    daily = r.bool_(state["daily"], "daily")
    daily_len = day if daily else 0
    series = {}
    for name, kind in _DAILY.items():
        tail: tuple[int, ...] = (n,) if name in ("utility", "flags") else ()
        arr = r.array(ds[name], f"daily {name}", kind, (daily_len, *tail))
        series[name] = [arr] if arr.shape[0] else []
    ps = r.obj(state["paths"], "paths", {"day", "utility", "welfare", "budget", "penalty"})
    path_days = r.array(ps["day"], "path days", "i", (None,))
    grid = _checkpoint_grid(day)
    if not np.array_equal(path_days, grid):
        raise _Bad(f"the checkpoint days do not match the {day} days played")
    c = path_days.shape[0]
    utility_path = r.array(ps["utility"], "utility path", "f", (c, n))
    penalty_path = r.array(ps["penalty"], "penalty path", "i", (c, n))
    welfare_path = r.array(ps["welfare"], "welfare path", "f", (c,))
    budget_path = r.array(ps["budget"], "budget path", "f", (c,))
    if not isinstance(state["histories"], list) or len(state["histories"]) != n:
        raise _Bad(f"the file must hold one history per player ({n})")

    sim = Simulation.__new__(Simulation)
    sim.game = game
    sim.theta = theta
    sim.seed = _get_seed(r, state["seed"], "seed")
    sim.chunk = r.int_(state["chunk"], "chunk", 1, 1 << 40)
    sim.strategies = strategies
    sim._type_rng = _get_rng(r, rngs["types"], "type stream")
    sim._state_rng = _get_rng(r, rngs["states"], "state stream")
    sim._player_rngs = [
        _get_rng(r, g, f"stream of player {i}") for i, g in enumerate(rngs["players"])
    ]
    sim.supertype_bids = supertype_bids
    sim.scheme = scheme
    sim.market = market
    sim._histories = []
    for i, h_state in enumerate(state["histories"]):
        where = f"history of player {i}"
        h_state = r.obj(h_state, where, {"own_types", "own_bids", "outcomes", "states"})
        own_types = r.array(h_state["own_types"], where, "i", (None,))
        own_bids = r.array(h_state["own_bids"], where, "i", (None,))
        outcomes = r.value(h_state["outcomes"], where)
        states = r.value(h_state["states"], where)
        length = own_bids.shape[0]
        if not all(isinstance(x, list) for x in (outcomes, states)) or not (
            own_types.shape[0] == length == len(outcomes) == len(states)
        ):
            raise _Bad(f"{where} has lists of different lengths")
        if length not in (0, day):
            raise _Bad(f"{where} covers {length} days, the simulation {day}")
        if np.any((own_bids < 0) | (own_bids >= k)) or np.any((own_types < 0) | (own_types >= k)):
            raise _Bad(f"{where} holds a type outside 0..{k - 1}")
        sim._histories.append(
            History(
                context=strategies[i].context if hasattr(strategies[i], "context") else contexts[i],
                supertype_bid=sim.supertype_bids[i],
                o1=market.o1,
                own_types=[int(x) for x in own_types],
                own_bids=[int(x) for x in own_bids],
                outcomes=outcomes,
                states=states,
            )
        )
    sim._cdf = np.cumsum(theta, axis=1)
    sim._cdf[:, -1] = 1.0
    sim.day = day
    sim._sums = {name: r.array(sums[name], f"sum of {name}", "f", (n,)) for name in _SUMS}
    sim._welfare = float(totals[0])
    sim._budget = float(totals[1])
    sim._penalty_days = r.array(state["penalty_days"], "penalty days", "i", (n,)).astype(np.int64)
    sim._last_penalty = r.array(state["last_penalty"], "last penalty day", "i", (n,)).astype(
        np.int64
    )
    if np.any(sim._penalty_days < 0) or np.any(sim._penalty_days > day):
        raise _Bad("penalty days must lie in [0, day]")
    if np.any(sim._last_penalty < 0) or np.any(sim._last_penalty > day):
        raise _Bad("last penalty days must lie in [0, day]")
    sim.daily = daily
    sim._daily = series
    sim._paths = {
        "day": [int(x) for x in path_days],
        "utility": list(utility_path),
        "welfare": list(welfare_path),
        "budget": list(budget_path),
        "penalty": list(penalty_path.astype(np.int64)),
    }
    sim._lock = threading.RLock()
    return sim


def simulation_to_bytes(sim: Simulation) -> tuple[bytes, dict[str, Any]]:
    """The simulation's bytes and the objects the format could not store (by role)."""
    packer = Packer()
    state = _put_simulation(sim, packer)
    return write_container(SIMULATION_MAGIC, "simulation", state, packer), packer.supplied


def simulation_from_bytes(
    data: Any, supplied: Mapping[str, Any], *, fresh: bool = True
) -> Simulation:
    state, arrays = read_container(data, SIMULATION_MAGIC, "simulation")
    r = _Reader(arrays)
    try:
        sim = _get_simulation(r, state, supplied, fresh)
        _all_used(r)
    except _Bad as err:
        raise ValueError(f"simulation file is inconsistent: {err}") from None
    except _DECODE_ERRORS as err:
        raise ValueError(f"simulation file is inconsistent: {type(err).__name__}: {err}") from None
    return sim


def players_to_supply(data: Any) -> list[int]:
    """The players of a saved simulation whose strategies must be given again to the loader
    (their strategies hold code); ``ValueError`` for anything but a simulation file."""
    state, _ = read_container(data, SIMULATION_MAGIC, "simulation")
    try:
        return [i for i, s in enumerate(state["strategies"]) if s.get("kind") == "supplied"]
    except (TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"simulation file is inconsistent: {err!r}") from None


def _market_from_pickle(data: bytes, supplied: dict[str, Any]) -> Market:
    return market_from_bytes(data, supplied)


def _simulation_from_pickle(data: bytes, supplied: dict[str, Any]) -> Simulation:
    return simulation_from_bytes(data, supplied, fresh=False)
