"""The beta-prime supertypes: parameters, exact bin means, the mean kept, the variance kept."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from stochmech.markets.demand_response import betaprime_parameters, betaprime_supertype


def test_paper_reading_mean_one_variance_two_is_betaprime_2_3():
    assert betaprime_parameters(1.0, 2.0) == (2.0, 3.0)


@given(st.floats(0.05, 20.0), st.floats(0.05, 20.0))
def test_parameters_give_the_requested_mean_and_variance(mean, var):
    a, b = betaprime_parameters(mean, var)
    law = stats.betaprime(a, b)
    assert math.isclose(law.mean(), mean, rel_tol=1e-12)
    assert math.isclose(law.var(), var, rel_tol=1e-9)


def _bins(mean, var, levels):
    a, b = betaprime_parameters(mean, var)
    law = stats.betaprime(a, b)
    edges = law.ppf(np.arange(levels + 1) / levels)
    return law, edges


@pytest.mark.parametrize("levels", [1, 2, 3, 5, 8, 16])
@pytest.mark.parametrize(("mean", "var"), [(1.0, 2.0), (0.3, 0.05), (4.0, 2.0), (2.0, 30.0)])
def test_values_are_the_conditional_means_of_quantile_bins(mean, var, levels):
    """Independent reference: adaptive quadrature of x f(x) over each bin."""
    theta = betaprime_supertype(mean, var, levels)
    law, edges = _bins(mean, var, levels)
    want = [
        levels * integrate.quad(lambda x: x * law.pdf(x), lo, hi, epsabs=0, epsrel=1e-12)[0]
        for lo, hi in itertools.pairwise(edges)
    ]
    np.testing.assert_allclose(theta.values, want, rtol=1e-8)
    np.testing.assert_allclose(theta.probs, 1.0 / levels, rtol=0)


@given(st.floats(0.05, 20.0), st.floats(0.05, 20.0), st.integers(1, 300))
def test_discrete_mean_is_exact_and_values_increase(mean, var, levels):
    theta = betaprime_supertype(mean, var, levels)
    assert len(theta) == levels
    assert math.isclose(theta.mean(), mean, rel_tol=1e-12)
    assert np.all(theta.values > 0)
    assert np.all(np.diff(theta.values) > 0)


@pytest.mark.parametrize("levels", [2, 4, 16, 64])
def test_variance_kept_plus_within_bin_variance_is_the_continuous_variance(levels):
    """Law of total variance, with the within-bin second moments from adaptive quadrature."""
    mean, var = 1.0, 2.0
    theta = betaprime_supertype(mean, var, levels)
    law, edges = _bins(mean, var, levels)
    second = [
        levels * integrate.quad(lambda x: x * x * law.pdf(x), lo, hi, epsabs=0, epsrel=1e-11)[0]
        for lo, hi in itertools.pairwise(edges)
    ]
    within = np.mean(np.array(second) - theta.values**2)
    assert math.isclose(theta.var() + within, var, rel_tol=1e-6)


def test_variance_kept_grows_under_refinement_and_stays_below_the_continuous_one():
    kept = [betaprime_supertype(1.0, 2.0, 2**j).var() for j in range(11)]
    assert kept[0] == 0.0
    assert all(b > a for a, b in itertools.pairwise(kept))
    assert kept[-1] < 2.0
    # the documented figures (module docstring table)
    np.testing.assert_allclose(
        [kept[2], kept[3], kept[4], kept[6], kept[8], kept[10]],
        [0.786, 1.042, 1.242, 1.524, 1.700, 1.811],
        atol=6e-4,
    )


def test_light_tails_keep_most_of_the_variance():
    theta = betaprime_supertype(1.0, 0.1, 16)  # beta = 22: thin tail
    assert 0.95 * 0.1 < theta.var() < 0.1


@pytest.mark.parametrize(
    ("mean", "var", "levels", "message"),
    [
        (0.0, 2.0, 4, "mean must be positive and finite, got 0.0"),
        (-1.0, 2.0, 4, "mean must be positive and finite, got -1.0"),
        (float("nan"), 2.0, 4, "mean must be positive and finite, got nan"),
        (1.0, 0.0, 4, "var must be positive and finite, got 0.0"),
        (1.0, float("inf"), 4, "var must be positive and finite, got inf"),
        (1.0, 2.0, 0, "levels must be a positive integer, got 0"),
        (1.0, 2.0, 2.5, "levels must be a positive integer, got 2.5"),
        (1.0, 2.0, True, "levels must be a positive integer, got True"),
    ],
)
def test_bad_input_names_the_offender(mean, var, levels, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        betaprime_supertype(mean, var, levels)
