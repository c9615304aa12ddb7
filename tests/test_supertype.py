"""Supertype: validation, moments, sampling and embedding into a type space."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import stochmech
from stochmech.supertype import Supertype, point_mass


@st.composite
def laws(draw, max_size=6):
    size = draw(st.integers(1, max_size))
    values = draw(
        st.lists(
            st.floats(-50, 50, allow_nan=False, allow_infinity=False),
            min_size=size,
            max_size=size,
            unique=True,
        )
    )
    weights = np.array(draw(st.lists(st.floats(0, 1), min_size=size, max_size=size)))
    if weights.sum() == 0:
        weights[0] = 1.0
    return np.array(values), weights / weights.sum()


def test_exported_at_top_level():
    assert stochmech.Supertype is Supertype
    assert "Supertype" in stochmech.__all__


@given(laws())
def test_moments_match_plain_sums(law):
    values, probs = law
    theta = Supertype(values, probs)
    mean = sum(p * v for v, p in zip(values, probs, strict=True))
    second = sum(p * v * v for v, p in zip(values, probs, strict=True))
    assert math.isclose(theta.mean(), mean, rel_tol=1e-12, abs_tol=1e-12)
    assert math.isclose(theta.moment(2), second, rel_tol=1e-12, abs_tol=1e-12)
    var = sum(p * (v - mean) ** 2 for v, p in zip(values, probs, strict=True))
    assert math.isclose(theta.var(), var, rel_tol=1e-9, abs_tol=1e-9)
    assert theta.var() >= 0
    assert math.isclose(theta.std() ** 2, theta.var(), rel_tol=1e-12, abs_tol=1e-15)


@given(laws(), st.integers(0, 2**32 - 1))
def test_samples_stay_on_the_support(law, seed):
    values, probs = law
    theta = Supertype(values, probs)
    idx = theta.sample_indices(np.random.default_rng(seed), 200)
    assert idx.shape == (200,)
    assert np.all(probs[idx] > 0)
    assert set(theta.sample(np.random.default_rng(seed), 50)) <= set(theta.support)


def test_sample_frequencies_match_probs():
    theta = Supertype([3.0, 1.0, 2.0, 7.0], [0.1, 0.0, 0.6, 0.3])
    n = 200_000
    idx = theta.sample_indices(np.random.default_rng(7), n)
    freq = np.bincount(idx, minlength=4) / n
    se = np.sqrt(theta.probs * (1 - theta.probs) / n)
    assert freq[1] == 0
    assert np.all(np.abs(freq - theta.probs) <= 5 * se + 1e-12)


def test_sample_shape_and_point_mass():
    assert Supertype([1.0, 2.0], [0.5, 0.5]).sample(np.random.default_rng(0), (3, 4)).shape == (
        3,
        4,
    )
    pm = point_mass(4.0)
    assert pm.is_point_mass and pm.mean() == 4.0 and pm.var() == 0.0
    assert np.all(pm.sample(np.random.default_rng(1), 10) == 4.0)


def test_arrays_are_read_only_copies():
    values = np.array([1.0, 2.0])
    theta = Supertype(values, [0.5, 0.5])
    values[0] = 99.0
    assert theta.values[0] == 1.0
    with pytest.raises(ValueError):
        theta.values[0] = 5.0


def test_equality_and_hash():
    a = Supertype([1.0, 2.0], [0.25, 0.75])
    b = Supertype(np.array([1.0, 2.0]), np.array([0.25, 0.75]))
    c = Supertype([2.0, 1.0], [0.75, 0.25])
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert a != "not a supertype"


def test_pmf_on_and_map():
    theta = Supertype([4.0, 1.0, 9.0], [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(theta.pmf_on([1.0, 4.0]), [0.5, 0.5])
    with pytest.raises(ValueError, match=r"value 4\.0 .* not in the type space"):
        theta.pmf_on([1.0, 9.0])
    inv = theta.map(lambda x: 1.0 / x)
    assert math.isclose(inv.mean(), 0.5 / 4 + 0.5 / 1)
    assert math.isclose(theta.moment(-1), inv.mean())


def test_negative_moment_with_zero_value_is_an_error():
    with pytest.raises(ValueError, match="value 0"):
        Supertype([0.0, 1.0], [0.5, 0.5]).moment(-1)
    assert Supertype([0.0, 1.0], [0.0, 1.0]).moment(-1) == 1.0


@pytest.mark.parametrize(
    ("values", "probs", "message"),
    [
        ([1.0, 2.0], [0.7, 0.2], r"sum to 1 .*got sum 0\.89"),
        ([1.0, 2.0], [1.2, -0.2], r"probs\[1\] = -0\.2 is negative"),
        ([1.0, 2.0], [np.nan, 1.0], r"probs\[0\] = nan is not finite"),
        ([1.0, np.nan], [0.5, 0.5], r"values\[1\] = nan is not finite"),
        ([np.inf, 1.0], [0.5, 0.5], r"values\[0\] = inf is not finite"),
        ([1.0, 2.0, 1.0], [0.2, 0.3, 0.5], r"values\[2\] = 1\.0 is repeated"),
        ([1.0, 2.0], [1.0], "same length"),
        ([[1.0, 2.0]], [[0.5, 0.5]], "1-D"),
        ([], [], "at least one value"),
    ],
)
def test_bad_input_names_the_offender(values, probs, message):
    with pytest.raises(ValueError, match=message):
        Supertype(values, probs)


def test_tolerance_is_one_in_a_billion():
    Supertype([1.0, 2.0], [0.5, 0.5 + 5e-10])
    with pytest.raises(ValueError, match="sum to 1"):
        Supertype([1.0, 2.0], [0.5, 0.5 + 5e-9])
