"""The reproduction harness: prepare -> nets and solver -> train -> evaluate, per split, then a summary.

One run folder holds everything: ``data/`` (the prepared dataset), ``runs/<arch>/<split>/``
(nets, solver, snapshots, predictions, metrics.json) and ``results.md``/``results.csv``. A
split whose ``metrics.json`` exists is done and skipped; an unfinished one resumes from its
last snapshot (the engine resumes exactly). ``shard=(i, N)`` runs every N-th split starting
at split i, so N processes (a job array, several GPUs) share the work; every run ends by
summarising what is done so far. :meth:`Reproduction.run_one` is one split of a job array
(:mod:`mcnn.cluster`), :meth:`Reproduction.finish` the merge after it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from mcnn.caffe import io as cio
from mcnn.caffe.modelcard import evaluation_metrics, update_metrics, write_card
from mcnn.caffe.modelcard_build import training_card
from mcnn.errors import ConfigError, TrainingError
from mcnn.evaluate.aggregate import aggregate_treatments
from mcnn.evaluate.fieldview import run_examples
from mcnn.evaluate.kernelfields import split_kernel_maps
from mcnn.evaluate.outputs import SplitRun, write_evaluation
from mcnn.evaluate.predict import ModelRun, run_model
from mcnn.evaluate.profiling import nearest_moa
from mcnn.evaluate.summary import summarize_run
from mcnn.fsutil import atomic_write_text, folder_lock
from mcnn.nets import DataSpec, build_net
from mcnn.nets.presets import DEFAULT_SCALE, PRESETS
from mcnn.nets.solver import SolverOptions, build_solver
from mcnn.prep.prepared import PreparedDataset, PreparedSplit, UnlabelledSet
from mcnn.reproduce_options import RUN_OPTIONS, ReproduceOptions, parse_shard
from mcnn.training import TrainingRun, hardware, latest_snapshot, train

__all__ = ["RUN_OPTIONS", "ReproduceOptions", "Reproduction", "parse_shard"]


class Reproduction:
    """One dataset x architecture reproduction in a run folder."""

    def __init__(self, options: ReproduceOptions, log: Callable[[str], None] = print):
        options.validate()
        self.o = options
        self.log = log
        self.data_dir = options.out / "data"
        self.runs_dir = options.out / "runs" / options.arch

    # -- steps ----------------------------------------------------------------------

    def prepare(self) -> PreparedDataset:
        """Prepare this shard's splits (data_prep skips what is already complete).

        A sharded run prepares into its own ``data/shard-<i>-of-<N>`` folder, so shards
        running at the same time never write the same files.
        """
        from mcnn.prep.pipeline import PrepOptions, prepare, split_names
        from mcnn.prep.prepared import load_prepared

        if self.o.data is not None:
            return self._prepared(load_prepared(self.o.data))
        opts = PrepOptions(protocol=self.o.protocol, repeats=self.o.repeats, seed=self.o.seed, augment=self.o.augment,
                           quiet=self.o.quiet, force=self.o.force)
        if self.o.prep_workers:
            opts.workers = self.o.prep_workers
        self.planned = split_names(self.o.dataset, self.o.raw, opts)
        i, n = self.o.shard
        if n > 1:
            opts.only = tuple(self.planned[i::n])
            self.data_dir = self.o.out / "data" / f"shard-{i}-of-{n}"
        if not opts.only and n > 1:
            raise ConfigError(f"--shard {i}/{n}: only {len(self.planned)} splits, none for this shard")
        prepare(self.o.dataset, self.o.raw, self.data_dir, opts)
        return load_prepared(self.data_dir)

    def _prepared(self, ds: PreparedDataset) -> PreparedDataset:
        """``--data``: the prepared dataset as it is, with this shard's splits."""
        from dataclasses import replace

        if ds.dataset != self.o.dataset:
            raise ConfigError(f"--data {ds.root}: a prepared {ds.dataset} dataset, not {self.o.dataset}")
        self.data_dir = ds.root
        self.planned = [s.name for s in ds.splits]
        i, n = self.o.shard
        mine = ds.splits[i::n]
        if not mine:
            raise ConfigError(f"--shard {i}/{n}: only {len(ds.splits)} splits, none for this shard")
        return replace(ds, splits=tuple(mine))

    def check_options(self) -> None:
        """Refuse a run folder whose results came from other options (``--force``: remove them first);
        then record this run's options in ``runs/<arch>/options.json``."""
        path = self.runs_dir / RUN_OPTIONS
        state = json.loads(json.dumps(self.o.result_options()))
        if path.is_file():
            old = json.loads(path.read_text(encoding="utf-8"))
            changed = [k for k in state if old.get(k) != state[k]]
            if changed and not self.o.force:
                key = changed[0]
                raise ConfigError(f"{self.runs_dir}: trained earlier with other options ({key}: {old.get(key)!r} -> "
                                  f"{state[key]!r}); use another --out or add --force")
            if changed:
                self.log(f"--force: removing the results of the earlier options in {self.runs_dir}")
                shutil.rmtree(self.runs_dir)
                for name in (f"dose_{self.o.arch}", f"screen_{self.o.arch}"):
                    shutil.rmtree(self.o.out / name, ignore_errors=True)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(state, indent=1) + "\n")

    def run(self) -> dict[str, object]:
        """Prepare, run this shard's splits, summarise; returns the summary.

        Holds the lock of this shard in the run folder: a second process given the same folder
        and ``--shard`` stops at once (other shards run side by side)."""
        with self.shard_lock():
            return self._run()

    def shard_lock(self) -> AbstractContextManager[Path]:
        """The lock of this shard (``RUN_DIR/.lock-<arch>-shard-i-of-N``; a job array holds shard 0 of 1,
        the whole run's), held while the run folder's shared files are written; BusyError if taken."""
        i, n = self.o.shard
        self.o.out.mkdir(parents=True, exist_ok=True)
        return folder_lock(self.o.out, f".lock-{self.o.arch}-shard-{i}-of-{n}")

    def _run(self) -> dict[str, object]:
        self.check_options()
        ds = self.prepare()
        self.log(f"{ds.dataset}: {len(self.planned)} splits, this shard runs {len(ds.splits)} "
                 f"({self.o.arch}, {self.o.engine})")
        for split in ds.splits:
            self.run_split(ds, split)
        return self.finish(ds)

    def finish(self, ds: PreparedDataset) -> dict[str, object]:
        """After the splits: the kernel maps, the dose-response and screen outputs of the first split's
        model (when it is done), and the summary of every finished split; returns the summary."""
        split_kernel_maps(self.o.out, self.runs_dir, self.o.arch, ds, self.planned[0], self.o.engine, self.o.gpu,
                          self.log)  # kernel_maps_<arch>.png: one field per class, the first split's model
        if self.o.dose:
            self.dose_response(ds)
        if ds.dataset == "screen":
            self.screen(ds)
        return self.summarize(ds)

    def load(self) -> PreparedDataset:
        """The dataset an earlier :meth:`prepare` of the whole run wrote (``--data``, or ``RUN_DIR/data``),
        all its splits, without preparing anything (ConfigError if it is not there)."""
        from mcnn.prep.prepared import load_prepared

        root = self.o.data if self.o.data is not None else self.o.out / "data"
        if self.o.data is None and not (root / "dataset.json").is_file():
            raise ConfigError(f"{root}: no prepared dataset yet; run the reproduction once without "
                              "--summarize-only")
        return self._prepared(load_prepared(root))

    def run_one(self, name: str) -> None:
        """Train and evaluate the split ``name`` of the prepared run folder (one task of a job array:
        the submitting process prepared the data and checked the options); done splits are skipped."""
        ds = self.load()
        split = next((s for s in ds.splits if s.name == name), None)
        if split is None:
            raise ConfigError(f"{self.data_dir}: no split {name!r} (splits: {', '.join(self.planned)})")
        self.run_split(ds, split)

    def dose_response(self, ds: PreparedDataset) -> Path | None:
        """Apply the first split's model to the dose set (BBBC013-016) and fit the curves.

        Writes ``dose_<arch>/predictions.csv`` (with the per-field and per-well profiles of
        :func:`mcnn.screening.screen_outputs`) and the dose-response outputs (ec50.csv, ec50.json,
        plots) beside it; the training concentrations of that split are marked.
        """
        dose = next((u for u in ds.unlabelled if u.name == "dose"), None)
        first = self.runs_dir / self.planned[0]
        if dose is None or not (first / "metrics.json").is_file():
            return None
        out = self.o.out / f"dose_{self.o.arch}"
        if (out / "ec50.json").is_file():
            return out
        from mcnn.dose.analysis import DoseSettings
        from mcnn.dose.pipeline import analyze
        from mcnn.screening import ScreenSettings, screen_outputs

        metrics = json.loads((first / "metrics.json").read_text())
        weights = first / "snapshots" / f"{self.o.arch}_iter_{metrics['iterations']}.caffemodel"
        screen_outputs(first / f"{self.o.arch}_deploy.prototxt", weights, dose.lmdb, dose.index, out,
                       labels=ds.root / "labels.txt", train_val=first / f"{self.o.arch}_train_val.prototxt",
                       settings=ScreenSettings(engine=self.o.engine, gpu=self.o.gpu, activity=False, dose=False),
                       log=lambda m: None)
        split_dir = self.o.data or self.o.out / "data"
        train_index = next(split_dir.rglob(f"splits/{self.planned[0]}/train_index.csv"), None)
        analyze(out / "predictions.csv", out, DoseSettings(unit=ds.concentration_unit or ""),
                training_index=[train_index] if train_index else [])
        self.log(f"dose-response curves of {dose.size} fields in {out}")
        return out

    def screen(self, ds: PreparedDataset) -> Path | None:
        """Your own screen: the first split's model over every field (mcnn.screening) into ``screen_<arch>/``."""
        from mcnn.screening import ScreenSettings, control_classes, screen_outputs

        every = next((u for u in ds.unlabelled if u.name == "screen"), None)
        first = self.runs_dir / self.planned[0]
        if every is None or not (first / "metrics.json").is_file():
            return None
        spec_path = ds.root / "screen.json"
        spec = json.loads(spec_path.read_text(encoding="utf-8")) if spec_path.is_file() else {}
        negative = str(spec.get("negative_control") or "")
        train_index = ds.root / "splits" / self.planned[0] / "train_index.csv"
        settings = ScreenSettings(
            negative_control=negative, positive_control=str(spec.get("positive_control") or ""),
            control_classes=control_classes(train_index, negative, str(spec.get("control_class") or "control")),
            dose_classes=self.o.dose_classes, unit=ds.concentration_unit or "", engine=self.o.engine, gpu=self.o.gpu,
            batch=self.data_spec(ds, ds.splits[0]).test_batch, progress=not self.o.quiet and os.isatty(2),
            seed=self.o.seed, profiles_csv=self.o.profiles_csv)
        metrics = json.loads((first / "metrics.json").read_text())
        weights = first / "snapshots" / f"{self.o.arch}_iter_{metrics['iterations']}.caffemodel"
        out = self.o.out / f"screen_{self.o.arch}"
        screen_outputs(first / f"{self.o.arch}_deploy.prototxt", weights, every.lmdb, every.index, out,
                       labels=ds.root / "labels.txt", train_val=first / f"{self.o.arch}_train_val.prototxt",
                       settings=settings, log=self.log)
        return out

    def data_spec(self, ds: PreparedDataset, split: PreparedSplit) -> DataSpec:
        """The data of ``split`` for the net builder; the batch is ``--batch`` or the dataset preset's."""
        preset = PRESETS.get(ds.dataset)
        batch = self.o.batch or (preset.batch if preset else 16)
        return DataSpec(channels=ds.num_channels, height=ds.height, width=ds.width, classes=ds.num_classes,
                        scale=DEFAULT_SCALE, train_source=str(split.paths.train_lmdb),
                        test_source=str(split.paths.test_lmdb), train_batch=batch, test_batch=batch,
                        class_names=ds.class_names)

    def run_split(self, ds: PreparedDataset, split: PreparedSplit) -> None:
        """Nets, solver, training (resumed if interrupted) and evaluation of one split, holding the
        split folder's lock: shards, array tasks and a resubmission never write the same split at once."""
        folder = self.runs_dir / split.name
        if not (folder / "metrics.json").is_file():
            with folder_lock(folder):
                if not (folder / "metrics.json").is_file():  # not finished by another process meanwhile
                    self._run_split(ds, split, folder)
                    return
        self.log(f"{split.name}: done, skipped")

    def _run_split(self, ds: PreparedDataset, split: PreparedSplit, folder: Path) -> None:
        start = time.time()
        data = self.data_spec(ds, split)
        from mcnn.nets.presets import default_crop

        if self.o.arch != "mcnn":
            data = DataSpec(**{**data.__dict__, "crop": default_crop(self.o.arch, data.height, data.width)})
        train_val, deploy = folder / f"{self.o.arch}_train_val.prototxt", folder / f"{self.o.arch}_deploy.prototxt"
        cio.write_prototxt(train_val, build_net(self.o.arch, data, **self.o.net_options).net)
        cio.write_prototxt(deploy, build_net(self.o.arch, data, deploy=True, **self.o.net_options).net)
        prefix = str(folder / "snapshots" / self.o.arch)
        tuned: dict[str, float] = {}
        if self.o.base_lr:
            tuned["base_lr"] = self.o.base_lr
        if self.o.step_epochs:
            tuned["step_epochs"] = self.o.step_epochs
        # about six snapshots per split: enough to resume, not a disk full of weights
        solver_options = SolverOptions(epochs=self.o.epochs, snapshot_epochs=max(1, round(self.o.epochs / 6)),
                                       snapshot_prefix=prefix, seed=self.o.seed,
                                       mode="CPU" if self.o.gpu is None else "GPU", **tuned)
        built = build_solver(str(train_val), split.train_size, split.test_size, data.train_batch, data.test_batch,
                             solver_options)
        solver_path = folder / "solver.prototxt"
        cio.write_prototxt(solver_path, built.solver)
        max_iter = built.solver.max_iter
        weights = Path(f"{prefix}_iter_{max_iter}.caffemodel")
        if not weights.exists():
            self._train(solver_path, prefix, max_iter, split.name)
        # the model card beside the weights (either engine), with the builder's options; metrics once evaluated
        write_card(training_card(solver_path, weights, engine=self.o.engine, iterations=max_iter, arch=self.o.arch,
                                 options=self.o.net_options, gpu=self.o.gpu), weights)
        profiling = self.o.profiling and ds.protocol == "loco"
        result = run_model(deploy, weights, split.paths.test_lmdb, index=split.paths.test_index,
                           labels=ds.root / "labels.txt", train_val=train_val, batch_size=data.test_batch,
                           engine=self.o.engine, gpu=self.o.gpu, with_features=profiling)
        record = SplitRun(split=split.name, arch=self.o.arch, engine=self.o.engine,
                          hardware=hardware(self.o.engine, self.o.gpu), train_size=split.train_size,
                          test_size=split.test_size, iterations=max_iter)
        if profiling:
            record.profiling = self._profiling(ds, result, deploy, weights, split, train_val, data.test_batch)
        record.seconds = time.time() - start  # the attempt that finished the split
        metrics = write_evaluation(folder, result.rows, result.columns, result.classes,
                                   f"{ds.dataset} {self.o.arch} {split.name}", record.as_dict(),
                                   run_examples(result, split.paths.test_lmdb, ds.channels))
        update_metrics(weights, evaluation_metrics(metrics, split.paths.test_lmdb))
        self.log(f"{split.name}: done in {record.seconds:.0f} s")

    def _train(self, solver: Path, prefix: str, max_iter: int, name: str) -> None:
        resume = latest_snapshot(prefix)
        snapshot = str(resume[1]) if resume and resume[0] < max_iter else None
        if snapshot:
            self.log(f"{name}: resuming from {snapshot}")
        # the engine's glog lines go to train.log beside the solver; caffe's stream through stderr
        run = TrainingRun(solver=str(solver), snapshot=snapshot, gpu=None if self.o.gpu is None else str(self.o.gpu),
                          workers=self.o.workers, progress=not self.o.quiet and os.isatty(2),
                          log_file=solver.parent / "train.log" if self.o.engine == "torch" else None,
                          tensorboard=self.o.tensorboard and self.o.tensorboard / self.o.dataset / self.o.arch / name)
        if train(run, self.o.engine) != 0:
            raise TrainingError(f"{name}: caffe train failed (see its log above)")

    def _profiling(self, ds: PreparedDataset, result: ModelRun, deploy: Path, weights: Path, split: PreparedSplit,
                   train_val: Path, batch: int) -> dict[str, object]:
        """NSC/NSCB for the held-out compound against the other compounds, and its phenotypic activity
        (mAP against the DMSO wells of its plates), in this fold's feature space."""
        train = run_model(deploy, weights, split.paths.train_lmdb, index=split.paths.train_index,
                          labels=self.data_dir / "labels.txt", train_val=train_val, batch_size=batch,
                          engine=self.o.engine, gpu=self.o.gpu, with_features=True)
        keep = [i for i, r in enumerate(train.rows) if str(r.get("Metadata_Augmentation", "none")) in ("none", "")]
        candidates = aggregate_treatments([{k: str(v) for k, v in train.rows[i].items()} for i in keep],
                                          train.predictions.features[keep])
        queries = aggregate_treatments([{k: str(v) for k, v in r.items()} for r in result.rows],
                                       result.predictions.features)
        out: dict[str, object] = {}
        for mode in ("NSC", "NSCB"):
            out[mode] = [{"compound": r.query.compound, "concentration": r.query.concentration, "moa": r.query.moa,
                          "neighbour": r.neighbour.compound, "neighbour_concentration": r.neighbour.concentration,
                          "neighbour_moa": r.neighbour.moa, "correct": r.correct}
                         for r in nearest_moa(queries, candidates, mode)]
        controls = next((u for u in ds.unlabelled if u.name == "controls"), None)
        if controls is not None:
            out["activity"] = self._activity(result, deploy, weights, controls, train_val, batch)
        return out

    def _activity(self, result: ModelRun, deploy: Path, weights: Path, controls: UnlabelledSet, train_val: Path,
                  batch: int) -> list[dict[str, object]]:
        """mAP and p of each held-out treatment against the DMSO wells on the plates it was imaged on."""
        from mcnn.evaluate.activity import treatment_activity

        dmso = run_model(deploy, weights, controls.lmdb, index=controls.index, labels=self.data_dir / "labels.txt",
                         train_val=train_val, batch_size=batch, engine=self.o.engine, gpu=self.o.gpu,
                         with_features=True)
        plates = {str(r.get("Metadata_Plate", "")) for r in result.rows}
        keep = [i for i, r in enumerate(dmso.rows) if str(r.get("Metadata_Plate", "")) in plates]
        assert result.predictions.features is not None and dmso.predictions.features is not None
        try:
            return treatment_activity([{k: str(v) for k, v in r.items()} for r in result.rows],
                                      result.predictions.features,
                                      [{k: str(v) for k, v in dmso.rows[i].items()} for i in keep],
                                      dmso.predictions.features[keep], seed=self.o.seed)
        except ConfigError as exc:  # e.g. a treatment imaged in one well only: no replicates to rank
            self.log(f"phenotypic activity skipped: {exc}")
            return []

    # -- summary --------------------------------------------------------------------

    def summarize(self, ds: PreparedDataset) -> dict[str, object]:
        """Merge every finished split into results.md / results.csv (and the aggregated figures)."""
        planned = getattr(self, "planned", [s.name for s in ds.splits])
        return summarize_run(self.o.out, self.runs_dir, ds.dataset, ds.protocol, self.o.arch, planned,
                             list(ds.class_names), options=self.o.result_options())
