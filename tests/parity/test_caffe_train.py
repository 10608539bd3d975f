"""`caffe train` on LMDBs written by data_prep from a look-alike download (``make parity``).

The BBBC016 look-alike is synthesized, prepared (data_prep/prepare.py), and given an M-CNN and a solver
by tools/make_net.py and tools/make_solver.py, as the README's quick start does; real Caffe must read
the LMDBs, train, and its training loss must come down; its final snapshot must load in the engine.
"""

from __future__ import annotations

import re
from pathlib import Path

from mcnn.engine.net import load_net
from tests.support import run_script
from tests.support.parity import Report, run_caffe_tool

LOSS = re.compile(r"Iteration (\d+) \(.*\), loss = ([-+0-9.eE]+)")


def prepare(root: Path) -> Path:
    """The look-alike, its LMDBs, net and solver (30 epochs, the loss logged every iteration) under ``root``."""
    steps = [
        ("data_prep/synthesize.py", "bbbc016", "--out", root / "raw"),
        ("data_prep/prepare.py", "bbbc016", "--raw", root / "raw", "--out", root / "data", "--repeats", "1",
         "--quiet"),
        ("tools/make_net.py", "--data", root / "data", "--fusion-pool", "0", "--batch", "4", "--out", root / "nets"),
        ("tools/make_solver.py", "--net", root / "nets" / "mcnn_train_val.prototxt", "--data", root / "data",
         "--epochs", "30", "--mode", "CPU", "--snapshot-prefix", root / "snap" / "mcnn", "--out",
         root / "solver.prototxt"),
    ]
    for script, *args in steps:
        out = run_script(script, *args, timeout=600)
        assert out.returncode == 0, f"{script}: {out.stderr[-2000:]}"
    solver = root / "solver.prototxt"
    text = re.sub(r"(?m)^display: .*$", "display: 1", solver.read_text())
    solver.write_text(re.sub(r"(?m)^average_loss: .*$", "average_loss: 1", text))
    (root / "snap").mkdir()  # Caffe does not create the snapshot folder
    return solver


def test_caffe_trains_on_data_prep_lmdbs(caffe_prefix: Path, tmp_path: Path, report: Report) -> None:
    solver = prepare(tmp_path)
    out = run_caffe_tool("caffe", "train", f"-solver={solver}", threads=2, cwd=tmp_path, log_level=0)
    assert out.returncode == 0, out.stderr[-3000:]
    losses = [float(m.group(2)) for m in LOSS.finditer(out.stderr)]
    assert len(losses) >= 20, out.stderr[-2000:]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    report.add(f"caffe train on data_prep LMDBs (BBBC016 look-alike, {len(losses)} iterations)", 0.0, 0.0,
               note=f"mean loss of the first 5 iterations {first:.4f}, of the last 5 {last:.4f}")
    assert last < 0.8 * first, losses
    snapshots = sorted((tmp_path / "snap").glob("mcnn_iter_*.caffemodel"), key=lambda p: int(p.stem.split("_")[-1]))
    assert snapshots, "caffe train wrote no snapshot"
    net = load_net(tmp_path / "nets" / "mcnn_deploy.prototxt", snapshots[-1])
    assert net.param_count() > 0
