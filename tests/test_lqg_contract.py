"""The error contract on the LQG side (``stochmech.lqg``).

First, inputs that used to return NaN or infinite welfare, payments or outside options (they
overflow float64 inside the Riccati recursion, the plan or the open-loop second moments) and are
now refused with a ``ValueError`` naming the cause. Then generated bad arguments for the public
LQG constructors and :meth:`LayeredVCG.step`: each raises ``ValueError``/``TypeError`` naming
the argument, and neither the arguments nor the mechanism change. The counts join the table of
``tests/test_contract.py``.
"""

# ruff: noqa: B023 (each lambda is called at once, inside the loop iteration that made it)
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_contract import MANY, PER, ints_outside, not_finite_numbers, refused

from stochmech.lqg import (
    LayeredVCG,
    LinearQuadraticBid,
    LQGAgents,
    QuadraticUtility,
    dynamic_utilities,
    dynamic_vcg,
    expected_budget,
    individual_rationality,
    outside_option,
    static_vcg,
)


def agents(**change: Any) -> LQGAgents:
    params: dict[str, Any] = {
        "a": [0.9, 1.0],
        "b": [1.0, 1.0],
        "q": [-1.0, -1.0],
        "r": [-1.0, -1.0],
        "sigma": [1.0, 1.0],
        "zeta": [1.0, 1.0],
    }
    params.update(change)
    return LQGAgents(**params)


# ----- inputs that made a result non-finite -----
@pytest.mark.parametrize(
    ("change", "horizon"),
    [
        ({"a": [1e200, 1.0]}, 3),  # NaN Riccati matrices and expected welfare
        ({"r": [-1e-320, -1.0]}, 3),  # a subnormal r: NaN
        ({"q": [-1e308, -1e308]}, 3),  # -inf welfare
    ],
)
def test_parameters_that_overflow_the_riccati_recursion_are_refused(change, horizon):
    ag = agents(**change)
    with pytest.raises(ValueError, match="Riccati matrices would be non-finite"):
        LayeredVCG(ag, horizon)


def test_variances_that_overflow_the_expected_welfare_are_refused():
    with pytest.raises(ValueError, match=r"expected welfare would be non-finite.*sigma, zeta"):
        LayeredVCG(agents(sigma=[1e308, 1.0]), 4)


def test_an_explosive_open_loop_outside_option_is_refused():
    # a = 10 over 400 steps: E x(t)^2 = 100^t overflows; the controlled problem stays finite
    mech = LayeredVCG(agents(a=[10.0, 1.0]), 400, pivot="none")
    assert math.isfinite(mech.expected_welfare())
    for call in (outside_option, individual_rationality):
        with pytest.raises(ValueError, match="outside options would be non-finite"):
            call(mech)
    assert np.isfinite(expected_budget(mech).per_layer).all()


def test_huge_layer_inputs_and_bids_are_refused_and_step_keeps_its_state():
    mech = LayeredVCG(agents(a=[10.0, 1.0]), 3)
    with pytest.raises(ValueError, match=r"non-finite.*layer inputs or bids"):
        mech.run(np.full((3, 2), 1e200))
    with pytest.raises(ValueError, match=r"non-finite.*layer inputs or bids"):
        mech.utilities_batch(np.full((2, 3, 2), 1e200))
    with pytest.raises(ValueError, match=r"non-finite.*layer inputs or bids"):
        mech.run(np.ones((3, 2)), bids=np.full((3, 2), -1e200))
    mech.step([1.0, -1.0])
    before = (mech.time, mech._cum_x.copy(), mech._cum_u.copy())
    with pytest.raises(ValueError, match=r"non-finite.*bids at time 1"):
        mech.step([1e200, 1e200])
    assert mech.time == before[0]
    np.testing.assert_array_equal(mech._cum_x, before[1])
    np.testing.assert_array_equal(mech._cum_u, before[2])
    assert np.isfinite(mech.step([0.5, 0.5]).payments).all()


def test_static_vcg_refuses_bids_with_non_finite_payments():
    with pytest.raises(ValueError, match="non-finite"):
        static_vcg([QuadraticUtility(-1e-320, 1e300), QuadraticUtility(-1.0)])
    with pytest.raises(ValueError, match="non-finite"):
        static_vcg([QuadraticUtility(-1e-300, 1e300), QuadraticUtility(-1.0)])


def test_dynamic_vcg_refuses_bids_with_non_finite_plans_or_payments():
    bids = [
        LinearQuadraticBid(1e200, 1.0, -1.0, -1.0, 1.0, horizon=3),
        LinearQuadraticBid(1.0, 1.0, -1.0, -1.0, 1.0, horizon=3),
    ]
    for method in ("riccati", "kkt"):
        with pytest.raises(ValueError, match=r"non-finite|singular"):
            dynamic_vcg(bids, method=method)
    good = [LinearQuadraticBid(1.0, 1.0, -1.0, -1.0, 1.0, horizon=3)] * 2
    res = dynamic_vcg(good)
    explosive = [LinearQuadraticBid(1e200, 1.0, -1.0, -1.0, 1e200, horizon=3)] * 2
    with pytest.raises(ValueError, match=r"net utilities would be non-finite.*true_models"):
        dynamic_utilities(explosive, res)


# ----- generated bad arguments for the constructors -----
FIELDS = ("a", "b", "q", "r", "sigma", "zeta")


def bad_entry(field: str) -> st.SearchStrategy[Any]:
    """A value that makes one entry of an LQG coefficient vector invalid."""
    parts = [not_finite_numbers()]
    if field in ("q", "r", "sigma", "zeta"):
        # wrong sign (r must be < 0, q <= 0, variances >= 0)
        lo = 0.0 if field == "r" else 1e-300
        pos = st.floats(lo, 1e300)
        parts.append(pos.map(lambda x: -x) if field in ("sigma", "zeta") else pos)
    return st.one_of(*parts)


@settings(MANY, max_examples=30)
@given(st.data())
def test_lqg_agents_refuses_bad_parameters(data):
    for _ in range(PER):
        field = data.draw(st.sampled_from(FIELDS))
        given_args = {k: np.array([0.9, -1.0]) for k in FIELDS}
        given_args["q"] = given_args["r"] = np.array([-1.0, -2.0])
        given_args["sigma"] = given_args["zeta"] = np.array([0.5, 0.0])
        how = data.draw(st.sampled_from(["entry", "length", "shape"]))
        if how == "entry":
            value = data.draw(bad_entry(field))
            given_args[field] = [given_args[field][0], value]
        elif how == "length":
            given_args[field] = np.ones(data.draw(st.sampled_from([0, 1, 3])))
        else:
            given_args[field] = np.ones((2, 2))
        copies = {k: np.array(v, dtype=object, copy=True) for k, v in given_args.items()}
        name = field if how != "length" or field != "a" else "length"
        refused(
            "lqg.LQGAgents",
            name,
            lambda: LQGAgents(**given_args),
            state=lambda: [repr(v) for v in given_args.values()],
        )
        for k, v in given_args.items():
            assert repr(np.array(v, dtype=object)) == repr(copies[k])


@settings(MANY, max_examples=30)
@given(st.data())
def test_linear_quadratic_bid_and_quadratic_utility_refuse_bad_parameters(data):
    for _ in range(PER):
        field = data.draw(st.sampled_from(["a", "b", "q", "r", "x0", "horizon"]))
        kwargs: dict[str, Any] = {"a": 1.0, "b": [1.0, 0.5], "q": -1.0, "r": -1.0, "x0": 2.0}
        if field == "horizon":  # None is allowed (the horizon comes from b)
            kwargs["horizon"] = data.draw(ints_outside(1, None).filter(lambda v: v is not None))
        elif field == "x0":
            kwargs["x0"] = data.draw(not_finite_numbers())
        else:
            kwargs[field] = [1.0, data.draw(bad_entry(field))]
        refused("lqg.LinearQuadraticBid", field, lambda: LinearQuadraticBid(**kwargs))

        name = data.draw(st.sampled_from(["alpha", "beta", "gamma"]))
        coeffs: dict[str, Any] = {"alpha": -1.0, "beta": 0.5, "gamma": 0.0}
        bad = st.one_of(not_finite_numbers(), st.builds(object), st.just(10**400))
        coeffs[name] = data.draw(st.one_of(bad, st.floats(0.0, 1e300)) if name == "alpha" else bad)
        refused("lqg.QuadraticUtility", name, lambda: QuadraticUtility(**coeffs))


@settings(MANY, max_examples=30)
@given(st.data())
def test_layered_vcg_refuses_bad_arguments_and_step_keeps_its_state(data):
    ag = agents()
    for _ in range(PER):
        arg = data.draw(st.sampled_from(["agents", "horizon", "pivot", "pivot_table_bytes"]))
        kwargs: dict[str, Any] = {"agents": ag, "horizon": 3}
        if arg == "agents":
            kwargs["agents"] = data.draw(st.one_of(st.none(), st.integers(), st.just([ag])))
        elif arg == "horizon":
            kwargs["horizon"] = data.draw(ints_outside(1, None))
        elif arg == "pivot":
            kwargs["pivot"] = data.draw(st.one_of(st.text(max_size=4), st.none(), st.integers()))
        else:
            kwargs["pivot_table_bytes"] = data.draw(ints_outside(0, None))
        refused("lqg.LayeredVCG", arg, lambda: LayeredVCG(**kwargs))

    mech = LayeredVCG(ag, 3)
    mech.step([0.5, -0.5])

    def state() -> Any:
        return (mech.time, mech._cum_x.tobytes(), mech._cum_u.tobytes())

    for _ in range(PER):
        kind = data.draw(st.sampled_from(["entry", "shape", "huge"]))
        if kind == "entry":
            bids: Any = [0.1, data.draw(not_finite_numbers())]
        elif kind == "shape":
            bids = np.zeros(data.draw(st.sampled_from([(1,), (3,), (2, 2), ()])))
        else:
            bids = [data.draw(st.floats(1e160, 1e300)), 1.0]
        refused("lqg.LayeredVCG.step", "bids", lambda: mech.step(bids), state=state)
