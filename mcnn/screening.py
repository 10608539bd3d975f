"""Your own screen, after training: every field predicted, profiled, scored for activity and potency.

One call, :func:`screen_outputs`, takes a trained deploy net and the ``screen`` LMDB of a prepared
screen (every field, in plate/well/site order) and writes into one folder:

- ``fields.parquet`` and ``predictions.csv``: per-field probabilities (the paper's soft
  predictions, Eq. 1) and penultimate-layer profiles, streamed chunk by chunk and resumable
  (:func:`mcnn.evaluate.screen.predict_screen`);
- ``wells.parquet`` and ``treatments.csv``: the paper's medians per well and per treatment
  (:func:`mcnn.evaluate.profiles.well_profiles`), the profiles pycytominer reads (and, on request,
  ``fields.csv`` and ``wells.csv``: the profiles as CSV);
- ``activity.csv``, ``consistency.csv``, ``activity.png``: phenotypic activity, the mean average
  precision of each treatment's replicate wells against the negative-control wells, with copairs'
  permutation p-values (:func:`mcnn.evaluate.activity.phenotypic_activity`);
- ``dose/``: dose-response curves and EC50s per compound for the chosen classes
  (:func:`mcnn.dose.pipeline.analyze`).

Only the prediction is expensive and only it is reused on a re-run (when its manifest matches);
the aggregates, activity and fits are recomputed from it every time, so they never go stale.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from mcnn.datasets.screenspec import Selector
from mcnn.errors import ConfigError, TableError
from mcnn.tables import read_table, write_table

PathLike = str | os.PathLike[str]
COMPOUND = "Metadata_Compound"
CONCENTRATION = "Metadata_Concentration"


@dataclass
class ScreenSettings:
    """What :func:`screen_outputs` needs besides the model: which wells are the negative and the
    positive controls (``COLUMN=VALUE[|VALUE]`` selectors, as ``prepare.py screen`` takes them),
    the classes of the dose-response fits (default every class but the negative controls'
    ``control_classes``), the concentration unit, and the engine, device and batch of the prediction."""

    negative_control: str = "Metadata_Role=negative_control"
    positive_control: str = ""
    control_classes: tuple[str, ...] = ()
    dose_classes: tuple[str, ...] = ()
    unit: str = ""
    engine: str = "torch"
    gpu: int | None = None
    batch: int = 16
    #: Fields per resumable part of the prediction (a killed run redoes at most this many).
    chunk: int = 512
    progress: bool = False
    activity: bool = True
    dose: bool = True
    #: Also write the profiles as CSV: ``fields.csv`` and ``wells.csv`` beside the Parquet files.
    profiles_csv: bool = False
    null_size: int = 10000
    seed: int = 0
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class ScreenOutputs:
    """The files :func:`screen_outputs` wrote (None: the step did not apply, ``skipped`` says why)."""

    out: Path
    fields: Path
    predictions: Path
    wells: Path | None
    treatments: Path | None = None
    activity: Path | None = None
    dose: Path | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    #: fields, wells and treatments (0 without a treatments table).
    counts: dict[str, int] = field(default_factory=dict)


def _matches(row: Mapping[str, str], selector: Selector | None) -> bool:
    return selector is not None and selector.matches(str(row.get(selector.column, "")))


def control_compounds(predictions: PathLike, negative: Selector) -> tuple[str, ...]:
    """The ``Metadata_Compound`` values of the rows the negative-control selector picks."""
    table = read_table(predictions)
    if negative.column not in table.columns:
        raise TableError(f"{predictions}: no column {negative.column!r} for the negative control "
                         f"(columns: {', '.join(c for c in table.columns if c.startswith('Metadata_'))})")
    names = sorted({r.get(COMPOUND, "") for r in table.rows if _matches(r, negative)} - {""})
    if not names:
        raise TableError(f"{predictions}: no row has {negative.text()} (the negative control)")
    return tuple(names)


def control_classes(train_index: PathLike | None, negative: str, default: str = "control") -> tuple[str, ...]:
    """The classes the negative-control wells train (from a split's ``train_index.csv``), else ``default``:
    the classes a screen's dose-response fits leave out."""
    selector = Selector.parse(negative or "Metadata_Role=negative_control", "negative_control")
    found: set[str] = set()
    if train_index is not None and Path(train_index).is_file():
        found = {r.get("class_name", "") for r in read_table(train_index).rows if _matches(r, selector)} - {""}
    return tuple(sorted(found)) or (default,)


def dose_table(predictions: PathLike, out: Path, positive: Selector | None) -> Path:
    """``out``: the rows of ``predictions`` without the positive controls (their one concentration is no curve)."""
    table = read_table(predictions)
    rows = [r for r in table.rows if not _matches(r, positive) and r.get("Metadata_Role", "") != "positive_control"]
    return write_table(out, rows, table.columns)


def screen_outputs(deploy: PathLike, weights: PathLike, lmdb: PathLike, index: PathLike, out: PathLike, *,
                   labels: PathLike | None, train_val: PathLike | None, settings: ScreenSettings,
                   log: Callable[[str], None] = print) -> ScreenOutputs:
    """Predict, profile and score the whole screen of ``lmdb`` into ``out`` (see the module docstring);
    ``labels``/``train_val`` None: from the model card beside ``weights``, else found beside the LMDB and net."""
    from mcnn.evaluate.profiles import parquet_to_csv, well_profiles
    from mcnn.evaluate.screen import predict_screen

    negative = Selector.parse(settings.negative_control or "Metadata_Role=negative_control", "negative_control")
    if negative is None:
        raise ConfigError("--negative-control: a screen's outputs need its negative-control wells")
    positive = Selector.parse(settings.positive_control, "positive_control")
    out = Path(out)
    pred = predict_screen(deploy, weights, lmdb, index, out, labels=labels, train_val=train_val,
                          engine=settings.engine, gpu=settings.gpu, batch_size=settings.batch,
                          chunk=settings.chunk, progress=settings.progress)
    result = ScreenOutputs(out, pred.fields_parquet, pred.predictions_csv, None)
    result.counts = {"fields": pred.fields, "wells": 0, "treatments": 0}
    if "Metadata_Well" not in pq.read_schema(pred.fields_parquet).names:  # an LMDB without its index CSV
        result.skipped["wells"] = "no Metadata_Well column (give the LMDB's index CSV)"
        log(f"screen: {pred.fields} fields predicted in {out} (no well column: no well profiles)")
        return result
    wells = well_profiles(pred.fields_parquet, out / "wells.parquet", write_csv=settings.profiles_csv)
    if settings.profiles_csv:
        parquet_to_csv(pred.fields_parquet, out / "fields.csv")
    result.wells, result.treatments = wells.path, wells.treatments
    result.counts.update(wells=wells.wells,
                         treatments=len(read_table(wells.treatments).rows) if wells.treatments else 0)
    log(f"screen: {pred.fields} fields predicted, {wells.wells} well profiles in {out}")
    if not (settings.activity or settings.dose):
        return result
    controls = control_compounds(pred.predictions_csv, negative)
    if settings.activity:
        _activity(result, controls, settings, log)
    if settings.dose:
        _dose(result, pred.classes, controls, positive, settings, log)
    return result


def _activity(result: ScreenOutputs, controls: Sequence[str], settings: ScreenSettings,
              log: Callable[[str], None]) -> None:
    from mcnn.evaluate.activity import phenotypic_activity

    try:
        activity = phenotypic_activity(result.wells, result.out, controls=tuple(controls),
                                       null_size=settings.null_size, seed=settings.seed)
    except ConfigError as exc:  # e.g. one well per treatment: no replicates to rank
        result.skipped["activity"] = str(exc)
        log(f"screen: no phenotypic activity: {exc}")
        return
    result.activity = activity.activity_csv
    active = sum(bool(r["active"]) for r in activity.activity)
    log(f"screen: phenotypic activity of {len(activity.activity)} treatments ({active} active, q < 0.05) "
        f"against {activity.control_wells} control wells")


def _dose(result: ScreenOutputs, classes: Sequence[str], controls: Sequence[str],
          positive: Selector | None, settings: ScreenSettings, log: Callable[[str], None]) -> None:
    from mcnn.dose.analysis import DoseSettings
    from mcnn.dose.pipeline import analyze

    table = read_table(result.predictions)
    if CONCENTRATION not in table.columns or COMPOUND not in table.columns:
        result.skipped["dose"] = f"no {COMPOUND}/{CONCENTRATION} columns"
        return
    fit = list(settings.dose_classes) or [c for c in classes if c not in settings.control_classes]
    unknown = [c for c in fit if c not in classes]
    if unknown:
        raise ConfigError(f"--dose-class {unknown[0]!r}: not a class of the model ({', '.join(classes)})")
    folder = result.out / "dose"
    source = dose_table(result.predictions, result.out / "dose_predictions.csv", positive)
    analysis = analyze(source, folder, DoseSettings(unit=settings.unit, control_names=tuple(controls)), classes=fit)
    result.dose = folder
    ok = sum(r.fit.status == "ok" for r in analysis.results)
    log(f"screen: dose-response of {len(analysis.groups)} compounds x {len(fit)} classes ({ok} EC50s) in {folder}")
