"""The dose-response model of the simulator: a Hill curve with bottom 0 and top 1.

At concentration ``x`` (µM) a compound with half-maximal concentration ``EC50`` (µM) and Hill
slope ``h`` makes each cell show its phenotype independently with probability

    f(x) = 1 / (1 + (EC50 / x) ** h),        f(0) = 0,

so ``f(EC50) = 0.5`` and ``f`` rises from 0 to 1 as ``x`` goes from 0 to infinity (``h > 0``).
On a log scale it is a logistic curve (:func:`hill_fraction_log`), which is how the look-alikes
of :mod:`mcnn.simulate.lookalikes` plant their dose responses along a dilution series.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from mcnn.errors import ConfigError

#: The formula as written into ``ground_truth.json``.
HILL_MODEL_TEXT = (
    "f(x) = 1 / (1 + (EC50 / x) ** hill_slope) for concentration x > 0 (uM), f(0) = 0; "
    "each cell of a field independently shows the compound's phenotype with probability f(x)"
)


def hill_fraction(concentration: float | npt.ArrayLike, ec50: float, hill_slope: float) -> float | np.ndarray:
    """Expected fraction of cells showing the phenotype at ``concentration`` (µM), in [0, 1].

    Accepts a number (returns a float) or an array (returns a float64 array of the same shape).
    Computed as ``1 / (1 + exp(h * (ln EC50 - ln x)))``, which does not overflow for extreme ratios.
    """
    if not (ec50 > 0 and math.isfinite(ec50)):
        raise ConfigError(f"EC50 must be a positive number of µM, got {ec50!r}")
    _check_slope(hill_slope)
    x = np.asarray(concentration, dtype=np.float64)
    if np.any(x < 0) or not np.all(np.isfinite(x)):
        raise ConfigError("concentrations must be finite and not negative")
    with np.errstate(divide="ignore"):
        exponent = hill_slope * (math.log(ec50) - np.log(x))  # +inf where x == 0
    return _falling_logistic(exponent)


def hill_fraction_log(log_concentration: float | npt.ArrayLike, log_ec50: float,
                      hill_slope: float) -> float | np.ndarray:
    """The same Hill curve on a log scale: :func:`hill_fraction` of ``exp(log_concentration)``, EC50 ``exp(log_ec50)``.

    That is the logistic ``1 / (1 + exp(h * (log_ec50 - log_concentration)))``; any position along a
    dilution series whose steps are equal on a log scale (e.g. 0 to 1 from its first to its last
    well) can stand for ``log_concentration``. Number in, float out; array in, float64 array out.
    """
    _check_slope(hill_slope)
    x = np.asarray(log_concentration, dtype=np.float64)
    if not np.all(np.isfinite(x)) or not math.isfinite(log_ec50):
        raise ConfigError("log concentrations and the log EC50 must be finite")
    return _falling_logistic(hill_slope * (log_ec50 - x))


def _check_slope(hill_slope: float) -> None:
    if not (hill_slope > 0 and math.isfinite(hill_slope)):
        raise ConfigError(f"Hill slope must be positive, got {hill_slope!r}")


def _falling_logistic(exponent: np.ndarray) -> float | np.ndarray:
    """``1 / (1 + exp(exponent))``, written so that neither branch overflows; a float for a 0-d input."""
    exponent = np.asarray(exponent, dtype=np.float64)
    out = np.empty_like(exponent)
    pos = exponent > 0
    out[pos] = np.exp(-exponent[pos]) / (1.0 + np.exp(-exponent[pos]))
    out[~pos] = 1.0 / (1.0 + np.exp(exponent[~pos]))
    if out.ndim == 0:
        return float(out)
    return out


def ec50_in_range(ec50: float, concentrations: tuple[float, ...] | list[float]) -> bool:
    """Whether ``ec50`` lies within the lowest and highest non-zero tested concentration."""
    tested = [c for c in concentrations if c > 0]
    return bool(tested) and min(tested) <= ec50 <= max(tested)
