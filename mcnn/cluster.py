"""A reproduction's splits as a job array through submitit: each repeat or fold one task.

The submitting process checks the options (and that submitit, and for Slurm ``srun``, are there),
prepares the whole run folder once (``RUN_DIR/data``; the tasks only read it) and records the
options, then submits one task per split without ``metrics.json``: one Slurm job array
(``launcher="slurm"``, at most ``array_parallelism`` tasks running at once) or local processes
(``launcher="local"``, submitit's LocalExecutor, at most ``array_parallelism`` at once). Each task
trains and evaluates its split under the split folder's lock (:meth:`mcnn.reproduce.Reproduction.run_one`),
resuming from the split's last snapshot; a task that reaches its time limit is requeued by
submitit (:meth:`SplitTask.checkpoint`) and resumes. After waiting, the submitter merges with the
same step as an in-process run (:meth:`~mcnn.reproduce.Reproduction.finish`), so ``results.md``
and ``results.csv`` are those of a run in one process. Failed tasks are returned, one per split,
with the path of their stderr log.

submitit is the optional ``cluster`` extra, imported only when a launcher needs it.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mcnn.errors import ConfigError
from mcnn.reproduce import Reproduction
from mcnn.reproduce_options import ReproduceOptions
from mcnn.training import resolve_gpu

#: ``--launcher`` values: in this process, submitit's local processes, a Slurm job array.
LAUNCHERS = ("none", "local", "slurm")

#: ``--time`` when not given: each task's time limit in minutes (a task past it is requeued and resumes).
DEFAULT_TIME_MIN = 720

#: Seconds between two looks at the tasks while waiting (Slurm: submitit asks sacct at most once a minute).
POLL_S = {"local": 0.5, "slurm": 15.0}


@dataclass
class LaunchOptions:
    """How a reproduction's splits run (the cluster flags of ``tools/reproduce.py``); None = not given."""

    launcher: str = "none"
    #: Slurm partition (``--partition``).
    partition: str | None = None
    #: GPUs of each task (Slurm ``--gpus-per-task``; locally the first N GPUs, shared by every task).
    gpus_per_task: int | None = None
    #: Tasks running at once (Slurm's ``--array=...%N``; locally the processes started at a time).
    array_parallelism: int | None = None
    #: Each task's time limit in minutes (default :data:`DEFAULT_TIME_MIN`).
    time_min: int | None = None
    #: Memory of each task in GB (Slurm ``--mem``).
    mem_gb: float | None = None
    #: CPUs of each task (Slurm ``--cpus-per-task``; default the data loading workers + 1).
    cpus_per_task: int | None = None
    #: submitit's folder of pickles and per-task logs (default ``RUN_DIR/slurm``).
    folder: Path | None = None
    #: Wait for the tasks and merge (False: submit, return the job id; Slurm only).
    wait: bool = True
    #: Only merge what is done (no training, no submission).
    summarize_only: bool = False
    #: ``--gpu`` as given: each task resolves it itself (``auto`` = the task's GPU 0 when it has one).
    gpu: str = "auto"

    def slurm_flags(self) -> list[str]:
        """The Slurm-only flags given."""
        given = {"--partition": self.partition, "--mem-gb": self.mem_gb, "--cpus-per-task": self.cpus_per_task}
        return [flag for flag, value in given.items() if value is not None] + ([] if self.wait else ["--no-wait"])

    def array_flags(self) -> list[str]:
        """The flags of either launcher given."""
        given = {"--gpus-per-task": self.gpus_per_task, "--array-parallelism": self.array_parallelism,
                 "--time": self.time_min, "--slurm-folder": self.folder}
        return [flag for flag, value in given.items() if value is not None]

    def check_numbers(self) -> None:
        """ConfigError for a count, time or memory out of range."""
        least = {"--gpus-per-task": (self.gpus_per_task, 0), "--array-parallelism": (self.array_parallelism, 1),
                 "--time": (self.time_min, 1), "--cpus-per-task": (self.cpus_per_task, 1)}
        for flag, (value, low) in least.items():
            if value is not None and value < low:
                raise ConfigError(f"{flag} {value}: need at least {low}")
        if self.mem_gb is not None and not self.mem_gb > 0:
            raise ConfigError(f"--mem-gb {self.mem_gb}: need a positive number of GB")

    def validate(self, options: ReproduceOptions) -> None:
        """Raise :class:`ConfigError` (one line, naming the flag) for options no launch can use, before any
        work: a launcher flag without its launcher, a bad number, ``--shard``, a missing extra or Slurm."""
        if self.launcher not in LAUNCHERS:
            raise ConfigError(f"--launcher {self.launcher!r}: choose from {', '.join(LAUNCHERS)}")
        if self.summarize_only and options.force:
            raise ConfigError("--summarize-only and --force exclude each other (--force starts the run over)")
        if self.launcher != "slurm" and self.slurm_flags():
            raise ConfigError(f"{self.slurm_flags()[0]} only applies with --launcher slurm")
        if self.launcher == "none" and self.array_flags():
            raise ConfigError(f"{self.array_flags()[0]} only applies with --launcher slurm or local")
        self.check_numbers()
        if self.launcher == "none":
            return
        if options.shard != (0, 1):
            raise ConfigError("--shard and --launcher exclude each other: the array gives every split its own task")
        if self.gpu not in ("auto", "cpu") and resolve_gpu(self.gpu) >= (self.gpus_per_task or 0):  # type: ignore[operator]
            raise ConfigError(f"--gpu {self.gpu}: each task sees {self.gpus_per_task or 0} GPU(s) "
                              f"(--gpus-per-task {self.gpus_per_task or 0}); use --gpu auto")
        if not self.summarize_only:
            require_launcher(self.launcher)


def _submitit(launcher: str) -> Any:
    """The submitit module; ConfigError naming the extra when it is not installed."""
    try:
        import submitit
    except ImportError:
        raise ConfigError(f"--launcher {launcher} needs the 'cluster' extra: pip install 'mcnn[cluster]'") from None
    return submitit


def require_launcher(launcher: str) -> None:
    """ConfigError when ``launcher`` cannot submit from here: submitit missing, or (Slurm) no ``srun``."""
    submitit = _submitit(launcher)
    if launcher == "slurm" and submitit.SlurmExecutor.affinity() <= 0:
        raise ConfigError("--launcher slurm: Slurm's srun is not on PATH here; submit from a node of the cluster "
                          "(--launcher local runs the same array as local processes)")


def log_folder(options: ReproduceOptions, launch: LaunchOptions) -> Path:
    """submitit's folder of this run: ``--slurm-folder`` or ``RUN_DIR/slurm``."""
    return launch.folder if launch.folder is not None else options.out / "slurm"


def make_executor(options: ReproduceOptions, launch: LaunchOptions) -> Any:
    """A submitit executor (``AutoExecutor`` for ``launch.launcher``) with the run's parameters set;
    nothing is submitted. ``executor.parameters`` holds what each task will get."""
    submitit = _submitit(launch.launcher)
    root = Path(__file__).resolve().parents[1]
    # a checkout that is not pip-installed: the tasks import mcnn from where this process did
    setup = [f"export PYTHONPATH={shlex.quote(str(root))}${{PYTHONPATH:+:$PYTHONPATH}}"]
    params: dict[str, Any] = {"name": f"mcnn-{options.dataset}-{options.arch}",
                              "timeout_min": launch.time_min or DEFAULT_TIME_MIN}
    if launch.launcher == "slurm":
        params.update(slurm_partition=launch.partition, slurm_array_parallelism=launch.array_parallelism,
                      slurm_gpus_per_task=launch.gpus_per_task or None, slurm_setup=setup,
                      cpus_per_task=launch.cpus_per_task or options.workers + 1, mem_gb=launch.mem_gb)
    else:
        params.update(gpus_per_node=launch.gpus_per_task or 0, local_setup=setup)
    executor = submitit.AutoExecutor(folder=log_folder(options, launch), cluster=launch.launcher)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


@dataclass(frozen=True)
class SplitTask:
    """One task of the array: train and evaluate ``split`` of the run ``options`` describe (picklable;
    submitit runs it in the task's process). ``gpu`` is ``--gpu`` as given, resolved in the task."""

    options: ReproduceOptions
    gpu: str
    split: str

    def __call__(self) -> str:
        """Run the split (skipped when done, resumed from its last snapshot when not); returns its name."""
        options = replace(self.options, gpu=resolve_gpu(self.gpu))
        Reproduction(options, log=lambda m: print(m, file=sys.stderr, flush=True)).run_one(self.split)
        return self.split

    def checkpoint(self) -> Any:
        """submitit calls this at the time limit or on preemption: requeue the same split, which resumes
        from its last snapshot."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(SplitTask(self.options, self.gpu, self.split))


@dataclass
class LaunchResult:
    """What :func:`launch` did: the summary (None when not merged), the splits submitted, the
    failed ones as ``(split, reason, stderr log)``, and the job id(s) of the submission."""

    summary: dict[str, object] | None
    submitted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str, Path]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)


def launch(options: ReproduceOptions, launch: LaunchOptions, log: Any = print) -> LaunchResult:
    """Run the reproduction ``options`` describe as ``launch`` says: in this process (``none``), or as a
    job array of its unfinished splits, then merge; ``summarize_only`` merges what is done."""
    launch.validate(options)
    repro = Reproduction(options, log)
    if launch.launcher == "none" and not launch.summarize_only:
        return LaunchResult(repro.run())
    prepared = repro.load() if launch.summarize_only else None  # read-only: before anything is written
    with repro.shard_lock():  # shard 0 of 1: the lock an in-process run of the whole folder holds
        repro.check_options()
        if prepared is not None:
            return LaunchResult(repro.finish(prepared))
        ds = repro.prepare()
        pending = [s.name for s in ds.splits if not (repro.runs_dir / s.name / "metrics.json").is_file()]
        log(f"{ds.dataset}: {len(repro.planned)} splits, {len(pending)} to run as {launch.launcher} tasks "
            f"({options.arch}, {options.engine})")
        result = LaunchResult(None, pending)
        if pending:
            tasks = [(name, SplitTask(replace(options, gpu=None), launch.gpu, name)) for name in pending]
            executor = make_executor(options, launch)
            if not launch.wait:
                result.job_ids = _submit_array(executor, tasks, log)[1]
                return result
            result.failed, result.job_ids = run_tasks(executor, tasks, launch, log, quiet=options.quiet)
        result.summary = repro.finish(ds)
    return result


def run_tasks(executor: Any, tasks: list[tuple[str, Callable[[], object]]], launch: LaunchOptions, log: Any,
              quiet: bool = False) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """Submit the named callables ``tasks`` (Slurm: one array; locally at most ``array_parallelism``
    processes at a time) and wait for all, logging each as it ends (a progress bar on a terminal);
    returns the failures ``(name, reason, stderr log)`` and the job ids."""
    from tqdm import tqdm

    queue, running, failed, ids, done = list(tasks), [], [], [], 0
    if launch.launcher == "slurm":
        running, ids = _submit_array(executor, queue, log)
        queue = []
    limit = launch.array_parallelism or len(tasks)
    bar = tqdm(total=len(tasks), desc="tasks", unit="split", disable=quiet or not os.isatty(2))
    while queue or running:
        while queue and len(running) < limit:
            name, fn = queue.pop(0)
            running.append((name, executor.submit(fn)))
            ids.append(str(running[-1][1].job_id))
        finished = [(n, j) for n, j in running if j.done()]
        running = [(n, j) for n, j in running if not any(j is f for _, f in finished)]
        for name, job in finished:
            reason = _failure(job)
            if reason is not None:
                failed.append((name, reason, Path(job.paths.stderr)))
            bar.update(1)
            done += 1
            log(f"{name}: task {job.job_id} {'failed' if reason else 'finished'} ({done}/{len(tasks)})")
        if not finished:
            time.sleep(POLL_S[launch.launcher])
    bar.close()
    return failed, ids


def _submit_array(executor: Any, tasks: list[tuple[str, Callable[[], object]]],
                  log: Any) -> tuple[list[tuple[str, Any]], list[str]]:
    """Submit ``tasks`` as one job array; returns ``(name, job)`` pairs and the array's job id."""
    jobs = executor.submit_array([fn for _, fn in tasks])
    ids = sorted({str(j.job_id).split("_")[0] for j in jobs})
    log(f"submitted {len(tasks)} task(s) as Slurm job array {', '.join(ids)}; logs in {executor.folder}")
    return [(name, job) for (name, _), job in zip(tasks, jobs, strict=True)], ids


def _failure(job: Any) -> str | None:
    """None when ``job`` returned; otherwise the last line of its error (or why it has no result)."""
    error = job.exception()
    if error is None:
        return None
    lines = [line for line in str(error).splitlines() if line.strip()]
    rules = [i for i, line in enumerate(lines) if set(line.strip()) == {"-"}]
    if len(rules) >= 2 and rules[1] > rules[0] + 1:  # "failed during processing with trace:" then the trace
        return lines[rules[1] - 1].strip()
    return f"no result (state {job.state})"
