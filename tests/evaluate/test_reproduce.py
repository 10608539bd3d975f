"""tools/reproduce.py end to end on synthetic look-alikes: cv, sharded BBBC021 folds, kill and resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import pb
from mcnn.caffe.modelcard import read_card
from mcnn.caffe.transform import LmdbRecords, Transformer
from mcnn.engine.net import load_net
from mcnn.evaluate.fieldview import read_examples
from mcnn.evaluate.predict import test_transform as train_val_transform
from mcnn.tables import read_table
from tests.support import ROOT, run_script
from tests.support.golden import check_golden

TINY = ["--widths", "4,4,4,4,4,4,4", "--fusion-width", "16", "--fusion-pool", "0", "--fc-width", "16",
        "--quiet", "--batch", "8", "--workers", "0"]
BBBC021_CSVS = ROOT.parent / "shared" / "data" / "bbbc021" / "crlf_unquoted"


@pytest.fixture(scope="module")
def raw013(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("raw") / "bbbc013"
    out = run_script("data_prep/synthesize.py", "bbbc013", "--out", str(raw))
    assert out.returncode == 0, out.stderr
    return raw


def results(run: Path) -> list[dict[str, str]]:
    with open(run / "results.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def check_examples_and_kernel_maps(run: Path, first: Path) -> None:
    """The example fields below the confusion matrices and the kernel maps of one field per class."""
    split = run / "data" / "splits" / "repeat_000"
    classes = (run / "data" / "labels.txt").read_text().split()
    test_rows = [r for r in read_table(split / "test_index.csv").rows if r["Metadata_Augmentation"] in ("none", "")]
    firsts = [next((r["key"] for r in test_rows if int(r["label"]) == c), None) for c in range(len(classes))]
    examples = read_examples(first / "examples.npz")
    assert examples.classes == classes and examples.keys == firsts and examples.found() == len(classes)
    assert (run / "kernel_maps_mcnn.png").stat().st_size > 5000
    arrays = np.load(run / "kernel_maps_mcnn.npz")
    assert arrays["blobs"].tolist() == [f"conv1_s{s}" for s in (1, 2, 4, 8, 16, 32, 64)]
    assert arrays["scales"].tolist() == [1, 2, 4, 8, 16, 32, 64]
    assert arrays["titles"].tolist() == classes and arrays["labels"].tolist() == list(range(len(classes)))
    assert arrays["keys"].tolist() == firsts and arrays["channels"].tolist() == ["GFP", "DNA"]
    # the first-layer maps are the engine's blobs of those records through the first split's model
    iterations = json.loads((first / "metrics.json").read_text())["iterations"]
    net = load_net(first / "mcnn_deploy.prototxt", first / "snapshots" / f"mcnn_iter_{iterations}.caffemodel")
    records = LmdbRecords(split / "test_lmdb")
    transformer = Transformer(train_val_transform(first / "mcnn_train_val.prototxt"), pb.TEST, records.shape)
    top, left, h, w = arrays["windows"][0].tolist()
    for i, key in enumerate(firsts):
        image, label = records.image([k.decode() for k in records.keys].index(key))
        x = transformer(image, np.random.default_rng(0))[None]
        with torch.no_grad():
            expected = net.forward({"data": torch.from_numpy(x)})["conv1_s1"].numpy()
        assert label == i and np.array_equal(arrays["conv1_s1"][i], expected[0, :, top: top + h, left: left + w])


@pytest.mark.slow
def test_cv_dataset_end_to_end(raw013: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    out = run_script("tools/reproduce.py", "bbbc013", "--raw", str(raw013), "--out", str(run),
               "--repeats", "2", "--epochs", "2", *TINY)
    assert out.returncode == 0, out.stderr
    (row,) = results(run)
    assert set(row) == {"dataset", "architecture", "statistic", "ours", "ours_sd", "ours_mean", "ours_median",
                        "ours_mad", "published", "published_sd", "benchmark", "splits_done", "splits_planned",
                        "wall_time_h", "engine", "hardware", "map_activity", "map_active_pct"}
    assert (row["dataset"], row["architecture"], row["statistic"]) == ("bbbc013", "mcnn", "median")
    assert (row["map_activity"], row["map_active_pct"]) == ("", "")  # BBBC021 loco only
    assert (row["published"], row["published_sd"], row["splits_done"], row["splits_planned"]) == ("100", "0", "2", "2")
    accuracies = [json.loads((run / "runs" / "mcnn" / s / "metrics.json").read_text())["accuracy"]
                  for s in ("repeat_000", "repeat_001")]
    assert float(row["ours_median"]) == pytest.approx(100 * sorted(accuracies)[0] / 2 + 100 * sorted(accuracies)[1] / 2,
                                                      abs=0.06)
    assert row["engine"] == "torch" and row["hardware"].startswith("CPU")
    text = (run / "results.md").read_text()
    assert "| mcnn | median |" in text and "100 (0)" in text and "CP-CHARM" in text
    assert (run / "confusion_mcnn.png").stat().st_size > 1000
    check_examples_and_kernel_maps(run, run / "runs" / "mcnn" / "repeat_000")
    # the outputs of this fixed run, against the committed golden files (numbers within a tolerance)
    first = run / "runs" / "mcnn" / "repeat_000"
    check_golden("reproduce_bbbc013", [first / "predictions.csv", first / "metrics.json",
                                       run / "dose_mcnn" / "ec50.csv", run / "results.md"])
    # the model card beside the first repeat's final weights: the builder's options, and the evaluation's metrics
    metrics = json.loads((first / "metrics.json").read_text())
    card = read_card(first / "snapshots" / f"mcnn_iter_{metrics['iterations']}.caffemodel")
    assert card is not None and card.architecture.arch == "mcnn"
    assert (card.training.engine, card.training.seed, card.training.iterations) == ("torch", 0, metrics["iterations"])
    assert card.architecture.options == {"pathway_widths": [4] * 7, "fusion_width": 16, "fusion_pool": 0,
                                         "fc_width": 16}
    assert (card.dataset.name, card.dataset.split, card.classes) == ("bbbc013", "repeat_000", metrics["classes"])
    assert (card.metrics["source"], card.metrics["accuracy"]) == ("evaluation", metrics["accuracy"])
    # BBBC013's dose set (72 wells) went through the first repeat's model and the dose-response fits ...
    predictions = run / "dose_mcnn" / "predictions.csv"
    assert predictions.read_text().count("\n") == 73
    assert json.loads((run / "dose_mcnn" / "ec50.json").read_text())["fitted_classes"] == ["positive"]
    # ... and tools/dose_response.py reads the same file as it is
    dose = run_script("tools/dose_response.py", "--predictions", str(predictions), "--out",
                str(tmp_path / "dose"), "--no-plots")
    assert dose.returncode == 0, dose.stderr
    assert "2 group(s) x 1 class(es)" in dose.stderr  # wortmannin and LY294002
    again = run_script("tools/reproduce.py", "bbbc013", "--raw", str(raw013), "--out", str(run),
                 "--repeats", "2", "--epochs", "2", *TINY)
    assert again.returncode == 0 and again.stderr.count("done, skipped") == 2


@pytest.mark.slow
@pytest.mark.skipif(not BBBC021_CSVS.is_dir(), reason="the real BBBC021 metadata CSVs are not beside the checkout")
def test_bbbc021_folds_in_two_shards(tmp_path: Path) -> None:
    raw = tmp_path / "raw021"
    out = run_script("data_prep/synthesize.py", "bbbc021", "--out", str(raw), "--metadata", str(BBBC021_CSVS))
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    for shard in ("0/2", "1/2"):
        out = run_script("tools/reproduce.py", "bbbc021", "--raw", str(raw), "--out", str(run),
                   "--epochs", "1", "--shard", shard, *TINY)
        assert out.returncode == 0, out.stderr
    (row,) = results(run)
    # the small look-alike holds 3 Week1 plates: 4 annotated compounds, one fold each
    assert (row["splits_done"], row["splits_planned"], row["statistic"]) == ("4", "4", "median")
    summary = json.loads((run / "summary_mcnn.json").read_text())
    treatments = (run / "moa_treatments_mcnn.csv").read_text().strip().splitlines()
    assert summary["treatments"] == len(treatments) - 1
    assert summary["nsc_queries"] == summary["treatments"]
    assert "per_moa_accuracy" in summary and "BBBC021 (mcnn)" in (run / "results.md").read_text()
    # phenotypic activity beside NSC/NSCB: every held-out treatment against the DMSO wells of its plates
    activity = (run / "activity_mcnn.csv").read_text().strip().splitlines()
    assert summary["activity"]["treatments"] == len(activity) - 1 > 0
    assert 0 <= summary["activity"]["mean_map"] <= 1
    assert sorted(p.name for p in (run / "data").iterdir()) == ["shard-0-of-2", "shard-1-of-2"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_summary(raw013: Path, tmp_path: Path) -> None:
    args = ["bbbc013", "--raw", str(raw013), "--repeats", "2", "--epochs", "12", *TINY]
    full = tmp_path / "full"
    assert run_script("tools/reproduce.py", *args, "--out", str(full)).returncode == 0
    part = tmp_path / "part"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "reproduce.py"), *args, "--out", str(part)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = part / "runs" / "mcnn" / "repeat_001" / "snapshots"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if second.is_dir() and any(second.glob("*.solverstate")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (part / "runs" / "mcnn" / "repeat_000" / "metrics.json").is_file()
    assert not (part / "runs" / "mcnn" / "repeat_001" / "metrics.json").is_file()
    out = run_script("tools/reproduce.py", *args, "--out", str(part))
    assert out.returncode == 0, out.stderr
    assert "repeat_000: done, skipped" in out.stderr and "repeat_001: resuming from" in out.stderr
    keep = ("ours", "ours_sd", "ours_mean", "ours_median", "ours_mad", "splits_done")
    assert [{k: r[k] for k in keep} for r in results(part)] == [{k: r[k] for k in keep} for r in results(full)]
    for split in ("repeat_000", "repeat_001"):
        a = (full / "runs" / "mcnn" / split / "predictions.csv").read_text()
        b = (part / "runs" / "mcnn" / split / "predictions.csv").read_text()
        assert a == b


@pytest.mark.slow
def test_rerun_with_other_options_is_refused_and_force_starts_over(raw013: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["bbbc013", "--raw", str(raw013), "--out", str(run), "--repeats", "1", *TINY]
    first = run_script("tools/reproduce.py", *args, "--epochs", "1")
    assert first.returncode == 0, first.stderr
    assert 'epochs 1.0' in (run / "results.md").read_text()
    assert json.loads((run / "summary_mcnn.json").read_text())["options"]["epochs"] == 1.0
    first_iterations = json.loads((run / "runs" / "mcnn" / "repeat_000" / "metrics.json").read_text())["iterations"]
    again = run_script("tools/reproduce.py", *args, "--epochs", "3")
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        f"reproduce: error: {run / 'runs' / 'mcnn'}: trained earlier with other options (epochs: 1.0 -> 3.0); "
        "use another --out or add --force"]
    assert 'epochs 1.0' in (run / "results.md").read_text()  # the old result stands, labelled as what it is
    forced = run_script("tools/reproduce.py", *args, "--epochs", "3", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "done, skipped" not in forced.stderr
    assert 'epochs 3.0' in (run / "results.md").read_text()
    iterations = json.loads((run / "runs" / "mcnn" / "repeat_000" / "metrics.json").read_text())["iterations"]
    assert iterations > 2 * first_iterations  # trained anew, for 3 epochs (ceil of images / batch per epoch)


@pytest.mark.slow
def test_a_second_run_of_the_same_shard_stops_at_once(raw013: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [sys.executable, str(ROOT / "tools" / "reproduce.py"), "bbbc013", "--raw", str(raw013), "--out", str(run),
            "--repeats", "1", "--epochs", "4", *TINY]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = run / ".lock-mcnn-shard-0-of-1"
    deadline = time.time() + 60
    while time.time() < deadline and not (lock.is_file() and lock.read_text().strip()):
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGSTOP)  # hold the first one mid-run, lock taken
    try:
        assert first.poll() is None, "the first run finished before the second started"
        second = subprocess.run(args, capture_output=True, text=True)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"reproduce: error: {run}: another run (pid {first.pid}) is writing this folder; wait for it to finish or "
        "use another --out"]
    assert first.wait(timeout=600) == 0, first.stderr.read() if first.stderr else ""
    assert (run / "runs" / "mcnn" / "repeat_000" / "metrics.json").is_file()
