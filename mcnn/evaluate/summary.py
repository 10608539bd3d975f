"""The Table 1 summary of a reproduction run folder: results.csv, results.md and summary_<arch>.json.

Every finished split left a ``metrics.json``; the summary pools their confusion matrices, takes
the paper's statistic over the repeats (for BBBC021, the leave-one-compound-out folds: over the
per-MoA accuracies of the treatments) and writes one :class:`TableRow` per architecture beside the
published values. The fields of :class:`TableRow` are the columns of ``results.csv``; ``results.md``
is formatted from the same rows by :data:`MD_COLUMNS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from mcnn.evaluate.activity import bh_qvalues
from mcnn.evaluate.aggregate import Treatment
from mcnn.evaluate.fieldview import Examples, merge_examples, read_examples
from mcnn.evaluate.metrics import per_class_accuracy, summarize
from mcnn.evaluate.moa import classify_treatments
from mcnn.evaluate.outputs import example_pictures, write_confusion
from mcnn.evaluate.paper import TABLE1
from mcnn.evaluate.plots import confusion_figure
from mcnn.figures import save_figure
from mcnn.fsutil import atomic_write_text
from mcnn.nets import list_nets
from mcnn.tables import read_table, write_table

Metrics = dict[str, object]
Number = int | float | None


@dataclass
class TableRow:
    """One architecture's Table 1 row: accuracies in % (rounded to 0.1), wall time in hours."""

    dataset: str
    architecture: str
    statistic: str               # the paper's statistic for the dataset: "median" or "mean"
    ours: Number                 # our value of that statistic
    ours_sd: Number
    ours_mean: Number
    ours_median: Number
    ours_mad: Number
    published: Number            # the paper's value (None for an architecture it did not test)
    published_sd: Number
    benchmark: str               # the paper's non-CNN benchmark, e.g. "99 (CP-CHARM)"
    splits_done: int
    splits_planned: int
    wall_time_h: float
    engine: str
    hardware: str
    map_activity: Number = None      # BBBC021: mean copairs mAP of the held-out treatments vs DMSO wells
    map_active_pct: Number = None    # % of those treatments with q < 0.05 (BH over every fold's treatments)

    @classmethod
    def columns(cls) -> list[str]:
        """The results.csv header: the field names in order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_csv(cls, row: Mapping[str, str]) -> TableRow:
        """A row read back from results.csv (numbers parsed so that writing it again gives the same text;
        columns that an older results.csv lacks are None)."""
        text = {"dataset", "architecture", "statistic", "benchmark", "engine", "hardware"}
        return cls(**{name: row.get(name, "") if name in text else _number(row.get(name, ""))
                      for name in cls.columns()})

    def as_dict(self) -> dict[str, object]:
        """The row as a dict in column order."""
        return asdict(self)


def _number(text: str) -> Number:
    if text in ("", "None"):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def _with_sd(value: Number, sd: Number) -> str:
    return "n/a" if value is None else f"{value} ({sd})"


def _text(value: object) -> str:
    return "n/a" if value is None else str(value)


#: The columns of the results.md table: header, cell of a row.
MD_COLUMNS: tuple[tuple[str, Callable[[TableRow], str]], ...] = (
    ("architecture", lambda r: r.architecture),
    ("statistic", lambda r: r.statistic),
    ("ours", lambda r: _with_sd(r.ours, r.ours_sd)),
    ("published", lambda r: _with_sd(r.published, r.published_sd)),
    ("benchmark", lambda r: r.benchmark),
    ("mean", lambda r: _text(r.ours_mean)),
    ("median", lambda r: _text(r.ours_median)),
    ("MAD", lambda r: _text(r.ours_mad)),
    ("splits", lambda r: f"{r.splits_done}/{r.splits_planned}"),
    ("wall time (h)", lambda r: _text(r.wall_time_h)),
    ("engine", lambda r: r.engine),
    ("hardware", lambda r: r.hardware),
)


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def table_row(dataset: str, arch: str, stat: Mapping[str, float] | None, splits_done: int, splits_planned: int,
              seconds: float, engines: Sequence[str], hardware: Sequence[str],
              activity: Mapping[str, object] | None = None) -> TableRow:
    """The row of ``arch`` from the statistics ``stat`` (fractions: n, mean, sd, median, mad) of its splits
    and, for BBBC021, the phenotypic-activity summary ``activity`` (:func:`summarize_activity`)."""
    published = TABLE1.get(dataset)
    statistic = published.statistic if published else "median"
    paper = published.arch(arch) if published else None
    return TableRow(
        dataset=dataset, architecture=arch, statistic=statistic,
        ours=_percent(stat[statistic]) if stat else None, ours_sd=_percent(stat["sd"]) if stat else None,
        ours_mean=_percent(stat["mean"]) if stat else None, ours_median=_percent(stat["median"]) if stat else None,
        ours_mad=_percent(stat["mad"]) if stat else None,
        published=paper[0] if paper else None, published_sd=paper[1] if paper else None,
        benchmark=f"{published.benchmark[0]:g} ({published.benchmark[2]})" if published else "",
        splits_done=splits_done, splits_planned=splits_planned, wall_time_h=round(seconds / 3600, 3),
        engine=",".join(engines), hardware="; ".join(hardware),
        map_activity=round(float(activity["mean_map"]), 3) if activity else None,  # type: ignore[arg-type]
        map_active_pct=_percent(activity["active_fraction"]) if activity else None)  # type: ignore[arg-type]


def _arch_order(row: TableRow) -> tuple[int, str]:
    names = list_nets()
    return (names.index(row.architecture) if row.architecture in names else len(names), row.architecture)


def _moa_lines(arch: str, summary: Mapping[str, object]) -> list[str]:
    lines = ["", f"BBBC021 ({arch}): {summary['treatments']} treatments, treatment accuracy "
             f"{100 * summary['treatment_accuracy']:.1f}%; the statistic is over the per-MoA accuracies "  # type: ignore[operator]
             "(the paper's 100 (13) = 96/103 treatments)."]
    for mode in ("nsc", "nscb"):
        acc = summary.get(f"{mode}_accuracy")
        if acc is not None:
            lines.append(f"- {mode.upper()} 1-NN on penultimate-layer profiles (cosine): {100 * acc:.1f}% of "  # type: ignore[operator]
                         f"{summary[f'{mode}_queries']} treatments")
    activity: Mapping[str, object] | None = summary.get("activity")  # type: ignore[assignment]
    if activity:
        lines.append(f"- Phenotypic activity (copairs mAP of each held-out treatment's wells vs DMSO wells, cosine): "
                     f"mean mAP {activity['mean_map']:.3f} over {activity['treatments']} treatments, "
                     f"{100 * activity['active_fraction']:.1f}% with q < {activity['threshold']:g} "  # type: ignore[operator]
                     "(Benjamini-Hochberg over every fold's treatments)")
    lines += ["", "| MoA | accuracy |", "|---|---|"]
    per_moa: Mapping[str, float] = summary["per_moa_accuracy"]  # type: ignore[assignment]
    lines += [f"| {moa} | {100 * acc:.0f}% |" for moa, acc in sorted(per_moa.items())]
    return lines


def format_results_md(rows: Sequence[TableRow], summary: Mapping[str, object], arch: str) -> str:
    """The text of results.md: the Table 1 rows, and for BBBC021 the MoA summary of ``arch``."""
    dataset = rows[0].dataset if rows else summary.get("dataset", "")
    lines = [f"# Reproduction of Godinez et al. 2017, Table 1: {dataset}", "",
             "Accuracy in % (SD); the statistic is the paper's for this dataset "
             "(Table 1 footnote). Published values are the paper's.", "",
             "| " + " | ".join(header for header, _ in MD_COLUMNS) + " |",
             "|" + "---|" * len(MD_COLUMNS)]
    lines += ["| " + " | ".join(cell(r) for _, cell in MD_COLUMNS) + " |" for r in rows]
    if summary.get("protocol") == "loco" and summary.get("treatments"):
        lines += _moa_lines(arch, summary)
    options = summary.get("options")
    if isinstance(options, Mapping) and options:
        shown = ", ".join(f"{k} {json.dumps(v)}" for k, v in options.items() if k not in ("dataset", "arch", "source"))
        lines += ["", f"Trained ({arch}) with: {shown}."]
    return "\n".join(lines) + "\n"


def write_results(out: Path, row: TableRow, summary: Mapping[str, object]) -> list[TableRow]:
    """Replace ``row``'s architecture in results.csv (other architectures kept) and rewrite results.md."""
    path_csv = out / "results.csv"
    rows = [TableRow.from_csv(r) for r in (read_table(path_csv).rows if path_csv.is_file() else [])
            if r["architecture"] != row.architecture]
    rows.append(row)
    rows.sort(key=_arch_order)
    write_table(path_csv, [r.as_dict() for r in rows], TableRow.columns())
    atomic_write_text(out / "results.md", format_results_md(rows, summary, row.architecture))
    return rows


def finished_splits(runs_dir: Path, planned: Sequence[str]) -> list[tuple[str, Metrics]]:
    """(split, metrics.json content) of every planned split that has finished, in plan order."""
    done = []
    for name in planned:
        path = runs_dir / name / "metrics.json"
        if path.is_file():
            done.append((name, json.loads(path.read_text())))
    return done


def pooled_examples(runs_dir: Path, done: Sequence[tuple[str, Metrics]], classes: Sequence[str]) -> Examples | None:
    """One example field per class from the splits' ``examples.npz`` (the first split, in plan order, that
    has one of the class); None when no split wrote examples."""
    paths = [runs_dir / name / "examples.npz" for name, _ in done]
    return merge_examples([read_examples(p) for p in paths if p.is_file()], classes)


def pooled_confusion(out: Path, dataset: str, arch: str, done: Sequence[tuple[str, Metrics]],
                     classes: Sequence[str], examples: Examples | None = None) -> dict[str, float | None]:
    """Sum the splits' confusion matrices into confusion_<arch>.csv/.png (``examples`` below the matrix);
    returns the per-class accuracy."""
    cm = sum(np.asarray(m["confusion"], dtype=np.int64) for _, m in done)
    write_confusion(out / f"confusion_{arch}.csv", cm, classes)
    save_figure(confusion_figure(cm, classes, f"{dataset} {arch}: {len(done)} splits",
                                 example_pictures(examples, classes)), out / f"confusion_{arch}.png")
    return dict(zip(classes, [None if np.isnan(a) else float(a) for a in per_class_accuracy(cm)], strict=True))


def summarize_moa(out: Path, arch: str, runs_dir: Path, done: Sequence[tuple[str, Metrics]],
                  classes: Sequence[str], examples: Examples | None = None) -> dict[str, object]:
    """BBBC021: the treatments of every fold classified together, and the NSC/NSCB profiling hits.

    Writes moa_confusion_<arch>.csv/.png (``examples`` below the matrix) and moa_treatments_<arch>.csv;
    the Table 1 statistic (``table1``) is over the per-MoA accuracies.
    """
    rows: list[dict[str, str]] = []
    for name, _ in done:
        path = runs_dir / name / "moa_treatments.csv"
        if path.is_file():
            rows.extend(read_table(path).rows)
    if not rows:
        return {}
    vectors = np.array([[float(r[f"prob_{c}"]) for c in classes] for r in rows])
    treatments = [Treatment(r["compound"], float(r["concentration"]), v, int(r["wells"]), int(r["fields"]),
                            moa=r["moa"]) for r, v in zip(rows, vectors, strict=True)]
    result = classify_treatments(treatments, classes)
    write_confusion(out / f"moa_confusion_{arch}.csv", result.confusion, classes)
    save_figure(confusion_figure(result.confusion, classes, f"MoA per treatment, {len(treatments)} treatments",
                                 example_pictures(examples, classes)), out / f"moa_confusion_{arch}.png")
    write_table(out / f"moa_treatments_{arch}.csv", rows, list(rows[0]))
    summary: dict[str, object] = {"treatments": len(treatments), "treatment_accuracy": result.treatment_accuracy,
                                  "per_moa_accuracy": result.per_moa, "table1": result.table1.as_dict()}
    for mode in ("NSC", "NSCB"):
        hits = [e["correct"] for _, m in done for e in m.get("profiling", {}).get(mode, [])]  # type: ignore[attr-defined]
        summary[f"{mode.lower()}_accuracy"] = float(np.mean(hits)) if hits else None
        summary[f"{mode.lower()}_queries"] = len(hits)
    return summary


def summarize_activity(out: Path, arch: str, done: Sequence[tuple[str, Metrics]],
                       threshold: float = 0.05) -> dict[str, object] | None:
    """BBBC021: the folds' ``profiling["activity"]`` entries ({compound, concentration, moa, map, p_value})
    pooled: q-values by Benjamini-Hochberg over all of them, written to activity_<arch>.csv.

    Returns {treatments, mean_map, active_fraction, threshold}, or None when no fold has entries.
    """
    entries = [dict(e) for _, m in done for e in m.get("profiling", {}).get("activity", [])  # type: ignore[attr-defined]
               if e.get("map") is not None and e.get("p_value") is not None]
    if not entries:
        return None
    q = bh_qvalues([float(e["p_value"]) for e in entries])
    for entry, value in zip(entries, q, strict=True):
        entry.update(q_value=float(value), active=bool(value < threshold))
    write_table(out / f"activity_{arch}.csv", entries, ["compound", "concentration", "moa", "map", "p_value",
                                                        "q_value", "active"])
    return {"treatments": len(entries), "mean_map": float(np.mean([float(e["map"]) for e in entries])),
            "active_fraction": float(np.mean(q < threshold)), "threshold": threshold}


def summarize_run(out: Path, runs_dir: Path, dataset: str, protocol: str, arch: str, planned: Sequence[str],
                  classes: Sequence[str], options: Mapping[str, object] | None = None) -> dict[str, object]:
    """Merge every finished split of ``arch`` under ``runs_dir`` into the summary files of ``out``.

    ``options`` are the options that shaped the results (epochs, batch, ...), recorded in the
    summary and in results.md. Returns the summary (also written as summary_<arch>.json);
    ``summary["row"]`` is the :class:`TableRow` as a dict.
    """
    done = finished_splits(runs_dir, planned)
    summary: dict[str, object] = {"dataset": dataset, "arch": arch, "protocol": protocol,
                                  "splits_done": len(done), "splits_planned": len(planned),
                                  "seconds": sum(m.get("seconds", 0.0) for _, m in done),  # type: ignore[misc]
                                  "engine": sorted({m.get("engine", "") for _, m in done}),
                                  "hardware": sorted({m.get("hardware", "") for _, m in done})}
    if options:
        summary["options"] = dict(options)
    examples = pooled_examples(runs_dir, done, classes)
    if done:
        summary["per_class_accuracy"] = pooled_confusion(out, dataset, arch, done, classes, examples)
    if protocol == "loco":
        summary.update(summarize_moa(out, arch, runs_dir, done, classes, examples))
        activity = summarize_activity(out, arch, done)
        if activity is not None:
            summary["activity"] = activity
        stat = summary.get("table1")
    else:
        accuracies = [m["accuracy"] for _, m in done if m.get("accuracy") is not None]
        stat = summarize(accuracies).as_dict() if accuracies else None  # type: ignore[arg-type]
        summary["repeat_accuracy"] = stat
    row = table_row(dataset, arch, stat, len(done), len(planned), summary["seconds"],  # type: ignore[arg-type]
                    summary["engine"], summary["hardware"], summary.get("activity"))  # type: ignore[arg-type]
    summary["row"] = row.as_dict()
    write_results(out, row, summary)
    atomic_write_text(out / f"summary_{arch}.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary
