"""The demo: simulate a small screen, train an M-CNN on its controls, recover the planted EC50s.

Steps (each is one of the toolkit's commands, run in-process): the phenotype simulator writes a
plate screen with controls and dilution series (``data_prep/synthesize.py simulate``);
data_prep converts it to LMDB with one 90/10 split of the control classes
through the generic reader of your own screens (``data_prep/prepare.py screen`` on its
LoadData image table and plate map); the reproduction runner generates the M-CNN and its solver,
trains on the CPU, evaluates on the held-out controls and applies the model to every field of
the screen (``tools/reproduce.py screen --data``: predictions, profiles, phenotypic activity and
dose-response fits); ``report.html`` sets the EC50 estimates against the simulator's ground truth.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mcnn.caffe.trainlog import parse_log, plot_log
from mcnn.figures import save_figure
from mcnn.fsutil import atomic_write_text
from mcnn.reproduce import ReproduceOptions, Reproduction
from mcnn.training import hardware

#: The whole-screen outputs of the M-CNN in the run folder (predictions, profiles, activity, dose).
SCREEN_OUTPUTS = "screen_mcnn"
#: Log10 error within which a planted EC50 counts as recovered (the acceptance of issue 6).
TOLERANCE_LOG10 = 0.3


@dataclass
class DemoOptions:
    """Options of :func:`run_demo`.

    The demo images each well at ``sites`` = 4 fields (the simulator's demo preset has 2): the
    dose-response medians then rest on 12 fields per concentration, which halves the scatter of
    the EC50 estimates in our runs, and the control classes get 120 fields each. ``epochs`` and
    ``step_epochs`` differ from the paper's 18 epochs with a step every 6: the elongation
    phenotype needs about 650 iterations to be learned, which is 24 epochs of this screen (one
    step at 7/18 of them). ``size`` and ``phenotypes`` override the simulator preset.
    """

    out: Path = Path("runs/demo")
    preset: str = "demo"
    size: int | None = None
    sites: int | None = 4
    phenotypes: tuple[str, ...] | None = None
    seed: int = 0
    repeats: int = 1
    epochs: float = 24
    step_epochs: float = 9.33
    workers: int = 2
    quiet: bool = False
    net_options: dict[str, object] = field(default_factory=dict)


@dataclass
class Recovery:
    """A planted EC50 against the one estimated from the network's probabilities."""

    compound: str
    phenotype: str
    true_ec50: float
    in_range: bool
    status: str
    estimate: float
    ci_low: float
    ci_high: float

    @property
    def log10_error(self) -> float:
        """log10(estimate) - log10(planted EC50); NaN when no EC50 was estimated."""
        if not (self.estimate > 0 and math.isfinite(self.estimate)):
            return float("nan")
        return math.log10(self.estimate) - math.log10(self.true_ec50)

    @property
    def recovered(self) -> bool:
        """In-range EC50: estimated within the tolerance; out of range: no number given."""
        if self.in_range:
            return self.status == "ok" and abs(self.log10_error) <= TOLERANCE_LOG10
        return self.status != "ok"


def compare_ec50(ground_truth: Path, ec50_json: Path) -> list[Recovery]:
    """Match every treatment of the simulated screen with the fit of its phenotype's class."""
    truth = json.loads(ground_truth.read_text())
    fits = json.loads(ec50_json.read_text())["results"]
    out = []
    for name, c in sorted(truth["compounds"].items()):
        if c["role"] != "treatment":
            continue
        match = next((r for r in fits if r["group"].get("Metadata_Compound") == name and r["class"] == c["phenotype"]),
                     None)
        status = match["status"] if match else "missing"
        out.append(Recovery(name, c["phenotype"], float(c["ec50"]), bool(c["ec50_in_tested_range"]), status,
                            _number(match, "ec50"), _number(match, "ec50_ci_low"), _number(match, "ec50_ci_high")))
    return out


def _number(entry: dict | None, key: str) -> float:
    value = None if entry is None else entry.get(key)
    return float("nan") if value is None else float(value)


def training_curves(log: Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(iteration, smoothed loss) and (iteration, test accuracy) pairs from a glog training log (none without one)."""
    if not log.is_file():
        return [], []
    parsed = parse_log(log)
    return parsed.smoothed, parsed.series("test", "accuracy")


def plot_training(log: Path, path: Path) -> Path | None:
    """The training curves of a glog log (:func:`mcnn.caffe.trainlog.plot_log`) as a PNG; None without a log."""
    if not log.is_file():
        return None
    return plot_log(parse_log(log), path, title="training on the CPU")


def plot_recovery(recoveries: list[Recovery], path: Path) -> Path | None:
    """Estimated against planted EC50 (µM, log axes) with 95% CIs, as a PNG; None without an in-range fit."""
    shown = [r for r in recoveries if r.status == "ok" and r.in_range]
    if not shown:
        return None
    fig = Figure(figsize=(4.6, 4.4))
    ax = fig.add_subplot(1, 1, 1)
    t = np.array([r.true_ec50 for r in shown])
    e = np.array([r.estimate for r in shown])
    lo = np.array([r.ci_low for r in shown])
    hi = np.array([r.ci_high for r in shown])
    span = [min(t.min(), e.min()) / 3, max(t.max(), e.max()) * 3]
    # an uninformative interval (a step-like response) is drawn to the edge of the axes
    lo = np.clip(np.where(np.isfinite(lo), lo, span[0]), span[0], e)
    hi = np.clip(np.where(np.isfinite(hi), hi, span[1]), e, span[1])
    ax.fill_between(span, [s / 10**TOLERANCE_LOG10 for s in span], [s * 10**TOLERANCE_LOG10 for s in span],
                    color="#e8f5e9", label=f"within {TOLERANCE_LOG10} log10")
    ax.plot(span, span, color="#888", lw=1)
    yerr = np.vstack([e - lo, hi - e])
    ax.errorbar(t, e, yerr=yerr, fmt="o", color="#1f4e79", capsize=3, label="estimate (95% CI)")
    for r in shown:
        ax.annotate(r.compound, (r.true_ec50, r.estimate), fontsize=7, xytext=(4, -10), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*span)
    ax.set_ylim(*span)
    ax.set_xlabel("planted EC50 (µM)")
    ax.set_ylabel("estimated EC50 (µM)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return save_figure(fig, path)


@dataclass
class DemoResult:
    """What :func:`run_demo` produced: held-out accuracy (fraction), EC50 recoveries, step times (s), report."""

    out: Path
    accuracy: float | None
    recoveries: list[Recovery]
    seconds: dict[str, float]
    report: Path


def run_demo(options: DemoOptions, log: Callable[[str], None] = print) -> DemoResult:
    """Run the whole demo into ``options.out``; re-running reuses finished steps."""
    from mcnn.simulate import get_preset, plan_fields, simulate_screen, with_overrides
    from mcnn.simulate.preview import save_preview

    out = options.out
    raw = out / "raw"
    seconds: dict[str, float] = {}
    start = time.time()
    if not (raw / "ground_truth.json").is_file():
        log(f"[1/4] simulating the '{options.preset}' screen into {raw}")
        config = with_overrides(get_preset(options.preset), seed=options.seed, size=options.size, sites=options.sites,
                                phenotypes=options.phenotypes)
        bar = None
        if not options.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=len(plan_fields(config)), unit="field", desc="simulate", leave=False)
        simulate_screen(config, raw, workers=1, overwrite=True, progress=bar.update if bar is not None else None)
        if bar is not None:
            bar.close()
    seconds["simulate"] = time.time() - start
    save_preview(raw, out / "preview.png", per_class=4)
    t = time.time()
    log("[2/4] converting to LMDB (data_prep screen: 90/10 split of the control classes' fields)")
    prepare_screen(raw, out / "data", options)
    seconds["prepare"] = time.time() - t
    repro = Reproduction(ReproduceOptions(
        dataset="screen", raw=None, data=out / "data", out=out, repeats=options.repeats, epochs=options.epochs,
        step_epochs=options.step_epochs, seed=options.seed, profiling=False, workers=options.workers,
        quiet=options.quiet, net_options=dict(options.net_options)), log=log)
    t = time.time()
    log("[3/4] training the M-CNN on the CPU, evaluating on the held-out fields, predicting the whole screen")
    summary = repro.run()
    seconds["train_evaluate_dose"] = time.time() - t
    log("[4/4] dose-response fits against the planted EC50s")
    recoveries = compare_ec50(raw / "ground_truth.json", out / SCREEN_OUTPUTS / "dose" / "ec50.json")
    seconds["total"] = time.time() - start
    timing_file = out / "timings.json"
    if (out / "runs" / "mcnn" / "repeat_000" / "metrics.json").stat().st_mtime >= start or not timing_file.is_file():
        atomic_write_text(timing_file, json.dumps(seconds, indent=2) + "\n")
    else:  # every step was reused: report the run that did the work
        seconds = {**json.loads(timing_file.read_text()), "reused": 1.0}
    stats = summary.get("repeat_accuracy") or {}
    accuracy = stats.get("mean") if stats else None
    report = write_report(options, summary, recoveries, seconds)
    return DemoResult(out, accuracy, recoveries, seconds, report)


def screen_flags(raw: Path) -> dict[str, str]:
    """The ``prepare.py screen`` options that read a simulated screen: its image table, plate map and
    the flags its ground truth suggests, with ``split=field`` (the paper's 90/10 split of fields)."""
    truth = json.loads((raw / "ground_truth.json").read_text())
    flags = {"images": str(raw / truth.get("image_table", "load_data.csv")),
             "platemap": str(raw / truth.get("platemap", "platemap.csv")), "split": "field"}
    flags.update({k: str(v) for k, v in truth.get("prepare", {}).items()})
    return flags


def prepare_screen(raw: Path, data: Path, options: DemoOptions) -> None:
    """``python data_prep/prepare.py screen`` on the simulated screen (complete outputs are kept)."""
    from mcnn.prep.pipeline import PrepOptions, prepare

    prepare("screen", raw, data, PrepOptions(repeats=options.repeats, seed=options.seed, quiet=options.quiet,
                                             dataset_options=screen_flags(raw)))


def write_report(options: DemoOptions, summary: dict, recoveries: list[Recovery], seconds: dict[str, float]) -> Path:
    """report.html with the figures embedded."""
    from mcnn.report import Report

    out = options.out
    first = out / "runs" / "mcnn" / "repeat_000"
    plot_training(first / "train.log", out / "training.png")
    plot_recovery(recoveries, out / "ec50_recovery.png")
    r = Report("mcnn demo: M-CNN phenotyping and potency on a simulated screen")
    stats = summary.get("repeat_accuracy") or {}
    r.paragraph(f"Ran in {seconds['total'] / 60:.1f} minutes on {hardware('torch', None)} "
                f"(simulate {seconds.get('simulate', 0):.0f} s, convert {seconds.get('prepare', 0):.0f} s, "
                f"train + evaluate + dose-response {seconds.get('train_evaluate_dose', 0):.0f} s).")
    r.heading("1. The simulated screen")
    r.paragraph("Two-channel fields (nuclei blue, cytoplasm green). Controls: DMSO and one positive control per "
                "phenotype; six compounds in 8-point dilution series, 3 replicates. Each phenotype lives at its own "
                "scale: translocation (the cytoplasmic marker moves into the nucleus), spots (1-2 pixel vesicles), "
                "elongation (whole-cell shape). The fraction of cells showing a compound's phenotype follows a "
                "Hill curve with a planted EC50.")
    r.image(out / "preview.png", "example fields")
    r.heading("2. Training")
    r.paragraph(f"M-CNN (7 scales, 22 conv layers, 624 pathway kernel maps) trained from scratch on the control "
                f"classes for {options.epochs:g} epochs with Caffe's SGD semantics on the PyTorch engine.")
    r.image(out / "training.png", "training curve")
    r.heading("3. Classification of held-out control fields")
    if stats:
        r.paragraph(f"Accuracy over {stats['n']} repeat(s) of the paper's 90/10 split: mean "
                    f"{100 * stats['mean']:.1f}%, median {100 * stats['median']:.1f}%, SD {100 * stats['sd']:.1f}.")
    r.image(out / "confusion_mcnn.png", "confusion matrix")
    r.heading("4. Potency from the soft predictions")
    r.paragraph("The trained network is applied to the dilution series; per compound and concentration the median "
                "over fields per replicate, then the median and MAD over replicates; a four-parameter log-logistic "
                "curve gives the EC50 of the compound's phenotype class (tools/dose_response.py).")
    r.image(out / SCREEN_OUTPUTS / "dose" / "overview.png", "dose-response curves")
    rows, css = [], []
    for rec in recoveries:
        est = "—" if not math.isfinite(rec.estimate) else f"{rec.estimate:.3g}"
        ci = "—" if not math.isfinite(rec.ci_low) else f"{rec.ci_low:.3g} – {rec.ci_high:.3g}"
        err = "—" if not math.isfinite(rec.log10_error) else f"{rec.log10_error:+.2f}"
        verdict = ("recovered" if rec.recovered else "missed") if rec.in_range else (
            "correctly no EC50" if rec.recovered else "a number was given")
        rows.append([rec.compound, rec.phenotype, f"{rec.true_ec50:g}", "yes" if rec.in_range else "no", rec.status,
                     est, ci, err, verdict])
        css.append([""] * 8 + ["ok" if rec.recovered else "bad"])
    r.table(["compound", "phenotype", "planted EC50 (µM)", "inside tested range", "fit status", "estimated EC50",
             "95% CI", "log10 error", "verdict"], rows, css)
    r.paragraph(f"Recovered means within {TOLERANCE_LOG10} log10 units of the planted EC50 for compounds whose EC50 "
                "lies inside the tested concentrations; for the others the fit must decline to report a number.",
                "note")
    r.image(out / "ec50_recovery.png", "estimated against planted EC50")
    activity = out / SCREEN_OUTPUTS / "activity.png"
    if activity.is_file():
        r.heading("5. Phenotypic activity")
        r.paragraph("The penultimate layer's features, median per well, are the screen's profiles "
                    f"({SCREEN_OUTPUTS}/wells.parquet, for pycytominer). copairs ranks each treatment's replicate "
                    "wells against the DMSO wells: a mean average precision near 1 with a small q-value is a "
                    "treatment whose profile stands apart from the controls.")
        r.image(activity, "mAP per treatment against the negative controls")
    r.heading("Reproduce these steps one by one")
    r.code("\n".join([
        f"python data_prep/synthesize.py simulate --preset {options.preset} --seed {options.seed}"
        + (f" --sites {options.sites}" if options.sites else "") + f" --out {out}/raw",
        f"python data_prep/prepare.py screen --images {out}/raw/load_data.csv --platemap {out}/raw/platemap.csv "
        "--label-column Metadata_Phenotype --negative-control Metadata_Role=negative_control "
        f"--positive-control Metadata_Role=positive_control --split field --out {out}/data --repeats {options.repeats}",
        f"python tools/reproduce.py screen --data {out}/data --out {out} --epochs {options.epochs:g} "
        f"--step-epochs {options.step_epochs:g}",
        f"python tools/dose_response.py --predictions {out}/{SCREEN_OUTPUTS}/dose_predictions.csv "
        f"--out {out}/{SCREEN_OUTPUTS}/dose",
    ]))
    return r.write(out / "report.html")
