"""The bad-input table: every tool, given a bad file, flag or folder, stops with one line and leaves
nothing partial behind.

Each case runs one command line against a small shared world (a tiny LMDB with its nets and
weights, prediction tables, look-alike downloads) and asserts the exit status (2: bad input), that
stderr is exactly one line holding the expected words, and that the outputs the command would have
written do not exist. A new tool joins by adding its rows to :data:`CASES`.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import run_script
from tests.support.lookalikes import copy_raw
from tests.support.tiny import make_setup, write_lmdb


@dataclass(frozen=True)
class Case:
    """``script`` run with ``args`` (``{name}`` placeholders are paths of the world); ``words`` must all be in
    the one stderr line; none of ``absent`` (world-relative) may exist afterwards."""

    name: str
    script: str
    args: tuple[str, ...]
    words: tuple[str, ...]
    absent: tuple[str, ...] = ()
    status: int = 2


def _dose_table(path: Path, change: dict[int, dict[str, str]] | None = None, raw: bytes | None = None) -> Path:
    """A valid dose-response predictions CSV (2 compounds x 5 concentrations x 2 replicates + DMSO),
    with the rows in ``change`` edited, or the raw bytes ``raw`` appended."""
    rows = []
    for compound in ("cmpdA", "cmpdB"):
        for k, conc in enumerate((0.01, 0.1, 1, 10, 100)):
            for rep in (1, 2):
                p = min(0.95, 0.1 + 0.2 * k)
                rows.append({"Metadata_Compound": compound, "Metadata_Concentration": str(conc),
                             "Metadata_Replicate": str(rep), "prob_neg": f"{1 - p:.3f}", "prob_pos": f"{p:.3f}"})
    rows += [{"Metadata_Compound": "DMSO", "Metadata_Concentration": "0", "Metadata_Replicate": str(r),
              "prob_neg": "0.9", "prob_pos": "0.1"} for r in (1, 2)]
    for i, edit in (change or {}).items():
        rows[i].update(edit)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if raw is not None:
        with open(path, "ab") as handle:
            handle.write(raw)
    return path


def _damage_records(path: Path) -> None:
    """Replace one record of the LMDB at ``path`` by bytes that are not a Datum."""
    import lmdb

    env = lmdb.open(str(path), map_size=1 << 26)
    with env.begin(write=True) as txn:
        key = next(iter(txn.cursor().iternext(keys=True, values=False)))
        txn.put(bytes(key), b"\x0a\xff\xff\xff\xff\x0f")  # field 1, a length far past the end
    env.close()


def _other_size_lmdb(path: Path) -> None:
    """Four 2 x 64 x 64 records: the tiny net expects 2 x 32 x 32."""
    import numpy as np

    from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key

    with LmdbWriter(path) as writer:
        for i in range(4):
            writer.put(record_key(i, "f"), array_to_datum(np.zeros((2, 64, 64), np.uint8), i % 3))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared inputs of the table (see the module docstring)."""
    from mcnn.caffe import read_net
    from tests.support.crosscheck import write_random_caffemodel

    root = tmp_path_factory.mktemp("world")
    tiny = make_setup(root / "tiny")
    write_random_caffemodel(read_net(tiny.deploy), root / "w.caffemodel")
    (root / "tiny" / "labels.txt").write_text("a\nb\nc\n")
    write_lmdb(root / "tiny" / "wide_lmdb", 6, seed=3, labels=[0, 1, 2, 0, 1, 5])  # label 5: not a class
    _other_size_lmdb(root / "tiny" / "big_lmdb")
    (root / "empty_labels.txt").write_text("\n")
    shutil.copy(root / "w.caffemodel", root / "wc.caffemodel")
    (root / "wc.card.json").write_text("{")  # a model card cut short
    from mcnn.caffe import io as cio
    from mcnn.caffe import pb

    cio.write_solverstate(root / "s.solverstate", pb.SolverState(iter=2, learned_net=str(root / "w.caffemodel")))
    (root / "afile").write_text("a file, not a folder\n")
    (root / "adir").mkdir()
    (root / "noprob.csv").write_text("Metadata_Compound,Metadata_Concentration,Metadata_Replicate\ncmpdA,1,1\n")
    _dose_table(root / "dose_ok.csv")
    _dose_table(root / "dose_prob.csv", {3: {"prob_pos": "1.5"}})
    _dose_table(root / "dose_negative.csv", {5: {"Metadata_Concentration": "-1"}})
    _dose_table(root / "dose_nan.csv", {5: {"Metadata_Concentration": "nan"}})
    _dose_table(root / "dose_latin1.csv", raw="cmpd\xe9,1,1,0.5,0.5\n".encode("latin-1"))
    for name in ("tiny_trunc", "tiny_damaged"):  # training setups whose training LMDB is then damaged
        make_setup(root / name)
    data = root / "tiny_trunc" / "train_lmdb" / "data.mdb"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # cut short: mapped, it would SIGBUS
    _damage_records(root / "tiny_damaged" / "train_lmdb")
    shutil.copytree(root / "tiny_trunc" / "train_lmdb", root / "tiny" / "trunc_lmdb")
    shutil.copytree(root / "tiny_damaged" / "train_lmdb", root / "tiny" / "damaged_lmdb")
    solver = (root / "tiny" / "solver.prototxt").read_text()
    for name, old, new in BAD_SOLVERS:
        assert old in solver
        (root / f"solver_{name}.prototxt").write_text(solver.replace(old, new.format(root=root)))
    raw16 = copy_raw("bbbc016", root / "raw016", copy=("BBBC016_v1_platemap.txt",))
    platemap = raw16 / "BBBC016_v1_platemap.txt"
    lines = platemap.read_text().splitlines()
    lines[5] = "-1"  # a negative dose: it would become the "lowest concentration" class
    platemap.write_text("\n".join(lines) + "\n")
    return root


#: Solvers that differ from the tiny one in one field (finding 5, and an unwritable snapshot location, finding 6).
BAD_SOLVERS = (
    ("negative_lr", "base_lr: 0.1", "base_lr: -0.01"),
    ("momentum", "momentum: 0.9", "momentum: 1.5"),
    ("decay", "weight_decay: 0.0005", "weight_decay: -1"),
    ("stepsize", "stepsize: 12", "stepsize: 0"),
    ("policy", 'lr_policy: "step"', 'lr_policy: "cosine"'),
    ("average_loss", "average_loss: 2", "average_loss: 0"),
    ("snapshot_in_file", "snapshot_prefix: ", 'snapshot_prefix: "{root}/afile/snap" #'),
)
MODEL = ("--model", "{tiny}/mcnn_deploy.prototxt", "--weights", "{root}/w.caffemodel")
CASES = [
    # --out naming a file (finding 9): every tool that writes a folder
    Case("prepare --out file", "data_prep/prepare.py", ("bbbc016", "--raw", "{root}/raw016", "--out", "{root}/afile"),
         ("--out", "afile", "is a file")),
    Case("synthesize --out file", "data_prep/synthesize.py", ("bbbc013", "--out", "{root}/afile"),
         ("--out", "is a file")),
    Case("simulate --out file", "tools/simulate.py", ("--preset", "test", "--out", "{root}/afile"),
         ("--out", "is a file")),
    Case("reproduce --out file", "tools/reproduce.py", ("bbbc016", "--raw", "{root}/raw016", "--out", "{root}/afile"),
         ("--out", "is a file")),
    Case("evaluate --out file", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--out", "{root}/afile"),
         ("--out", "is a file")),
    Case("predict --out file", "tools/predict.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--out", "{root}/afile"),
         ("--out", "is a file")),
    Case("dose_response --out file", "tools/dose_response.py",
         ("--predictions", "{root}/dose_ok.csv", "--out", "{root}/afile"), ("--out", "is a file")),
    Case("demo --out file", "tools/demo.py", ("--out", "{root}/afile/run"), ("--out", "inside the file")),
    Case("make_net --out in a file", "tools/make_net.py", ("--preset", "demo", "--out", "{root}/afile/net"),
         ("--out", "inside the file")),
    Case("make_solver --out folder", "tools/make_solver.py",
         ("--net", "{tiny}/mcnn_train_val.prototxt", "--out", "{root}/adir"), ("--out", "is a folder")),
    # dose-response tables (findings 3 and 4; non-UTF-8 text)
    Case("dose probability 1.5", "tools/dose_response.py", ("--predictions", "{root}/dose_prob.csv", "--out",
         "{root}/o_prob"), ("line 5", "prob_pos", "1.5", "not a probability"), ("o_prob/ec50.csv",)),
    Case("dose negative concentration", "tools/dose_response.py", ("--predictions", "{root}/dose_negative.csv",
         "--out", "{root}/o_neg"), ("line 7", "Metadata_Concentration", "not a concentration"), ("o_neg/ec50.csv",)),
    Case("dose nan concentration", "tools/dose_response.py", ("--predictions", "{root}/dose_nan.csv", "--out",
         "{root}/o_nan"), ("line 7", "Metadata_Concentration", "not a concentration"), ("o_nan/ec50.csv",)),
    Case("dose table not UTF-8", "tools/dose_response.py", ("--predictions", "{root}/dose_latin1.csv", "--out",
         "{root}/o_latin1"), ("dose_latin1.csv", "line 24", "not UTF-8"), ("o_latin1/ec50.csv",)),
    # a plate map with a negative dose (finding 4)
    Case("bbbc016 negative dose", "data_prep/prepare.py", ("bbbc016", "--raw", "{root}/raw016", "--out",
         "{root}/o016", "--quiet"), ("BBBC016_v1_platemap.txt", "value 5", "'-1'", "not a concentration"),
         ("o016/.prepare.json", "o016/dataset.json")),
    # labels outside the model's classes (finding 7): stopped before predictions.csv is written
    Case("evaluate labels out of range", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/wide_lmdb", "--labels",
         "{tiny}/labels.txt", "--out", "{root}/o_wide"), ("label 5", "outside the model's 3 classes"),
         ("o_wide/predictions.csv", "o_wide/metrics.json")),
    # records of another shape than the net's input: sizes as numbers, never tensor reprs
    Case("evaluate records of another shape", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/big_lmdb", "--labels",
         "{tiny}/labels.txt", "--out", "{root}/o_big"), ("per-image shape 2x64x64", "the net expects 2x32x32"),
         ("o_big/predictions.csv",)),
    Case("predict records of another shape", "tools/predict.py", (*MODEL, "--lmdb", "{tiny}/big_lmdb", "--labels",
         "{tiny}/labels.txt", "--out", "{root}/p_big"), ("per-image shape 2x64x64", "the net expects 2x32x32"),
         ("p_big/predictions.csv",)),
    # the wrong file in the right flag
    Case("evaluate train_val as --model", "tools/evaluate.py", ("--model", "{tiny}/mcnn_train_val.prototxt",
         "--weights", "{root}/w.caffemodel", "--lmdb", "{tiny}/test_lmdb", "--labels", "{tiny}/labels.txt", "--out",
         "{root}/o_tv"), ("mcnn_train_val.prototxt", "not a deploy net", "give the *_deploy.prototxt"), ("o_tv",)),
    Case("evaluate missing --model", "tools/evaluate.py", ("--model", "{tiny}/none_deploy.prototxt", "--weights",
         "{root}/w.caffemodel", "--lmdb", "{tiny}/test_lmdb", "--out", "{root}/o_nm"),
         ("none_deploy.prototxt", "no such file"), ("o_nm",)),
    Case("evaluate empty labels", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--labels",
         "{root}/empty_labels.txt", "--out", "{root}/o_el"), ("empty_labels.txt", "no class names"), ("o_el",)),
    Case("evaluate solverstate as --weights", "tools/evaluate.py", ("--model", "{tiny}/mcnn_deploy.prototxt",
         "--weights", "{root}/s.solverstate", "--lmdb", "{tiny}/test_lmdb", "--labels", "{tiny}/labels.txt", "--out",
         "{root}/o_ss"), ("s.solverstate",), ("o_ss",)),
    Case("evaluate broken model card", "tools/evaluate.py", ("--model", "{tiny}/mcnn_deploy.prototxt", "--weights",
         "{root}/wc.caffemodel", "--lmdb", "{tiny}/test_lmdb", "--out", "{root}/o_card"),
         ("wc.card.json", "not JSON"), ("o_card",)),
    Case("evaluate --examples wrong --channels", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb",
         "--labels", "{tiny}/labels.txt", "--examples", "--channels", "DNA", "--out", "{root}/e_ch"),
         ("--channels", "1 channel names", "2-channel fields"), ("e_ch",)),
    # export, kernel maps, logs, old files
    Case("export missing weights", "tools/export.py", ("--model", "{tiny}/mcnn_deploy.prototxt", "--weights",
         "{root}/none.caffemodel", "--onnx", "{root}/x.onnx"), ("none.caffemodel", "no such caffemodel file"),
         ("x.onnx",)),
    Case("export --opset 12", "tools/export.py", (*MODEL, "--onnx", "{root}/x.onnx", "--opset", "12"),
         ("--opset 12", "expected 17"), ("x.onnx",)),
    Case("export nothing to write", "tools/export.py", MODEL, ("nothing to write", "--onnx")),
    Case("export --onnx folder", "tools/export.py", (*MODEL, "--onnx", "{root}/adir"), ("--onnx", "is a folder")),
    Case("kernel_maps unknown record", "tools/kernel_maps.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--record",
         "nokey", "--out", "{root}/k_rec"), ("no record 'nokey'", "test_lmdb"), ("k_rec",)),
    Case("kernel_maps unknown layer", "tools/kernel_maps.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--layers",
         "conv9", "--out", "{root}/k_layer"), ("--layers conv9", "no such layer"), ("k_layer",)),
    Case("kernel_maps fc layer", "tools/kernel_maps.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--layers", "fc1",
         "--out", "{root}/k_fc"), ("--layers fc1", "not a C x H x W map"), ("k_fc",)),
    Case("parse_log missing log", "tools/parse_log.py", ("{root}/none.log",), ("none.log", "no such file")),
    Case("parse_log not a log", "tools/parse_log.py", ("{tiny}/solver.prototxt", "{root}/pl_out"),
         ("no 'Solving' line",), ("pl_out",)),
    Case("train --tensorboard with caffe", "tools/train.py", ("-solver", "{tiny}/solver.prototxt", "--engine",
         "caffe", "--tensorboard", "{root}/tb", "--quiet"), ("--tensorboard needs --engine torch",), ("tb",)),
    Case("train -iterations with caffe", "tools/train.py", ("-solver", "{tiny}/solver.prototxt", "--engine", "caffe",
         "-iterations", "3"), ("-iterations 3", "no such option")),
    Case("train -level two", "tools/train.py", ("-solver", "{tiny}/solver.prototxt", "-level", "two"),
         ("-level", "invalid int value")),
    Case("upgrade_net missing IN", "tools/upgrade_net.py", ("{root}/missing.prototxt", "{root}/o_up.prototxt"),
         ("missing.prototxt", "no such file"), ("o_up.prototxt",)),
    Case("upgrade_net --binary on a text net", "tools/upgrade_net.py", ("--binary", "{tiny}/mcnn_deploy.prototxt",
         "{root}/o_up.caffemodel"), ("mcnn_deploy.prototxt", "not a binary NetParameter"), ("o_up.caffemodel",)),
    Case("upgrade_solver OUT folder", "tools/upgrade_solver.py", ("{tiny}/solver.prototxt", "{root}/adir"),
         ("OUT", "is a folder")),
    Case("evaluate --batch 0", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--batch", "0", "--out",
         "{root}/o_batch"), ("--batch 0", "at least 1"), ("o_batch/predictions.csv",)),
    # damaged LMDBs (findings 1 and 10): one line, before or instead of a crash
    Case("evaluate truncated LMDB", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/trunc_lmdb", "--labels",
         "{tiny}/labels.txt", "--out", "{root}/o_trunc"), ("trunc_lmdb", "data.mdb is truncated"),
         ("o_trunc/predictions.csv",)),
    Case("train truncated LMDB", "tools/train.py", ("-solver", "{root}/tiny_trunc/solver.prototxt", "--quiet"),
         ("train_lmdb", "data.mdb is truncated"), ("tiny_trunc/snaps",)),
    Case("evaluate damaged record", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/damaged_lmdb", "--labels",
         "{tiny}/labels.txt", "--out", "{root}/o_damaged"), ("damaged_lmdb record", "not a Datum record"),
         ("o_damaged/predictions.csv",)),
    Case("train damaged record", "tools/train.py", ("-solver", "{root}/tiny_damaged/solver.prototxt", "--quiet"),
         ("train_lmdb record", "not a Datum record"), ("tiny_damaged/snaps",)),
    # solver values (finding 5) and the snapshot location (finding 6): before the first iteration
    Case("train base_lr -0.01", "tools/train.py", ("-solver", "{root}/solver_negative_lr.prototxt", "--quiet"),
         ("solver_negative_lr.prototxt", "field base_lr: -0.01", "> 0")),
    Case("train momentum 1.5", "tools/train.py", ("-solver", "{root}/solver_momentum.prototxt", "--quiet"),
         ("field momentum: 1.5", "0 <= momentum < 1")),
    Case("train weight_decay -1", "tools/train.py", ("-solver", "{root}/solver_decay.prototxt", "--quiet"),
         ("field weight_decay: -1,", ">= 0")),
    Case("train stepsize 0", "tools/train.py", ("-solver", "{root}/solver_stepsize.prototxt", "--quiet"),
         ("field stepsize: 0", "lr_policy step")),
    Case("train unknown lr_policy", "tools/train.py", ("-solver", "{root}/solver_policy.prototxt", "--quiet"),
         ("field lr_policy: 'cosine'", "multistep")),
    Case("train average_loss 0", "tools/train.py", ("-solver", "{root}/solver_average_loss.prototxt", "--quiet"),
         ("field average_loss: 0", "Caffe's CHECK")),
    Case("train -iterations -5", "tools/train.py", ("-solver", "{tiny}/solver.prototxt", "-iterations", "-5",
         "--quiet"), ("-iterations -5", "at least 1"), ("tiny/snaps",)),
    Case("train snapshot prefix in a file", "tools/train.py", ("-solver", "{root}/solver_snapshot_in_file.prototxt",
         "--quiet"), ("field snapshot_prefix", "afile is not a folder")),
    # the command line itself: argparse's errors are one line too
    Case("prepare unknown dataset", "data_prep/prepare.py", ("bbbc999", "--raw", "{root}/raw016", "--out",
         "{root}/o_x"), ("invalid choice: 'bbbc999'", "--help"), ("o_x",)),
    Case("reproduce --raw and --data", "tools/reproduce.py", ("bbbc016", "--raw", "{root}/raw016", "--data",
         "{root}/adir", "--out", "{root}/o_rd"), ("--data", "not allowed with argument --raw"), ("o_rd",)),
    Case("evaluate without --model", "tools/evaluate.py", ("--weights", "{root}/w.caffemodel", "--lmdb",
         "{tiny}/test_lmdb", "--out", "{root}/o_nm"), ("the following arguments are required: --model",), ("o_nm",)),
    Case("make_net unknown preset", "tools/make_net.py", ("--preset", "nosuch"), ("unknown --preset 'nosuch'",)),
    Case("simulate --sites 0", "tools/simulate.py", ("--preset", "test", "--sites", "0", "--out", "{root}/o_sim"),
         ("--sites must be at least 1",), ("o_sim/load_data.csv",)),
    Case("simulate unknown preset", "tools/simulate.py", ("--preset", "huge", "--out", "{root}/o_sim2"),
         ("unknown preset 'huge'",), ("o_sim2/load_data.csv",)),
    Case("reproduce --shard 3/2", "tools/reproduce.py", ("bbbc016", "--raw", "{root}/raw016", "--out", "{root}/o_sh",
         "--shard", "3/2"), ("--shard 3/2", "0 <= i < N"), ("o_sh/runs",)),
    Case("reproduce --repeats 0", "tools/reproduce.py", ("bbbc016", "--raw", "{root}/raw016", "--out", "{root}/o_r0",
         "--repeats", "0"), ("--repeats must be at least 1",), ("o_r0/runs",)),
    Case("reproduce --partition without slurm", "tools/reproduce.py", ("bbbc016", "--raw", "{root}/raw016", "--out",
         "{root}/o_lp", "--partition", "gpu"), ("--partition only applies with --launcher slurm",), ("o_lp",)),
    Case("reproduce --array-parallelism 0", "tools/reproduce.py", ("bbbc016", "--raw", "{root}/raw016", "--out",
         "{root}/o_ap", "--launcher", "local", "--array-parallelism", "0"), ("--array-parallelism 0: need at least 1",),
         ("o_ap",)),
    Case("reproduce --launcher slurm without Slurm", "tools/reproduce.py", ("bbbc016", "--raw", "{root}/raw016",
         "--out", "{root}/o_ls", "--launcher", "slurm"), ("--launcher slurm",), ("o_ls",)),
    Case("train missing solver", "tools/train.py", ("-solver", "{root}/none.prototxt", "--quiet"),
         ("none.prototxt",)),
    Case("train missing weights", "tools/train.py", ("-solver", "{tiny}/solver.prototxt", "-weights",
         "{root}/none.caffemodel", "--quiet"), ("none.caffemodel",), ("tiny/snaps",)),
    Case("dose_response missing table", "tools/dose_response.py", ("--predictions", "{root}/none.csv", "--out",
         "{root}/o_none"), ("none.csv", "no such file"), ("o_none/ec50.csv",)),
    Case("dose_response no probability columns", "tools/dose_response.py", ("--predictions", "{root}/noprob.csv",
         "--out", "{root}/o_np"), ("noprob.csv", "no probability columns"), ("o_np/ec50.csv",)),
    Case("evaluate missing LMDB", "tools/evaluate.py", (*MODEL, "--lmdb", "{root}/none_lmdb", "--labels",
         "{tiny}/labels.txt", "--out", "{root}/o_nl"), ("none_lmdb",), ("o_nl/predictions.csv",)),
    Case("predict missing LMDB", "tools/predict.py", (*MODEL, "--lmdb", "{root}/none_lmdb", "--labels",
         "{tiny}/labels.txt", "--out", "{root}/o_pl"), ("none_lmdb",), ("o_pl/fields.parquet",)),
    Case("make_solver missing net", "tools/make_solver.py", ("--net", "{root}/none.prototxt"), ("none.prototxt",)),
    Case("synthesize unknown option", "data_prep/synthesize.py", ("bbbc013", "--out", "{root}/o_syn", "--option",
         "nosuch=1"), ("--option nosuch", "not an option of bbbc013"), ("o_syn/BBBC013_v1_platemap_all.txt",)),
    Case("prepare screen without --images", "data_prep/prepare.py", ("screen", "--platemap", "{root}/noprob.csv",
         "--label-column", "Metadata_Class", "--out", "{root}/o_scr"), ("--images is required",),
         ("o_scr/.prepare.json",)),
    Case("prepare --config for another dataset", "data_prep/prepare.py", ("bbbc016", "--raw", "{root}/raw016",
         "--config", "{root}/noprob.csv", "--out", "{root}/o_cfg"), ("--config", "not for bbbc016"),
         ("o_cfg/.prepare.json",)),
    # more flags and values of every tool
    Case("train -snapshot caffemodel", "tools/train.py", ("-solver", "{tiny}/solver.prototxt", "-snapshot",
         "{root}/w.caffemodel", "--quiet"), ("a caffemodel, not a .solverstate", "-weights"), ("tiny/snaps",)),
    Case("train -snapshot missing", "tools/train.py", ("-solver", "{tiny}/solver.prototxt", "-snapshot",
         "{root}/none.solverstate", "--quiet"), ("-snapshot", "no such file"), ("tiny/snaps",)),
    Case("evaluate missing labels", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--labels",
         "{root}/none.txt", "--out", "{root}/o_lab"), ("none.txt", "no such labels file"), ("o_lab/predictions.csv",)),
    Case("evaluate unknown engine", "tools/evaluate.py", (*MODEL, "--lmdb", "{tiny}/test_lmdb", "--engine", "tf",
         "--out", "{root}/o_eng"), ("invalid choice: 'tf'",), ("o_eng",)),
    Case("dose_response unknown class", "tools/dose_response.py", ("--predictions", "{root}/dose_ok.csv", "--class",
         "nosuch", "--out", "{root}/o_cls"), ("no column 'prob_nosuch'", "classes: neg, pos"), ("o_cls/ec50.csv",)),
    Case("dose_response --level 2", "tools/dose_response.py", ("--predictions", "{root}/dose_ok.csv", "--level", "2",
         "--out", "{root}/o_lvl"), ("--level 2", "between 0 and 1"), ("o_lvl/ec50.csv",)),
    Case("make_solver --epochs 0", "tools/make_solver.py", ("--net", "{tiny}/mcnn_train_val.prototxt", "--train-size",
         "10", "--test-size", "2", "--epochs", "0"), ("--epochs must be positive",)),
    Case("make_solver --base-lr -1", "tools/make_solver.py", ("--net", "{tiny}/mcnn_train_val.prototxt",
         "--train-size", "10", "--test-size", "2", "--base-lr", "-1"), ("--base-lr must be positive",)),
    Case("reproduce unknown arch", "tools/reproduce.py", ("bbbc016", "--raw", "{root}/raw016", "--out", "{root}/o_ar",
         "--arch", "resnet"), ("invalid choice: 'resnet'",), ("o_ar",)),
    Case("prepare --resize 0,5", "data_prep/prepare.py", ("bbbc016", "--raw", "{root}/raw016", "--out",
         "{root}/o_rs", "--resize", "0,5"), ("--resize 0,5", "positive"), ("o_rs/.prepare.json",)),
    Case("prepare --workers 0", "data_prep/prepare.py", ("bbbc016", "--raw", "{root}/raw016", "--out",
         "{root}/o_w0", "--workers", "0"), ("--workers 0", "at least 1"), ("o_w0/.prepare.json",)),
    Case("simulate unknown phenotype", "tools/simulate.py", ("--preset", "test", "--phenotypes", "glow", "--out",
         "{root}/o_ph"), ("--phenotypes", "unknown 'glow'"), ("o_ph/load_data.csv",)),
    # prepare options checked before anything is saved (finding 8)
    Case("prepare --test-fraction 1.5", "data_prep/prepare.py", ("bbbc016", "--raw", "{root}/raw016", "--out",
         "{root}/o_frac", "--test-fraction", "1.5"), ("--test-fraction 1.5", "between 0 and 1"),
         ("o_frac/.prepare.json",)),
    Case("prepare --repeats 0", "data_prep/prepare.py", ("bbbc016", "--raw", "{root}/raw016", "--out",
         "{root}/o_rep", "--repeats", "0"), ("--repeats 0", "at least 1"), ("o_rep/.prepare.json",)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_gives_one_line_and_no_output(case: Case, world: Path) -> None:
    paths = {"root": str(world), "tiny": str(world / "tiny")}
    args = [a.format(**paths) for a in case.args]
    out = run_script(case.script, *args)
    assert out.returncode == case.status, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for word in case.words:
        assert word in lines[0], lines[0]
    for rel in case.absent:
        assert not (world / rel).exists(), rel


def test_prepare_only_unknown_split_saves_nothing_and_the_corrected_command_runs(tmp_path: Path) -> None:
    raw, out = copy_raw("bbbc016", tmp_path / "raw016"), tmp_path / "o"
    args = ("data_prep/prepare.py", "bbbc016", "--raw", str(raw), "--out", str(out), "--repeats", "1", "--quiet")
    bad = run_script(*args, "--only", "repeat_099")
    assert bad.returncode == 2 and "--only repeat_099: no such split" in bad.stderr
    assert not (out / ".prepare.json").exists()
    good = run_script(*args)  # the corrected command is not refused as "prepared with other options"
    assert good.returncode == 0, good.stderr
