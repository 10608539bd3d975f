"""Four-parameter log-logistic fits (R drc's ``LL.4``) with EC50 standard error, CI and F-test.

The model is drc's ``LL.4(names = c("b", "c", "d", "e"))``::

    f(x) = c + (d - c) / (1 + exp(b * (log(x) - log(e))))

with ``x`` a concentration (> 0, any unit), ``c`` and ``d`` the asymptotes, ``e`` the EC50 (same unit as
``x``) and ``b`` drc's slope (``b < 0``: the response rises with concentration). The fit is done in
``log(e)`` (drc's ``LL2.4``), so the standard error of ``log(e)`` comes from the fit's covariance and
the 95 % confidence interval ``exp(log(e) -/+ t * SE)`` is drc's ``ED(..., interval = "fls")``.

Results are reported in a canonical orientation: ``bottom = min(c, d)``, ``top = max(c, d)`` (the two
orientations describe the same curve once ``b`` changes sign) and ``hill_slope = -b``, positive when
the response rises with concentration (GraphPad's convention).

:func:`fit_ll4` never raises on bad data: the ``status`` of the returned :class:`DoseFit` says whether an
EC50 is supported (``STATUSES`` lists the values; ``docs/dose_response.md`` the exact rules).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize, special

OK = "ok"
FLAT = "flat"
TOO_FEW_CONCENTRATIONS = "too_few_concentrations"
EC50_OUTSIDE_RANGE = "ec50_outside_range"
NO_PLATEAU = "no_plateau"
FIT_FAILED = "fit_failed"
INVALID_INPUT = "invalid_input"

#: Every status :func:`fit_ll4` returns, with its meaning (checked in this order).
STATUSES: dict[str, str] = {
    INVALID_INPUT: "a concentration is not a finite number > 0 or a response is not finite (NaN, inf)",
    TOO_FEW_CONCENTRATIONS: "fewer distinct concentrations than min_concentrations, or fewer than 5 points",
    FIT_FAILED: "the least-squares fit did not converge from any starting value",
    FLAT: "the 4-parameter curve is not significantly better than a flat line (F-test p >= alpha), or it "
          "changes by less than min_span over the tested concentrations",
    EC50_OUTSIDE_RANGE: "the fitted EC50 lies below the lowest or above the highest tested concentration",
    NO_PLATEAU: "the tested concentrations do not reach both plateaus of the fitted curve",
    OK: "a sigmoid fits and its EC50 lies inside the tested range with both plateaus reached",
}

#: Statuses with a fitted curve (``DoseFit.curve`` is set; slope and asymptotes are reported).
CURVE_STATUSES = frozenset({OK, EC50_OUTSIDE_RANGE, NO_PLATEAU})

nan = float("nan")


def ll4(x: np.ndarray | float, b: float, c: float, d: float, e: float) -> np.ndarray:
    """drc's LL.4 at concentrations ``x`` (> 0, same unit as ``e``); returns an array shaped like ``x``."""
    logx = np.log(np.asarray(x, dtype=float))
    return _ll4_log(logx, b, c, d, math.log(e))


def _ll4_log(logx: np.ndarray, b: float, c: float, d: float, loge: float) -> np.ndarray:
    # c + (d - c) / (1 + exp(b u)) == c + (d - c) * expit(-b u), without overflow.
    return c + (d - c) * special.expit(-b * (logx - loge))


def _ll4_log_jac(logx: np.ndarray, b: float, c: float, d: float, loge: float) -> np.ndarray:
    u = logx - loge
    s = special.expit(-b * u)
    ds = (d - c) * s * (1.0 - s)
    return np.column_stack([-u * ds, 1.0 - s, s, b * ds])


@dataclass(frozen=True)
class LL4:
    """Fitted LL.4 parameters as drc names them (``e`` in the concentration unit)."""

    b: float
    c: float
    d: float
    e: float

    def __call__(self, x: np.ndarray | float) -> np.ndarray:
        """The curve at concentrations ``x``."""
        return ll4(x, self.b, self.c, self.d, self.e)


@dataclass
class DoseFit:
    """Outcome of one LL.4 fit. Fields that a status does not support are NaN (see ``docs/dose_response.md``).

    Concentrations (``ec50*``, ``conc_*``) are in the unit of the input; ``log10_ec50`` is ``log10`` of it;
    responses (``bottom``, ``top``, ``response_range``) are in the unit of the response (probability).
    """

    status: str
    message: str = ""
    n_points: int = 0
    n_concentrations: int = 0
    conc_min: float = nan
    conc_max: float = nan
    ec50: float = nan
    ec50_se: float = nan  # delta method: ec50 * SE(log ec50)
    ec50_ci_low: float = nan
    ec50_ci_high: float = nan
    log10_ec50: float = nan
    log10_ec50_se: float = nan
    ec50_bound: str = ""  # for ec50_outside_range: "<conc_min" or ">conc_max"
    hill_slope: float = nan  # -b: > 0 when the response rises with concentration
    hill_slope_se: float = nan
    bottom: float = nan
    bottom_se: float = nan
    top: float = nan
    top_se: float = nan
    response_range: float = nan  # fitted f(conc_max) - f(conc_min)
    r_squared: float = nan
    rss: float = nan
    df_residual: int = 0
    f_statistic: float = nan
    f_pvalue: float = nan
    level: float = 0.95
    curve: LL4 | None = field(default=None)

    def as_dict(self) -> dict[str, object]:
        """Every field as plain Python values (``curve`` as a dict of b, c, d, e or None)."""
        out = asdict(self)
        out["curve"] = None if self.curve is None else asdict(self.curve)
        return out


def starting_values(logx: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """drc-style self-start ``(b, c, d, log e)``: asymptotes from the response range, then ``b`` and
    ``log e`` from the straight-line fit ``log((d - y) / (y - c)) = b log x - b log e``.

    Falls back to the log concentration where the response crosses half way and ``b = -+1`` when
    fewer than two points lie strictly between the asymptotes.
    """
    lo, hi = float(np.min(y)), float(np.max(y))
    span = hi - lo
    if span > 0 and np.ptp(logx) > 0:
        c0, d0 = lo - 0.05 * span, hi + 0.05 * span
        z = np.log((d0 - y) / (y - c0))
        slope, intercept = np.polyfit(logx, z, 1)
        if slope != 0 and np.isfinite(slope) and np.isfinite(intercept):
            return float(slope), lo, hi, float(-intercept / slope)
    rising = np.corrcoef(logx, y)[0, 1] > 0 if np.ptp(y) > 0 and np.ptp(logx) > 0 else True
    order = np.argsort(logx)
    half = lo + span / 2
    crossing = float(np.interp(half, y[order], logx[order])) if rising else float(np.median(logx))
    return (-1.0 if rising else 1.0), lo, hi, crossing


def _bounds(logx: np.ndarray, asymptote_bounds: tuple[float, float] | None, max_abs_b: float,
            log_e_margin: float) -> tuple[np.ndarray, np.ndarray]:
    a_lo, a_hi = asymptote_bounds if asymptote_bounds is not None else (-np.inf, np.inf)
    lower = np.array([-max_abs_b, a_lo, a_lo, logx.min() - log_e_margin])
    upper = np.array([max_abs_b, a_hi, a_hi, logx.max() + log_e_margin])
    return lower, upper


def _grid_start(logx: np.ndarray, y: np.ndarray, lower: np.ndarray, upper: np.ndarray
                ) -> tuple[float, float, float, float]:
    """Best ``(b, c, d, log e)`` on a grid of slopes and EC50s; ``c, d`` by linear least squares.

    For fixed ``b`` and ``log e`` the curve is linear in ``c`` and ``d``, so each grid point costs one
    2 x 2 solve; this guards the local optimiser against the wrong side of a non-convex RSS surface.
    """
    b_grid = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
    b_grid = np.concatenate([-b_grid, b_grid])
    le_grid = np.linspace(logx.min() - 1.0, logx.max() + 1.0, 25)
    bb, ll = np.meshgrid(b_grid, le_grid, indexing="ij")
    bb, ll = bb.ravel(), ll.ravel()
    s = special.expit(-bb[:, None] * (logx[None, :] - ll[:, None]))  # (grid, n)
    s11 = np.sum((1 - s) ** 2, axis=1)
    s12 = np.sum((1 - s) * s, axis=1)
    s22 = np.sum(s**2, axis=1)
    r1 = (1 - s) @ y
    r2 = s @ y
    det = s11 * s22 - s12**2
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(det > 1e-12, (s22 * r1 - s12 * r2) / det, y.mean())
        d = np.where(det > 1e-12, (s11 * r2 - s12 * r1) / det, y.mean())
    c = np.clip(c, lower[1], upper[1])
    d = np.clip(d, lower[2], upper[2])
    rss = np.sum((y[None, :] - (c[:, None] + (d - c)[:, None] * s)) ** 2, axis=1)
    i = int(np.argmin(rss))
    return float(bb[i]), float(c[i]), float(d[i]), float(ll[i])


def _fit_best(logx: np.ndarray, y: np.ndarray, lower: np.ndarray, upper: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Least squares from the better (lower RSS) of the drc-style start and the best grid point; the
    other start is tried only when that fit fails. Returns ``(params, covariance, rss)`` or None."""
    width = np.where(np.isfinite(upper - lower), upper - lower, 1.0)
    inner_lo, inner_hi = lower + 1e-6 * width, upper - 1e-6 * width
    starts = [np.clip(np.asarray(s, dtype=float), inner_lo, inner_hi)
              for s in (starting_values(logx, y), _grid_start(logx, y, lower, upper))]
    starts.sort(key=lambda p: float(np.sum((y - _ll4_log(logx, *p)) ** 2)))
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                popt, pcov = optimize.curve_fit(_ll4_log, logx, y, p0=p0, jac=_ll4_log_jac, bounds=(lower, upper),
                                                method="trf", max_nfev=2000)
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            continue
        if np.all(np.isfinite(popt)):
            return popt, pcov, float(np.sum((y - _ll4_log(logx, *popt)) ** 2))
    return None


def _canonical(popt: np.ndarray, pcov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Swap to ``c <= d`` (negating ``b``); the covariance follows the same linear map."""
    if popt[1] <= popt[2]:
        return popt, pcov
    m = np.array([[-1.0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])
    return m @ popt, m @ pcov @ m.T


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def fit_ll4(concentration: Sequence[float] | np.ndarray, response: Sequence[float] | np.ndarray, *,
            level: float = 0.95, alpha: float = 0.05, min_concentrations: int = 5, min_span: float = 0.1,
            plateau_fraction: float = 0.2, asymptote_bounds: tuple[float, float] | None = (0.0, 1.0),
            max_abs_b: float = 50.0, log_e_margin: float = math.log(1000.0)) -> DoseFit:
    """Fit drc's LL.4 to ``response`` at ``concentration`` (1-D, same length; repeats allowed).

    Args:
        concentration: concentrations (> 0), any unit; several points may share a concentration
            (replicates).
        response: responses (probabilities for this toolkit), one per concentration entry.
        level: confidence level of the EC50 interval (t quantile with ``n - 4`` degrees of freedom).
        alpha: significance level of the F-test of the curve against a flat line.
        min_concentrations: fewest distinct concentrations to attempt a fit (at least 5 points are
            always needed, so the F-test and the CI have a residual degree of freedom).
        min_span: smallest change of the fitted curve over the tested range, ``|f(max) - f(min)|``, that
            counts as a response (response units); below it the result is ``flat``.
        plateau_fraction: the tested range must bring the fitted curve within this fraction of
            ``top - bottom`` of each asymptote, else ``no_plateau``.
        asymptote_bounds: bounds on ``c`` and ``d`` (``(0, 1)`` for probabilities; None: unbounded).
        max_abs_b: bound on ``|b|`` (a step between two concentrations hits it).
        log_e_margin: ``log(e)`` may go this far (natural log) outside the tested range during the fit.

    Returns:
        A :class:`DoseFit`; ``status`` is one of ``STATUSES``.
    """
    x = np.asarray(concentration, dtype=float).ravel()
    y = np.asarray(response, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"concentration has {x.size} values, response {y.size}")
    result = DoseFit(status=OK, n_points=int(x.size), level=level)
    if not _usable_input(x, y, result, min_concentrations):
        return result
    logx = np.log(x)
    result.df_residual = x.size - 4
    tss = float(np.sum((y - y.mean()) ** 2))
    if tss == 0.0:
        result.status, result.message = FLAT, "the response is constant"
        result.f_statistic, result.f_pvalue, result.rss, result.response_range = 0.0, 1.0, 0.0, 0.0
        return result
    lower, upper = _bounds(logx, asymptote_bounds, max_abs_b, log_e_margin)
    best = _fit_best(logx, y, lower, upper)
    if best is None:
        result.status, result.message = FIT_FAILED, "least squares did not converge from any starting value"
        return result
    popt, pcov = _canonical(best[0], best[1])
    if not _significant(logx, popt, best[2], tss, result, alpha, min_span):
        return result
    _set_curve(popt, pcov, result)
    if not _ec50_supported(logx, popt, result, plateau_fraction):
        return result
    _set_ec50(x, popt, pcov, result, level, plateau_fraction)
    return result


def _usable_input(x: np.ndarray, y: np.ndarray, result: DoseFit, min_concentrations: int) -> bool:
    """Record the tested range in ``result``; False (with the status set) for invalid or too few points."""
    valid_x = np.isfinite(x) & (x > 0)
    if valid_x.any():
        result.conc_min, result.conc_max = float(x[valid_x].min()), float(x[valid_x].max())
    result.n_concentrations = int(np.unique(x[valid_x]).size)
    problems = []
    if not valid_x.all():
        problems.append(f"{int((~valid_x).sum())} concentration(s) not a finite number > 0")
    if not np.isfinite(y).all():
        bad = np.unique(x[~np.isfinite(y)])
        problems.append(f"response not finite at concentration(s) {', '.join(_fmt(v) for v in bad)}")
    if problems:
        result.status, result.message = INVALID_INPUT, "; ".join(problems)
        return False
    needed = max(int(min_concentrations), 1)
    if result.n_concentrations < needed or x.size < 5:
        result.status = TOO_FEW_CONCENTRATIONS
        result.message = (f"{result.n_concentrations} concentration(s) and {x.size} point(s); "
                          f"a fit needs {needed} concentrations and 5 points")
        return False
    return True


def _significant(logx: np.ndarray, popt: np.ndarray, rss: float, tss: float, result: DoseFit, alpha: float,
                 min_span: float) -> bool:
    """R², the F-test against a flat line and the fitted change over the tested range; False when ``flat``."""
    b, c, d, loge = (float(v) for v in popt)
    df = result.df_residual
    result.rss = rss
    result.r_squared = 1.0 - rss / tss
    f_stat = max(tss - rss, 0.0) / 3.0 / (rss / df) if rss > 0 else math.inf
    result.f_statistic = f_stat
    result.f_pvalue = float(special.fdtrc(3, df, f_stat)) if math.isfinite(f_stat) else 0.0
    f_lo, f_hi = _ll4_log(logx.min(), b, c, d, loge), _ll4_log(logx.max(), b, c, d, loge)
    result.response_range = float(f_hi - f_lo)
    if result.f_pvalue >= alpha:
        result.status = FLAT
        result.message = f"F-test against a flat line: p = {result.f_pvalue:.3g} >= {alpha:g}"
        return False
    if abs(result.response_range) < min_span:
        result.status = FLAT
        result.message = (f"the fitted curve changes by {abs(result.response_range):.3g} over the tested "
                          f"concentrations, less than min_span {min_span:g}")
        return False
    return True


def _standard_errors(pcov: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.sqrt(np.diag(pcov)) if np.all(np.isfinite(pcov)) else np.full(4, np.inf)


def _set_curve(popt: np.ndarray, pcov: np.ndarray, result: DoseFit) -> None:
    """The fitted curve, slope and asymptotes with their standard errors."""
    b, c, d, loge = (float(v) for v in popt)
    se = _standard_errors(pcov)
    result.curve = LL4(b=b, c=c, d=d, e=math.exp(loge))
    result.hill_slope, result.hill_slope_se = -b, float(se[0])
    result.bottom, result.bottom_se = c, float(se[1])
    result.top, result.top_se = d, float(se[2])


def _ec50_supported(logx: np.ndarray, popt: np.ndarray, result: DoseFit, plateau_fraction: float) -> bool:
    """False (status ``ec50_outside_range`` or ``no_plateau``) when the tested range cannot support an EC50."""
    b, c, d, loge = (float(v) for v in popt)
    e = math.exp(loge)
    if e < result.conc_min or e > result.conc_max:
        above = e > result.conc_max
        result.status = EC50_OUTSIDE_RANGE
        result.ec50_bound = f">{_fmt(result.conc_max)}" if above else f"<{_fmt(result.conc_min)}"
        side = "above the highest" if above else "below the lowest"
        result.message = f"the fitted EC50 lies {side} tested concentration ({result.ec50_bound})"
        return False
    f_lo, f_hi = _ll4_log(logx.min(), b, c, d, loge), _ll4_log(logx.max(), b, c, d, loge)
    g = (np.array([f_lo, f_hi]) - c) / (d - c) if d > c else np.array([0.5, 0.5])
    ends = [name for name, missing in (("bottom", g.min() > plateau_fraction),
                                       ("top", g.max() < 1.0 - plateau_fraction)) if missing]
    if ends:
        result.status = NO_PLATEAU
        result.message = (f"the tested concentrations cover {100 * g.min():.0f}-{100 * g.max():.0f} % of the "
                          f"fitted curve; no {' or '.join(ends)} plateau (plateau_fraction {plateau_fraction:g})")
        return False
    return True


def _set_ec50(x: np.ndarray, popt: np.ndarray, pcov: np.ndarray, result: DoseFit, level: float,
              plateau_fraction: float) -> None:
    """The EC50, its standard errors and the delta-method CI (widened to the neighbours for a step)."""
    b, c, d, loge = (float(v) for v in popt)
    e = math.exp(loge)
    se_loge = float(_standard_errors(pcov)[3])
    t = float(special.stdtrit(result.df_residual, 0.5 + level / 2.0))
    result.ec50 = e
    result.ec50_se = e * se_loge
    result.log10_ec50 = loge / math.log(10.0)
    result.log10_ec50_se = se_loge / math.log(10.0)
    low = high = nan
    if math.isfinite(se_loge):
        with np.errstate(over="ignore"):
            low, high = (float(v) for v in np.exp([loge - t * se_loge, loge + t * se_loge]))
    tested = np.unique(x)
    g_tested = (_ll4_log(np.log(tested), b, c, d, loge) - c) / (d - c)
    if not np.any((g_tested >= plateau_fraction) & (g_tested <= 1.0 - plateau_fraction)):
        # A step: every EC50 between the neighbouring concentrations fits about as well (b -> inf).
        below, above = float(tested[tested <= e].max()), float(tested[tested >= e].min())
        low = below if not math.isfinite(low) else min(low, below)
        high = above if not math.isfinite(high) else max(high, above)
        result.message = (f"no tested concentration lies on the slope of the curve; the CI is widened to the "
                          f"neighbouring concentrations {_fmt(below)} and {_fmt(above)}")
    result.ec50_ci_low, result.ec50_ci_high = low, high
