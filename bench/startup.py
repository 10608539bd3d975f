#!/usr/bin/env python
"""Where a short ``tools/evaluate.py`` run spends its time (issue 15, evaluation start-up).

Writes a 64-record demo-size LMDB (2 x 128 x 128) with its index, labels and the committed demo
M-CNN (random weights), then measures:

- the whole process, ``python tools/evaluate.py ...``, best of ``--repeat`` runs, and a bare
  ``python -c pass`` (the interpreter's own start-up);
- one run of the same evaluation through this script's driver, under ``python -X importtime``,
  with timers around the library calls evaluate.py makes (put in place by wrapping the functions,
  mcnn/ is not changed): importing the tool's modules, reading the model's inputs, building the
  net (and, inside, its fillers), loading the weights (and parsing the caffemodel), tracing and
  freezing the net for inference (with its check against the eager net), the forward passes,
  reading and preprocessing the records, the prediction rows, drawing and saving the figure and
  writing the tables; each region's own time (without the regions inside it) and the imports
  that happened in it (from the importtime log, by the region open when each was imported).

It prints a table and writes startup-<time>.json and .md to ``--out`` (default bench/results/).

  python bench/startup.py
  python bench/startup.py --repeat 5 --records 256
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # the driver's first instant (CLOCK_MONOTONIC: comparable across processes)

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MARK = "@@startup-region"

#: (module, attribute, region) wrapped in the driver; nested calls count in the innermost region.
REGIONS = [
    ("mcnn.evaluate.predict", "model_inputs", "read the model's preprocessing and classes"),
    ("mcnn.evaluate.predict", "deploy_blobs", "read the deploy net's blob names"),
    ("mcnn.evaluate.predict", "make_backend", "engine backend (rest)"),
    ("mcnn.engine.net.Net", "__init__", "net build (layers, shapes)"),
    ("mcnn.engine.net", "fill", "fillers (random weights the caffemodel then replaces)"),
    ("mcnn.engine.net.Net", "load_weights", "weight load (checks, copies)"),
    ("mcnn.caffe.io", "read_caffemodel", "read and parse the caffemodel"),
    ("mcnn.tables", "read_table", "read the index CSV"),
    ("mcnn.evaluate.predict", "predict_lmdb", "read and preprocess the records"),
    ("mcnn.engine.inference.InferenceModel", "_compiled", "compile (rest: the eager check forward, once per shape)"),
    ("torch.jit", "trace", "compile: torch.jit.trace"),
    ("torch.jit", "freeze", "compile: torch.jit.freeze"),
    ("torch.jit", "optimize_for_inference", "compile: torch.jit.optimize_for_inference"),
    ("mcnn.engine.inference.InferenceModel", "__call__", "forward passes (the work)"),
    ("mcnn.evaluate.predict", "prediction_rows", "prediction rows"),
    ("tool", "write_evaluation", "write the outputs (rest: metrics, JSON)"),
    ("mcnn.evaluate.outputs", "confusion_figure", "draw the confusion figure"),
    ("mcnn.evaluate.outputs", "save_figure", "save the figure (render, PNG)"),
    ("mcnn.evaluate.outputs", "write_table", "write the CSVs"),
]
WORK = "forward passes (the work)"
START = "interpreter start-up (site, the driver's stdlib)"
ENGINE_IMPORT = "import the engine and torch (a plain run does it when it builds the net)"


# -- the driver (a child process under -X importtime) ------------------------------------------------

class Regions:
    """Named, nested timers: each region's total and own time (without the regions inside it), with a
    marker line on stderr at every entry and exit so the importtime log can be split by region."""

    def __init__(self) -> None:
        self.own: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.stack: list[list[object]] = []

    def enter(self, name: str) -> None:
        """Open region ``name``."""
        sys.stderr.write(f"{MARK} enter {name}\n")
        sys.stderr.flush()
        self.stack.append([name, time.perf_counter(), 0.0])

    def exit(self) -> None:
        """Close the innermost region."""
        name, start, inner = self.stack.pop()
        elapsed = time.perf_counter() - start  # type: ignore[operator]
        self.own[name] = self.own.get(name, 0.0) + elapsed - inner  # type: ignore[index, operator]
        self.calls[name] = self.calls.get(name, 0) + 1  # type: ignore[index]
        if self.stack:
            self.stack[-1][2] += elapsed  # type: ignore[operator]
        sys.stderr.write(f"{MARK} exit {name}\n")
        sys.stderr.flush()

    def timed(self, fn: Callable[..., object], name: str) -> Callable[..., object]:
        """``fn`` wrapped in region ``name``."""
        def wrapper(*args: object, **kwargs: object) -> object:
            self.enter(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.exit()
        return wrapper


def _owner(path: str, tool: object) -> object:
    import importlib

    if path == "tool":
        return tool
    try:
        return importlib.import_module(path)
    except ImportError:
        module, _, cls = path.rpartition(".")
        return getattr(importlib.import_module(module), cls)


def driver(argv: list[str]) -> None:
    """Run tools/evaluate.py's main on ``argv`` with the regions timed; print the timings as JSON."""
    import importlib.util

    regions = Regions()
    regions.enter("import tools/evaluate.py and its modules")
    spec = importlib.util.spec_from_file_location("evaluate_tool", ROOT / "tools" / "evaluate.py")
    tool = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(tool)  # type: ignore[union-attr]
    regions.exit()
    regions.enter(ENGINE_IMPORT)  # the wrapping imports these modules early; a plain run imports them later
    for path, attr, name in REGIONS:
        owner = _owner(path, tool)
        setattr(owner, attr, regions.timed(getattr(owner, attr), name))
    regions.exit()
    regions.enter("parse the arguments")
    args = tool.get_args_parser().parse_args(argv)
    regions.exit()
    regions.enter("evaluate.py main (rest)")
    tool.main(args)
    regions.exit()
    print(json.dumps({"t_start": T_START, "t_end": time.perf_counter(), "own": regions.own, "calls": regions.calls}))
    sys.stdout.flush()


# -- the parent: fixture, runs, tables ---------------------------------------------------------------

def make_fixture(work: Path, records: int) -> list[str]:
    """A demo-size LMDB of ``records`` records, its index and labels, the demo nets and random weights
    under ``work``; returns evaluate.py's arguments (without ``--out``)."""
    import shutil

    import numpy as np

    from mcnn.caffe import io as cio
    from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key
    from mcnn.engine.net import Net
    from mcnn.tables import write_table

    classes = ("control", "translocation", "spots", "elongation")
    data, model = work / "data", work / "model"
    model.mkdir(parents=True)
    rng = np.random.default_rng(0)
    with LmdbWriter(data / "test_lmdb") as writer:
        for i in range(records):
            writer.put(record_key(i, f"field{i}"), array_to_datum(rng.integers(0, 256, (2, 128, 128), np.uint8),
                                                                  i % len(classes)))
    (data / "labels.txt").write_text("\n".join(classes) + "\n")
    write_table(data / "test_index.csv", [{"key": record_key(i, f"field{i}").decode(), "label": i % len(classes)}
                                          for i in range(records)], ["key", "label"])
    for kind in ("deploy", "train_val"):
        shutil.copy(ROOT / "prototxt" / "demo" / f"mcnn_{kind}.prototxt", model / f"mcnn_{kind}.prototxt")
    deploy = model / "mcnn_deploy.prototxt"
    cio.write_caffemodel(model / "random.caffemodel", Net(cio.read_net(deploy)).to_caffemodel())
    return ["--model", str(deploy), "--weights", str(model / "random.caffemodel"), "--lmdb",
            str(data / "test_lmdb"), "--index", str(data / "test_index.csv"), "--quiet"]


def parse_imports(stderr: str) -> dict[str, dict[str, float]]:
    """Import seconds per region from an importtime log with region markers: ``total`` (the cumulative time
    of the imports made at nesting depth 0 while the region was open) and, per top-level package, the
    modules' own times (so torch counts as torch even when mcnn imported it).

    Imports before the first marker are the interpreter's start-up.
    """
    out: dict[str, dict[str, float]] = {}
    stack = [START]
    for line in stderr.splitlines():
        if line.startswith(MARK):
            kind, name = line[len(MARK) + 1:].split(" ", 1)
            if kind == "enter":
                stack.append(name)
            elif len(stack) > 1:
                stack.pop()
            continue
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, raw = line[len("import time:"):].split("|")
        per = out.setdefault(stack[-1], {"total": 0.0})
        package = raw.strip().split(".")[0]
        per[package] = per.get(package, 0.0) + int(own) / 1e6
        if len(raw) - len(raw.lstrip()) <= 1:  # depth 0: not inside another import, which would count it
            per["total"] += int(cumulative) / 1e6
    return out


def best_wall(cmd: list[str], repeat: int) -> float:
    """Best wall seconds of ``repeat`` runs of ``cmd`` (which must succeed)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"startup: {' '.join(cmd)} failed:\n{done.stderr}")
        best = min(best, time.perf_counter() - start)
    return best


def driver_run(argv: list[str]) -> dict[str, object]:
    """One evaluation through :func:`driver` under ``-X importtime``: its timings, imports and the seconds
    before the driver's first line (interpreter start-up) and after its last (interpreter exit)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", str(Path(__file__).resolve()), "--driver", *argv],
                          capture_output=True, text=True)
    end = time.perf_counter()
    if done.returncode != 0:
        raise SystemExit(f"startup: the driver run failed:\n{done.stderr[-3000:]}")
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": end - start, "start_up_s": timings["t_start"] - start, "exit_s": end - timings["t_end"],
            "own_s": timings["own"], "calls": timings["calls"], "imports_s": parse_imports(done.stderr)}


def phase_rows(run: dict[str, object]) -> list[dict[str, object]]:
    """One row per phase of the driver run, in the order of a run, with its imports."""
    imports: dict[str, dict[str, float]] = run["imports_s"]  # type: ignore[assignment]
    rows = [{"phase": START, "seconds": run["start_up_s"], "calls": 1}]
    order = ["import tools/evaluate.py and its modules", ENGINE_IMPORT, "parse the arguments",
             *[name for _, _, name in REGIONS], "evaluate.py main (rest)"]
    own: dict[str, float] = run["own_s"]  # type: ignore[assignment]
    calls: dict[str, int] = run["calls"]  # type: ignore[assignment]
    rows += [{"phase": name, "seconds": own[name], "calls": calls[name]} for name in order if name in own]
    rows.append({"phase": "interpreter exit", "seconds": run["exit_s"], "calls": 1})
    for row in rows:
        packages = dict(imports.get(row["phase"], {}))  # type: ignore[arg-type]
        row["import_s"] = packages.pop("total", 0.0)
        row["imports"] = ", ".join(f"{k} {v:.2f}" for k, v in sorted(packages.items(), key=lambda kv: -kv[1])[:5]
                                   if v >= 0.01)
    return rows


def markdown(payload: dict[str, object]) -> str:
    """The measurement as Markdown: whole-process times, then the phases of the driver run."""
    rows: list[dict[str, object]] = payload["phases"]  # type: ignore[assignment]
    total = sum(r["seconds"] for r in rows)  # type: ignore[misc]
    lines = [f"# evaluate.py start-up {payload['when']}", "", f"Machine: {payload['machine']}", "",
             f"`tools/evaluate.py` on a {payload['records']}-record demo-size LMDB (2x128x128, batch 16), whole "
             f"process, best of {payload['repeat']}: **{payload['whole_process_s']:.2f} s**; `python -c pass`: "
             f"{payload['python_pass_s']:.2f} s. One run under `-X importtime` with timers around the library calls "
             f"({payload['driver_wall_s']:.2f} s; importtime itself adds a little) splits into:", "",
             "| phase | own s | share | calls | of which imports s | largest imports (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        share = 100 * r["seconds"] / total if total else 0.0  # type: ignore[operator]
        lines.append(f"| {r['phase']} | {r['seconds']:.3f} | {share:.0f} % | {r['calls']} | {r['import_s']:.3f} | "
                     f"{r['imports'] or '—'} |")
    lines += ["", f"Costs more than the forward work ({payload['work_s']:.3f} s): "
              + (", ".join(payload["over_work"]) or "nothing") + "."]  # type: ignore[arg-type]
    return "\n".join(lines) + "\n"


def get_args_parser() -> argparse.ArgumentParser:
    """The command line of the start-up measurement."""
    sys.path.insert(0, str(ROOT))
    from mcnn.cli import ArgumentParser

    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to measure")
    what.add_argument("--records", type=int, default=64, help="records in the demo-size LMDB (default 64)")
    what.add_argument("--repeat", type=int, default=3, help="whole-process runs, the best kept (default 3)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    return p


def main(args: argparse.Namespace) -> int:
    """Write the fixture, time the whole process and the driver run, print and save the table."""
    import tempfile

    from mcnn.cli import output_folder
    from mcnn.errors import ConfigError
    from mcnn.fsutil import atomic_write_text
    from mcnn.machine import describe

    output_folder(args.out)
    for flag, value in (("--records", args.records), ("--repeat", args.repeat)):
        if value < 1:
            raise ConfigError(f"{flag} {value}: must be at least 1")
    with tempfile.TemporaryDirectory(prefix="mcnn-bench-startup-") as tmp:
        work = Path(tmp)
        argv = make_fixture(work, args.records)
        print(f"fixture: {args.records} records in {work}; timing ...", flush=True)
        bare = best_wall([sys.executable, "-c", "pass"], args.repeat)
        whole = best_wall([sys.executable, str(ROOT / "tools" / "evaluate.py"), *argv, "--out", str(work / "out")],
                          args.repeat)
        run = driver_run([*argv, "--out", str(work / "out_driver")])
    rows = phase_rows(run)
    work_s = sum(r["seconds"] for r in rows if r["phase"] == WORK)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {"when": stamp, "machine": describe(), "records": args.records, "repeat": args.repeat,
               "python_pass_s": bare, "whole_process_s": whole, "driver_wall_s": run["wall_s"], "work_s": work_s,
               "phases": rows, "over_work": [r["phase"] for r in rows if r["phase"] != WORK and r["seconds"] > work_s],
               "imports_by_region_s": run["imports_s"]}
    atomic_write_text(args.out / f"startup-{stamp}.json", json.dumps(payload, indent=1) + "\n")
    text = markdown(payload)
    atomic_write_text(args.out / f"startup-{stamp}.md", text)
    print(text + f"results: {args.out / f'startup-{stamp}.md'}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--driver"]:
        sys.path.insert(0, str(ROOT))
        driver(sys.argv[2:])
        from mcnn.cli import exit_now

        exit_now(0)  # as tools/evaluate.py ends
    sys.path.insert(0, str(ROOT))
    from mcnn.cli import run

    sys.exit(run("startup", lambda: main(get_args_parser().parse_args())))
