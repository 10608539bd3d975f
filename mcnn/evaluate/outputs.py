"""Writing an evaluation: predictions CSV, metrics JSON, confusion matrix CSV and figure.

With example fields (:class:`mcnn.evaluate.fieldview.Examples`) the confusion figures show one
field per class below the matrix, and the pictures are kept in ``examples.npz``.

Shared by ``tools/evaluate.py`` (one test set) and the reproduction runner (every split).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mcnn.evaluate.aggregate import MOA, aggregate_treatments
from mcnn.evaluate.fieldview import Examples, write_examples
from mcnn.evaluate.metrics import accuracy, confusion_matrix, per_class_accuracy
from mcnn.evaluate.moa import MoaResult, classify_treatments
from mcnn.evaluate.plots import confusion_figure
from mcnn.figures import save_figure
from mcnn.fsutil import atomic_write_text
from mcnn.tables import write_table

PathLike = str | os.PathLike[str]


@dataclass
class SplitRun:
    """How one split of a reproduction ran: the keys metrics.json holds beside the image metrics.

    Sizes are images, ``seconds`` the wall time of the attempt that finished the split;
    ``profiling`` (BBBC021 only) lists the NSC/NSCB neighbour of each held-out treatment.
    """

    split: str
    arch: str
    engine: str
    hardware: str
    train_size: int
    test_size: int
    iterations: int
    profiling: dict[str, object] | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """The metrics.json keys in order (``profiling`` only when set)."""
        return {k: v for k, v in asdict(self).items() if k != "profiling" or v is not None}


def _nan_to_none(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def write_confusion(path: PathLike, cm: np.ndarray, classes: Sequence[str]) -> Path:
    """CSV with a header of predicted classes and one row per true class."""
    rows = [{"true": name, **{c: int(v) for c, v in zip(classes, cm[i], strict=True)}}
            for i, name in enumerate(classes)]
    return write_table(path, rows, ["true", *classes])


def image_metrics(rows: Sequence[Mapping[str, object]], classes: Sequence[str]) -> dict[str, object]:
    """Accuracy, per-class accuracy and confusion matrix of the labelled rows (label >= 0)."""
    labelled = [r for r in rows if int(r["label"]) >= 0]
    cm = confusion_matrix([int(r["label"]) for r in labelled], [int(r["predicted_label"]) for r in labelled],
                          len(classes))
    return {"images": len(labelled), "accuracy": _nan_to_none(accuracy(cm)),
            "per_class_accuracy": {c: _nan_to_none(a) for c, a in zip(classes, per_class_accuracy(cm), strict=True)},
            "confusion": cm.tolist(), "classes": list(classes)}


def moa_result(rows: Sequence[Mapping[str, object]], classes: Sequence[str], source: str) -> MoaResult | None:
    """Treatment-level MoA classification when the rows carry ``Metadata_MoA`` (BBBC021), else None."""
    labelled = [r for r in rows if str(r.get(MOA, "")) in classes]
    if not labelled:
        return None
    probs = np.array([[float(r[f"prob_{c}"]) for c in classes] for r in labelled])
    treatments = aggregate_treatments([{k: str(v) for k, v in r.items()} for r in labelled], probs, source)
    return classify_treatments(treatments, classes)


def example_pictures(examples: Examples | None, classes: Sequence[str]) -> list[np.ndarray | None] | None:
    """The pictures of ``examples`` when they are of exactly ``classes`` (else None: no pictures)."""
    return examples.images if examples is not None and examples.classes == list(classes) else None


def write_moa(out_dir: Path, result: MoaResult, examples: Examples | None = None) -> dict[str, object]:
    """``moa_treatments.csv``, ``moa_confusion.csv``/``.png`` (with ``examples`` of the MoA classes below the
    matrix); returns the summary for metrics.json."""
    rows = [{"compound": t.compound, "concentration": t.concentration, "moa": t.moa, "predicted_moa": guess,
             "correct": t.moa == guess, "wells": t.wells, "fields": t.fields,
             **{f"prob_{c}": float(v) for c, v in zip(result.classes, t.vector, strict=True)}}
            for t, guess in result.predictions]
    columns = ["compound", "concentration", "moa", "predicted_moa", "correct", "wells", "fields",
               *[f"prob_{c}" for c in result.classes]]
    write_table(out_dir / "moa_treatments.csv", rows, columns)
    write_confusion(out_dir / "moa_confusion.csv", result.confusion, result.classes)
    save_figure(confusion_figure(result.confusion, result.classes, "MoA per treatment",
                                 example_pictures(examples, result.classes)), out_dir / "moa_confusion.png")
    return {"treatments": len(result.predictions), "treatment_accuracy": _nan_to_none(result.treatment_accuracy),
            "per_moa_accuracy": {k: _nan_to_none(v) for k, v in result.per_moa.items()},
            "table1_median": _nan_to_none(result.table1.median), "table1_sd": _nan_to_none(result.table1.sd),
            "table1_mean": _nan_to_none(result.table1.mean)}


def write_evaluation(out_dir: PathLike, rows: Sequence[Mapping[str, object]], columns: Sequence[str],
                     classes: Sequence[str], title: str = "", extra: Mapping[str, object] | None = None,
                     examples: Examples | None = None) -> dict[str, object]:
    """Write predictions.csv, metrics.json and the confusion matrix (CSV and PNG) into ``out_dir``.

    ``examples`` (one field per class, :func:`mcnn.evaluate.fieldview.class_examples`) are drawn below
    the matrices and written to ``examples.npz``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "predictions.csv", rows, columns)
    metrics = image_metrics(rows, classes)
    cm = np.asarray(metrics["confusion"], dtype=np.int64)
    write_confusion(out / "confusion.csv", cm, classes)
    if examples is not None:
        write_examples(out / "examples.npz", examples)
    save_figure(confusion_figure(cm, classes, title, example_pictures(examples, classes)), out / "confusion.png")
    moa = moa_result(rows, classes, str(out / "predictions.csv"))
    if moa is not None:
        metrics["moa"] = write_moa(out, moa, examples)
    if extra:
        metrics.update(extra)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics
