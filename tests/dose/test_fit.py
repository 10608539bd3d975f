"""LL.4 fitting: recovery of known parameters, CI coverage, and the documented degenerate outcomes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from mcnn.dose import fit as F
from mcnn.dose.fit import fit_ll4, ll4

DOSES = np.logspace(-2, 2, 8)  # 0.01 .. 100, half-log steps as in the BBBC021 dilution series


@pytest.mark.parametrize(
    ("b", "c", "d", "e"),
    [
        (-1.0, 0.0, 1.0, 1.0),  # rising probability, Hill slope 1
        (-1.5, 0.02, 0.95, 0.7),
        (-0.8, 0.1, 0.9, 3.0),
        (2.0, 0.05, 0.85, 0.2),  # falling (e.g. the DMSO class)
        (-3.0, 0.0, 0.98, 12.0),
    ],
)
def test_noise_free_curves_recover_the_parameters(b: float, c: float, d: float, e: float) -> None:
    result = fit_ll4(DOSES, ll4(DOSES, b, c, d, e))
    assert result.status == F.OK, result.message
    assert result.ec50 == pytest.approx(e, rel=0.01)
    assert result.hill_slope == pytest.approx(-b, rel=0.01)
    assert result.bottom == pytest.approx(min(c, d), abs=1e-3)
    assert result.top == pytest.approx(max(c, d), abs=1e-3)
    assert result.r_squared == pytest.approx(1.0, abs=1e-9)
    assert result.f_pvalue < 1e-6
    assert result.ec50_ci_low <= e * 1.0001 and result.ec50_ci_high >= e * 0.9999
    assert result.log10_ec50 == pytest.approx(math.log10(e), abs=0.005)
    assert result.curve is not None and result.curve(e) == pytest.approx((c + d) / 2, abs=1e-3)


def test_replicate_points_and_orientation() -> None:
    """Repeated concentrations are allowed; c > d comes back as bottom < top, b's sign flipped with them."""
    x = np.repeat(DOSES, 3)
    result = fit_ll4(x, ll4(x, 1.2, 0.9, 0.1, 0.5))  # rises from d = 0.1 to c = 0.9
    assert result.status == F.OK
    assert (result.bottom, result.top) == (pytest.approx(0.1, abs=1e-4), pytest.approx(0.9, abs=1e-4))
    assert result.hill_slope == pytest.approx(1.2, rel=1e-3)  # rising: positive Hill slope
    assert result.curve is not None and result.curve.b == pytest.approx(-1.2, rel=1e-3)
    assert result.n_points == 24 and result.n_concentrations == 8 and result.df_residual == 20


@pytest.mark.parametrize("use_replicates", [False, True], ids=["fit-medians", "fit-replicates"])
def test_noisy_replicates_cover_the_true_ec50(use_replicates: bool) -> None:
    """200 seeded trials, 3 replicates x 8 doses, replicate noise SD 0.05 clipped to [0, 1].

    Measured (seed 2026): the 95 % CI holds the true EC50 in 182/200 (91 %) of the trials when fitting the
    medians and 190/200 (95 %) when fitting every replicate; every trial was ``ok``.
    """
    rng = np.random.default_rng(2026)
    covered = 0
    trials = 200
    for _ in range(trials):
        e = 10 ** rng.uniform(-0.5, 0.5)
        b = -rng.uniform(0.8, 2.0)
        reps = np.clip(ll4(DOSES, b, 0.03, 0.95, e)[None, :] + rng.normal(0, 0.05, (3, DOSES.size)), 0, 1)
        x, y = (np.tile(DOSES, 3), reps.ravel()) if use_replicates else (DOSES, np.median(reps, axis=0))
        result = fit_ll4(x, y)
        covered += result.status == F.OK and result.ec50_ci_low <= e <= result.ec50_ci_high
    print(f"EC50 95 % CI coverage ({'replicates' if use_replicates else 'medians'}): {covered}/{trials}")
    assert covered / trials >= 0.85


def _nan_fields(result: F.DoseFit, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not math.isnan(getattr(result, n))]


EC50_FIELDS = ("ec50", "ec50_se", "ec50_ci_low", "ec50_ci_high", "log10_ec50", "log10_ec50_se")
CURVE_FIELDS = ("hill_slope", "hill_slope_se", "bottom", "bottom_se", "top", "top_se")
TEST_FIELDS = ("r_squared", "f_statistic", "f_pvalue")


def test_flat_noisy_data_is_flat() -> None:
    rng = np.random.default_rng(1)
    result = fit_ll4(DOSES, 0.5 + rng.normal(0, 0.05, DOSES.size))
    assert result.status == F.FLAT
    assert result.f_pvalue >= 0.05 and "F-test" in result.message
    assert _nan_fields(result, EC50_FIELDS + CURVE_FIELDS) == [] and result.curve is None
    assert _nan_fields(result, TEST_FIELDS) == list(TEST_FIELDS)


def test_constant_data_is_flat() -> None:
    result = fit_ll4(DOSES, np.full(DOSES.size, 0.2))
    assert result.status == F.FLAT and result.f_pvalue == 1.0 and result.message == "the response is constant"


def test_small_significant_change_is_flat_below_min_span() -> None:
    """A class that stays near zero: significant by the F-test but below min_span (0.1)."""
    rng = np.random.default_rng(3)
    x = np.tile(DOSES, 3)
    result = fit_ll4(x, ll4(x, -1.0, 0.01, 0.04, 1.0) + rng.normal(0, 0.002, x.size))
    assert result.f_pvalue < 0.05
    assert result.status == F.FLAT and "min_span" in result.message
    assert fit_ll4(x, ll4(x, -1.0, 0.01, 0.04, 1.0), min_span=0.0).status == F.OK


@pytest.mark.parametrize(
    "response",
    [np.linspace(0.3, 0.7, DOSES.size), ll4(DOSES, -1.0, 0.0, 1.0, 100.0)],
    ids=["linear-in-log-dose", "lower-half-only"],
)
def test_monotone_without_plateau(response: np.ndarray) -> None:
    result = fit_ll4(DOSES, response)
    assert result.status == F.NO_PLATEAU, result.message
    assert _nan_fields(result, EC50_FIELDS) == []
    assert _nan_fields(result, CURVE_FIELDS) == list(CURVE_FIELDS) and result.curve is not None
    assert "plateau" in result.message


@pytest.mark.parametrize(("b", "e", "bound"), [(-4.0, 150.0, ">100"), (-2.0, 0.005, "<0.01")])
def test_ec50_outside_the_tested_range(b: float, e: float, bound: str) -> None:
    result = fit_ll4(DOSES, ll4(DOSES, b, 0.0, 1.0, e))
    assert result.status == F.EC50_OUTSIDE_RANGE, result.message
    assert result.ec50_bound == bound and bound in result.message
    assert _nan_fields(result, EC50_FIELDS) == []
    assert result.curve is not None and not math.isnan(result.hill_slope)


def test_single_concentration() -> None:
    result = fit_ll4(np.full(6, 1.0), np.linspace(0, 1, 6))
    assert result.status == F.TOO_FEW_CONCENTRATIONS
    assert result.n_concentrations == 1 and result.n_points == 6
    assert _nan_fields(result, EC50_FIELDS + CURVE_FIELDS + TEST_FIELDS) == []


def test_four_concentrations_are_too_few_by_default() -> None:
    x = DOSES[::2]
    assert fit_ll4(x, ll4(x, -1, 0, 1, 1)).status == F.TOO_FEW_CONCENTRATIONS
    assert fit_ll4(np.array([]), np.array([])).status == F.TOO_FEW_CONCENTRATIONS


@pytest.mark.parametrize(
    ("x", "y", "text"),
    [
        (DOSES, np.r_[ll4(DOSES[:-1], -1, 0, 1, 1), np.nan], "response not finite at concentration(s) 100"),
        (DOSES, np.r_[np.inf, ll4(DOSES[1:], -1, 0, 1, 1)], "response not finite"),
        (np.r_[np.nan, DOSES[1:]], ll4(DOSES, -1, 0, 1, 1), "1 concentration(s) not a finite number > 0"),
        (np.r_[0.0, DOSES[1:]], ll4(DOSES, -1, 0, 1, 1), "not a finite number > 0"),
    ],
    ids=["nan-response", "inf-response", "nan-dose", "zero-dose"],
)
def test_nan_and_invalid_input(x: np.ndarray, y: np.ndarray, text: str) -> None:
    result = fit_ll4(x, y)
    assert result.status == F.INVALID_INPUT and text in result.message
    assert _nan_fields(result, EC50_FIELDS + CURVE_FIELDS + TEST_FIELDS) == [] and result.curve is None


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="concentration has 8 values, response 7"):
        fit_ll4(DOSES, DOSES[:-1])


def test_step_response_widens_the_ci_to_the_neighbouring_doses() -> None:
    result = fit_ll4(DOSES, (DOSES > 0.5).astype(float))
    assert result.status == F.OK
    assert result.ec50_ci_low <= DOSES[2] and result.ec50_ci_high >= DOSES[3]
    assert DOSES[2] <= result.ec50 <= DOSES[3]
    assert "slope" in result.message


def test_fit_failed_when_no_start_converges(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_convergence(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(F.optimize, "curve_fit", no_convergence)
    result = fit_ll4(DOSES, ll4(DOSES, -1, 0, 1, 1))
    assert result.status == F.FIT_FAILED and result.curve is None
    assert _nan_fields(result, EC50_FIELDS + CURVE_FIELDS + TEST_FIELDS) == []


def test_every_status_is_documented() -> None:
    assert set(F.STATUSES) == {F.OK, F.FLAT, F.TOO_FEW_CONCENTRATIONS, F.EC50_OUTSIDE_RANGE, F.NO_PLATEAU,
                               F.FIT_FAILED, F.INVALID_INPUT}
    doc = (Path(__file__).resolve().parents[2] / "docs" / "dose_response.md").read_text()
    for status in F.STATUSES:
        assert f"`{status}`" in doc


def test_as_dict_has_every_field() -> None:
    out = fit_ll4(DOSES, ll4(DOSES, -1, 0, 1, 1)).as_dict()
    assert out["status"] == "ok" and set(out["curve"]) == {"b", "c", "d", "e"}
    assert {"ec50", "ec50_se", "ec50_ci_low", "ec50_ci_high", "hill_slope", "bottom", "top", "r_squared",
            "f_statistic", "f_pvalue"} <= set(out)
