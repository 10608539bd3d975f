"""The Hill curve that sets the fraction of cells showing a compound's phenotype."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcnn.errors import ConfigError
from mcnn.simulate.hill import ec50_in_range, hill_fraction, hill_fraction_log
from mcnn.simulate.lookalikes.looks import response


def test_half_maximal_at_ec50() -> None:
    for ec50, slope in [(0.08, 1.5), (2.0, 2.0), (100.0, 0.7)]:
        assert hill_fraction(ec50, ec50, slope) == pytest.approx(0.5, abs=1e-12)


def test_closed_form_one_decade_away() -> None:
    # f(x) = 1 / (1 + (EC50 / x)^h): one decade above EC50 with h = 1 gives 10/11, below 1/11.
    assert hill_fraction(10.0, 1.0, 1.0) == pytest.approx(10 / 11)
    assert hill_fraction(0.1, 1.0, 1.0) == pytest.approx(1 / 11)
    assert hill_fraction(0.3, 1.0, 2.0) == pytest.approx(1 / (1 + (1 / 0.3) ** 2))


def test_zero_concentration_and_extremes() -> None:
    assert hill_fraction(0.0, 1.0, 1.0) == 0.0
    assert hill_fraction(1e-300, 1.0, 50.0) == 0.0
    assert hill_fraction(1e300, 1e-3, 50.0) == 1.0


def test_arrays_keep_their_shape_and_rise() -> None:
    x = np.logspace(-3, 3, 25).reshape(5, 5)
    f = hill_fraction(x, 1.0, 1.5)
    assert isinstance(f, np.ndarray) and f.shape == (5, 5)
    assert np.all(np.diff(f.ravel()) > 0)
    assert isinstance(hill_fraction(1.0, 1.0, 1.0), float)


@pytest.mark.parametrize(("x", "ec50", "slope"), [(1.0, 0.0, 1.0), (1.0, -1.0, 1.0), (1.0, 1.0, 0.0),
                                                  (-1.0, 1.0, 1.0), (math.nan, 1.0, 1.0), (1.0, math.inf, 1.0)])
def test_invalid_parameters(x: float, ec50: float, slope: float) -> None:
    with pytest.raises(ConfigError):
        hill_fraction(x, ec50, slope)


def test_ec50_in_range() -> None:
    tested = (0.01, 0.03, 0.1, 30.0)
    assert ec50_in_range(0.01, tested) and ec50_in_range(30.0, tested) and ec50_in_range(1.0, tested)
    assert not ec50_in_range(100.0, tested) and not ec50_in_range(0.001, tested)
    assert not ec50_in_range(1.0, ())


def test_the_log_scale_form_is_the_same_curve() -> None:
    x = np.logspace(-2, 2, 9)
    np.testing.assert_allclose(hill_fraction_log(np.log(x), math.log(0.7), 2.5), hill_fraction(x, 0.7, 2.5),
                               rtol=1e-12)
    assert isinstance(hill_fraction_log(0.0, 0.0, 1.0), float) and hill_fraction_log(0.0, 0.0, 1.0) == 0.5
    assert hill_fraction_log(-800.0, 0.0, 1.0) == 0.0 and hill_fraction_log(800.0, 0.0, 1.0) == 1.0
    for bad in [(0.0, 0.0, 0.0), (math.nan, 0.0, 1.0), (0.0, math.inf, 1.0)]:
        with pytest.raises(ConfigError):
            hill_fraction_log(*bad)


def test_the_look_alikes_plant_the_hill_curve() -> None:
    # A position p in [0, 1] along a dilution series stands for log concentration p: the look-alikes'
    # response is the Hill curve of exp(p) with EC50 exp(ec50).
    for p in (0.0, 0.25, 0.5, 0.9, 1.0):
        assert response(p) == pytest.approx(hill_fraction(math.exp(p), math.exp(0.5), 8.0), rel=1e-12)
        assert response(p, ec50=0.3, slope=3.0) == pytest.approx(1 / (1 + math.exp(-3.0 * (p - 0.3))), rel=1e-12)
    assert response(0.5) == 0.5 and response(0.0) < 0.02 and response(1.0) > 0.98
