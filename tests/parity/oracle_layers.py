"""Run random single-layer nets under real pycaffe (the Caffe venv's python, not the toolkit's).

Usage: oracle_layers.py CASES_DIR START. CASES_DIR/cases.json lists the cases ({name, tops,
diff_bottoms, backward, loss}); each has CASES_DIR/<name>.prototxt and <name>.in.npz (``in_<blob>``
inputs, ``param_<i>`` learnable blobs to set). For each case from index START on, this writes
CASES_DIR/<name>.out.npz: ``param_<i>`` (the blobs used, after Caffe's fillers), ``top_<t>``,
``topdiff_<t>`` (the diffs set), ``diff_<b>`` (bottom diffs) and ``pdiff_<i>`` (blob diffs).
Caffe aborts the process on a failed CHECK: CASES_DIR/current holds the index of the case under
way, so the caller records that case as refused and starts this script again after it.
"""

import json
import os
import sys

import caffe
import numpy as np


def run_case(folder, index, case):
    """One case: build, set inputs and blobs, forward, set top diffs, backward, save."""
    name = case["name"]
    arrays = dict(np.load(os.path.join(folder, name + ".in.npz")))
    net = caffe.Net(os.path.join(folder, name + ".prototxt"), caffe.TEST)
    out = {}
    params = net.params.get("L", [])
    for i, blob in enumerate(params):
        if f"param_{i}" in arrays:
            blob.data[...] = arrays[f"param_{i}"]
        out[f"param_{i}"] = blob.data.copy()
    for key, value in arrays.items():
        if key.startswith("in_"):
            net.blobs[key[3:]].data[...] = value
    net.forward()
    for top in case["tops"]:
        out["top_" + top] = net.blobs[top].data.copy()
    if case["backward"]:
        rng = np.random.default_rng(1000 + index)
        if not case["loss"]:
            for top in case["tops"]:
                diff = rng.standard_normal(net.blobs[top].data.shape).astype(np.float32)
                net.blobs[top].diff[...] = diff
                out["topdiff_" + top] = diff
        net.backward()
        for bottom in case["diff_bottoms"]:
            out["diff_" + bottom] = net.blobs[bottom].diff.copy()
        for i, blob in enumerate(params):
            out[f"pdiff_{i}"] = blob.diff.copy()
    np.savez(os.path.join(folder, name + ".out.npz"), **out)


def main():
    folder, start = sys.argv[1], int(sys.argv[2])
    with open(os.path.join(folder, "cases.json")) as f:
        cases = json.load(f)
    caffe.set_mode_cpu()
    for index in range(start, len(cases)):
        with open(os.path.join(folder, "current"), "w") as f:
            f.write(str(index))
        run_case(folder, index, cases[index])
    with open(os.path.join(folder, "current"), "w") as f:
        f.write(str(len(cases)))


if __name__ == "__main__":
    main()
