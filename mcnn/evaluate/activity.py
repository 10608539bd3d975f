"""Phenotypic activity and consistency of well profiles: mean average precision with copairs.

Following copairs (Kalinin et al., "A versatile information retrieval framework for evaluating
profile strength and similarity", Nature Communications 2025; https://github.com/cytomining/copairs),
every well profile is a query that ranks other wells by cosine similarity:

- *activity* of a treatment (compound at one concentration): the positives of a query are the
  other replicate wells of its treatment, the negatives the negative-control wells. The average
  precision (AP) of each well is averaged into the treatment's mAP; copairs' permutation test
  (``null_size`` random rankings with the same numbers of positives and negatives) gives a
  p-value and Benjamini-Hochberg correction over the treatments a q-value. A treatment is
  *active* when q < ``threshold``: its replicates resemble each other more than the controls.
- *consistency* of a compound: positives are the compound's other wells at any concentration,
  negatives the wells of the other compounds (controls left out); same statistics per compound.

Negative controls are the wells whose ``Metadata_Role`` is ``negative_control`` or whose
``Metadata_Compound`` is one of ``controls`` (default DMSO). copairs and pandas come with the
``screen`` extra and are imported only when a score is computed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mcnn.errors import ConfigError, TableError
from mcnn.evaluate.aggregate import COMPOUND, CONCENTRATION, MOA, PLATE, REPLICATE, WELL
from mcnn.evaluate.profiles import feature_columns, group_medians
from mcnn.figures import save_figure
from mcnn.tables import write_table

PathLike = str | os.PathLike[str]

ROLE = "Metadata_Role"
DEFAULT_CONTROLS = ("DMSO",)
ACTIVITY_COLUMNS = [COMPOUND, CONCENTRATION, "n_wells", "mAP", "p_value", "q_value", "active"]
CONSISTENCY_COLUMNS = [COMPOUND, "n_wells", "n_concentrations", "mAP", "p_value", "q_value", "consistent"]
_GROUP, _REFERENCE = "Metadata_Group", "Metadata_Reference"


def bh_qvalues(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of ``p_values``, in input order."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(q, 1.0)
    return out


def _copairs() -> Any:
    try:
        import copairs.map as copairs_map
    except ImportError:
        raise ConfigError("phenotypic activity (mAP) needs the 'screen' extra: pip install 'mcnn[screen]'") from None
    return copairs_map


def control_mask(compounds: Sequence[str], roles: Sequence[str] | None,
                 controls: Sequence[str] = DEFAULT_CONTROLS) -> np.ndarray:
    """Boolean per well: a negative control (role ``negative_control`` or compound among ``controls``)."""
    names = {c.strip().lower() for c in controls}
    role = roles if roles is not None else [""] * len(compounds)
    return np.array([c.strip().lower() in names or str(r).strip().lower() == "negative_control"
                     for c, r in zip(compounds, role, strict=True)], dtype=bool)


def _map(groups: np.ndarray, references: np.ndarray | None, feats: np.ndarray, queries: np.ndarray, *,
         null_size: int, threshold: float, seed: int) -> dict[int, tuple[float, float]]:
    """{group: (mAP, p-value)} of the query wells by copairs.

    Positives share the group, negatives differ in it. With ``references`` (copairs' convention
    for activity: each control its own index, -1 everything else) positives must also share the
    reference and negatives differ in it too, so that only treatment-vs-control pairs are negatives.
    """
    import pandas as pd

    copairs_map = _copairs()
    columns = {_GROUP: groups.astype(np.int64)}
    if references is not None:
        columns[_REFERENCE] = references.astype(np.int64)
    meta = pd.DataFrame(columns)
    sameby = list(columns)
    ap = copairs_map.average_precision(meta, np.ascontiguousarray(feats, dtype=np.float64), pos_sameby=sameby,
                                       pos_diffby=[], neg_sameby=[], neg_diffby=sameby, distance="cosine",
                                       progress_bar=False)
    ap = ap[queries].reset_index(drop=True)
    with tempfile.TemporaryDirectory(prefix="mcnn-copairs-") as cache:  # copairs caches its nulls on disk
        scores = copairs_map.mean_average_precision(ap, sameby, null_size=null_size, threshold=threshold, seed=seed,
                                                    progress_bar=False, cache_dir=cache)
    return {int(g): (float(m), float(p)) for g, m, p in
            zip(scores[_GROUP], scores["mean_average_precision"], scores["p_value"], strict=True)}


def _codes(keys: Sequence[object]) -> tuple[list[Any], np.ndarray]:
    """Sorted distinct keys and each row's position among them."""
    unique = sorted(set(keys), key=lambda k: (str(k[0]).lower(), *k[1:]) if isinstance(k, tuple) else str(k).lower())
    position = {k: i for i, k in enumerate(unique)}
    return unique, np.array([position[k] for k in keys], dtype=np.int64)


def activity_scores(compounds: Sequence[str], concentrations: Sequence[float], feats: np.ndarray,
                    is_control: np.ndarray, *, null_size: int = 10000, threshold: float = 0.05, seed: int = 0,
                    source: str = "wells") -> list[dict[str, object]]:
    """mAP, p and q of every treatment's wells against the control wells (module docstring).

    One entry per treatment (sorted by compound, then concentration): compound, concentration,
    wells, mAP, p_value, q_value (None for a treatment with a single well) and active.
    Raises :class:`ConfigError` without control wells or without any replicated treatment.
    """
    if not is_control.any():
        raise ConfigError(f"{source}: no negative-control wells (Metadata_Role negative_control or a control "
                          "compound such as DMSO); phenotypic activity ranks replicates against them")
    treated = ~is_control
    keys = [(c, float(x)) if t else ("", -1.0) for c, x, t in zip(compounds, concentrations, treated, strict=True)]
    unique, codes = _codes([k for k, t in zip(keys, treated, strict=True) if t])
    groups = np.full(len(keys), -1, dtype=np.int64)
    groups[treated] = codes
    counts = np.bincount(codes, minlength=len(unique))
    if not (counts >= 2).any():
        raise ConfigError(f"{source}: every treatment has a single well; phenotypic activity needs replicate wells")
    references = np.where(is_control, np.arange(len(keys)), -1)
    scores = _map(groups, references, feats, treated, null_size=null_size, threshold=threshold, seed=seed)
    tested = sorted(scores)
    q = dict(zip(tested, bh_qvalues([scores[g][1] for g in tested]), strict=True))
    out = []
    for g, (compound, conc) in enumerate(unique):
        m, p = scores.get(g, (None, None))
        out.append({"compound": compound, "concentration": conc, "wells": int(counts[g]), "map": m, "p_value": p,
                    "q_value": float(q[g]) if g in q else None, "active": bool(g in q and q[g] < threshold)})
    return out


def consistency_scores(compounds: Sequence[str], concentrations: Sequence[float], feats: np.ndarray, *,
                       null_size: int = 10000, threshold: float = 0.05, seed: int = 0) -> list[dict[str, object]]:
    """mAP, p and q of each compound's wells (any concentration) against other compounds' wells.

    ``compounds`` etc. are the treated wells only. Empty when fewer than two compounds or no
    compound with two wells.
    """
    unique, codes = _codes(list(compounds))
    counts = np.bincount(codes, minlength=len(unique))
    if len(unique) < 2 or not (counts >= 2).any():
        return []
    scores = _map(codes, None, feats, np.ones(len(codes), bool), null_size=null_size,
                  threshold=threshold, seed=seed)
    tested = sorted(scores)
    q = dict(zip(tested, bh_qvalues([scores[g][1] for g in tested]), strict=True))
    out = []
    for g, compound in enumerate(unique):
        m, p = scores.get(g, (None, None))
        doses = {c for c, k in zip(concentrations, codes, strict=True) if k == g}
        out.append({COMPOUND: compound, "n_wells": int(counts[g]), "n_concentrations": len(doses), "mAP": m,
                    "p_value": p, "q_value": float(q[g]) if g in q else None,
                    "consistent": bool(g in q and q[g] < threshold)})
    return out


@dataclass(frozen=True)
class ActivityResult:
    """What :func:`phenotypic_activity` computed and wrote (rows as in the CSVs)."""

    activity: list[dict[str, object]]
    consistency: list[dict[str, object]]
    control_wells: int
    activity_csv: Path
    consistency_csv: Path
    figure: Path


def _load(wells: Any, features: Sequence[str] | None) -> tuple[Any, list[str], str]:
    """(DataFrame, feature columns, source name) of a wells table (Parquet or CSV path, or a DataFrame)."""
    _copairs()
    import pandas as pd

    if isinstance(wells, pd.DataFrame):
        frame, source = wells.reset_index(drop=True), "wells"
    else:
        path = Path(wells)
        if not path.is_file():
            raise TableError(f"{path}: no such file")
        source = str(path)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False) if path.suffix == ".csv" else pd.read_parquet(path)
    for column in (COMPOUND, CONCENTRATION):
        if column not in frame.columns:
            raise TableError(f"{source}: no column {column!r} (needed for phenotypic activity)")
    names = list(features) if features is not None else feature_columns(frame.columns)
    if not names:
        raise TableError(f"{source}: no feature columns (MCNN_*); name them with features=")
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise TableError(f"{source}: no feature column {missing[0]!r}")
    return frame, names, source


def _numbers(frame: Any, names: Sequence[str], source: str) -> tuple[np.ndarray, np.ndarray]:
    """(concentrations, features) as floats, with the first unusable cell named."""
    concentrations = np.empty(len(frame))
    for i, text in enumerate(frame[CONCENTRATION]):
        try:
            concentrations[i] = float(text)
        except (TypeError, ValueError):
            raise TableError(f"{source}: row {i + 1}: {CONCENTRATION} {text!r} is not a number") from None
    try:
        feats = frame[list(names)].to_numpy(dtype=np.float64)
    except ValueError as exc:
        raise TableError(f"{source}: a feature column is not numeric ({exc})") from None
    bad = np.argwhere(~np.isfinite(feats))
    if bad.size:
        raise TableError(f"{source}: row {bad[0][0] + 1}: {names[bad[0][1]]} is not a finite number")
    return concentrations, feats


def phenotypic_activity(wells: Any, out_dir: PathLike, *, features: Sequence[str] | None = None,
                        controls: Sequence[str] = DEFAULT_CONTROLS, null_size: int = 10000, threshold: float = 0.05,
                        seed: int = 0) -> ActivityResult:
    """Activity of every treatment and consistency of every compound of a wells table.

    ``wells``: a ``wells.parquet``/``wells.csv`` (:func:`mcnn.evaluate.profiles.well_profiles`) or a
    pandas DataFrame; ``features``: the profile columns (default every ``MCNN_*`` column). Writes
    ``activity.csv``, ``consistency.csv`` and ``activity.png`` into ``out_dir``. The smallest
    p-value possible is 1 / (``null_size`` + 1).
    """
    frame, names, source = _load(wells, features)
    concentrations, feats = _numbers(frame, names, source)
    compounds = [str(c) for c in frame[COMPOUND]]
    mask = control_mask(compounds, list(frame[ROLE]) if ROLE in frame.columns else None, controls)
    scores = activity_scores(compounds, list(concentrations), feats, mask, null_size=null_size, threshold=threshold,
                             seed=seed, source=source)
    treated = np.flatnonzero(~mask)
    consistency = consistency_scores([compounds[i] for i in treated], list(concentrations[treated]), feats[treated],
                                     null_size=null_size, threshold=threshold, seed=seed)
    rows = [{COMPOUND: s["compound"], CONCENTRATION: s["concentration"], "n_wells": s["wells"], "mAP": s["map"],
             "p_value": s["p_value"], "q_value": s["q_value"], "active": s["active"]} for s in scores]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    activity_csv = write_table(out / "activity.csv", rows, ACTIVITY_COLUMNS)
    consistency_csv = write_table(out / "consistency.csv", consistency, CONSISTENCY_COLUMNS)
    figure = save_figure(activity_figure(rows, threshold, int(mask.sum())), out / "activity.png")
    return ActivityResult(rows, consistency, int(mask.sum()), activity_csv, consistency_csv, figure)


def activity_figure(rows: Sequence[Mapping[str, object]], threshold: float = 0.05, controls: int = 0) -> Figure:
    """mAP of each treatment against -log10 q, active ones filled, the q threshold as a dashed line."""
    tested = [r for r in rows if r["mAP"] is not None]
    fig = Figure(figsize=(6.0, 4.5), layout="constrained")
    ax = fig.add_subplot()
    floor = 1e-300
    x = np.array([float(r["mAP"]) for r in tested])  # type: ignore[arg-type]
    y = np.array([-np.log10(max(float(r["q_value"]), floor)) for r in tested])  # type: ignore[arg-type]
    active = np.array([bool(r["active"]) for r in tested], dtype=bool)
    ax.scatter(x[~active], y[~active], s=28, facecolors="none", edgecolors="0.4", label="not active")
    ax.scatter(x[active], y[active], s=28, color="tab:red", label=f"active (q < {threshold:g})")
    ax.axhline(-np.log10(threshold), color="0.3", linestyle="--", linewidth=1)
    ax.text(0.0, -np.log10(threshold), f" q = {threshold:g}", fontsize=7, va="bottom", color="0.3")
    if len(tested) <= 30:
        # one label per point: treatments that fall on the same spot share it
        spots: dict[tuple[float, float], list[str]] = {}
        for r, xi, yi in zip(tested, x, y, strict=True):
            spots.setdefault((round(xi, 3), round(yi, 2)), []).append(
                f"{r[COMPOUND]} {float(r[CONCENTRATION]):g}")  # type: ignore[arg-type]
        for (xi, yi), names in spots.items():
            right = xi > 0.7
            ax.annotate(", ".join(names), (xi, yi), fontsize=7, xytext=(-4 if right else 4, 3),
                        textcoords="offset points", ha="right" if right else "left")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("mAP (replicate wells vs negative-control wells, cosine)")
    ax.set_ylabel("-log10 q (BH-corrected permutation p)")
    ax.set_title(f"Phenotypic activity: {int(active.sum())} of {len(tested)} treatments active"
                 + (f" ({controls} control wells)" if controls else ""), fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return fig


def _well_level(rows: Sequence[Mapping[str, str]], vectors: np.ndarray) -> tuple[list[Mapping[str, str]], np.ndarray]:
    """Median over the fields of each well (``Metadata_Plate``/``Metadata_Well``, else ``Metadata_Replicate``)."""
    keys = [(r.get(PLATE, ""), r.get(WELL, "")) if (PLATE in r or WELL in r) else (r.get(REPLICATE, ""),)
            for r in rows]
    keys = [(r.get(COMPOUND, ""), r.get(CONCENTRATION, ""), *k) for r, k in zip(rows, keys, strict=True)]
    _, medians, _, first = group_medians(keys, np.asarray(vectors, dtype=np.float64))
    return [rows[i] for i in first], medians


def treatment_activity(rows: Sequence[Mapping[str, str]], vectors: np.ndarray,
                       control_rows: Sequence[Mapping[str, str]], control_vectors: np.ndarray, *,
                       null_size: int = 10000, threshold: float = 0.05, seed: int = 0) -> list[dict[str, object]]:
    """mAP and p of each treatment of ``rows`` against the control wells, in one feature space.

    For BBBC021's leave-one-compound-out folds: ``rows``/``vectors`` are the held-out compound's
    fields (index rows and their penultimate-layer features), ``control_rows``/``control_vectors``
    the DMSO fields, both through the fold's net. Fields are reduced to well medians first.
    Returns ``{"compound", "concentration", "moa", "wells", "map", "p_value", "q_value"}`` per
    treatment; q is corrected over this call's treatments only (pool p-values across folds with
    :func:`bh_qvalues`).
    """
    wells, profiles = _well_level(rows, vectors)
    controls, control_profiles = _well_level(control_rows, control_vectors)
    all_rows = [*wells, *controls]
    try:
        concentrations = [float(r[CONCENTRATION]) for r in all_rows]
    except (KeyError, ValueError):
        raise TableError(f"a row without a numeric {CONCENTRATION} (needed for phenotypic activity)") from None
    mask = np.array([False] * len(wells) + [True] * len(controls))
    scores = activity_scores([r.get(COMPOUND, "") for r in all_rows], concentrations,
                             np.concatenate([profiles, control_profiles]), mask, null_size=null_size,
                             threshold=threshold, seed=seed, source="treatment_activity")
    moa = {(r.get(COMPOUND, ""), float(r[CONCENTRATION])): r.get(MOA, "") for r in wells}
    return [{"compound": s["compound"], "concentration": s["concentration"],
             "moa": moa.get((s["compound"], s["concentration"]), ""), "wells": s["wells"], "map": s["map"],  # type: ignore[arg-type]
             "p_value": s["p_value"], "q_value": s["q_value"]} for s in scores]
